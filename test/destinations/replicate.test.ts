/**
 * `balance: replicate`: every datagram goes to every collector. Three collector hosts (nfcapd,
 * tcpdump and a health endpoint each; all healthy), four exporter addresses replaying REAL
 * softflowd NetFlow v9 datagrams through the kernel mirror. Each collector's tcpdump must show
 * each exporter datagram exactly once, and each nfcapd must store every flow, from each exporter.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  backendName,
  backendStatus,
  Collectors,
  flowsOf,
  netflowConfig,
  reapStaleTestLabs,
  recordSoftflowd,
  Replayer,
  requireTools,
  skipLab,
  startHealthEndpoints,
  testLab,
  type Arrival,
  type BackendStatus,
  type Recording,
} from './helpers.js';

const TICKS = 40;
const RATE = 20;

describe('destinations: replicate delivers every datagram to every collector', { skip: skipLab, timeout: 120_000 }, () => {
  const lab = testLab('replicate', { collectors: 3, workers: 2 });
  let recording: Recording;
  let collectors: Collectors;
  let arrivals: Arrival[];
  let exporters: readonly string[];
  let status: BackendStatus[];
  let counters: Record<string, number>;
  let balanced = false;

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool', 'tcpdump', 'tshark', 'softflowd', 'nfcapd', 'nfdump');
    await reapStaleTestLabs();
    await lab.up();
    recording = await recordSoftflowd(lab, { flows: 1400 });
    exporters = lab.exporters;
    await startHealthEndpoints(lab);
    await lab.startGateway({ config: netflowConfig(lab, { balance: 'replicate' }) });
    collectors = await Collectors.start(lab);
    const replayer = await Replayer.start(lab, recording, { exporters, rate: RATE, count: TICKS });
    assert.equal(await replayer.finish(30_000), TICKS);
    await collectors.stop();
    arrivals = collectors.arrivals();
    status = await backendStatus(lab);
    counters = await lab.counters();
    balanced = (await lab.status()).accounting.balanced;
  });

  after(async () => {
    await lab.down();
  });

  test("each collector's tcpdump sees every exporter datagram exactly once", () => {
    for (let k = 0; k < 3; k++) {
      const here = arrivals.filter((a) => a.collector === k);
      assert.equal(here.length, exporters.length * TICKS, `collector ${k} received ${here.length} datagrams`);
      for (const e of exporters) {
        const seqs = here.filter((a) => a.exporter === e && a.data).map((a) => a.sequence);
        assert.deepEqual(seqs, recording.sequence.slice(0, TICKS), `collector ${k}: ${e}'s datagrams, once each, in order`);
      }
      // Each stream began with softflowd's own template datagram on every collector: nothing to send ahead.
      assert.equal(here.filter((a) => !a.data).length, 0, `collector ${k}: no template-only datagram`);
    }
  });

  test('each nfcapd stores every flow of every exporter', () => {
    const expected = exporters.flatMap((e) => recording.sequence.slice(0, TICKS).flatMap((s) => flowsOf(recording, e, s)));
    assert.ok(expected.length > 1000);
    for (let k = 0; k < 3; k++) {
      const got = collectors.flows(k);
      const missing = expected.filter((f) => !got.has(f));
      assert.deepEqual(missing.slice(0, 10), [], `collector ${k}: ${missing.length} of ${expected.length} flows missing`);
      assert.equal(got.size, expected.length, `collector ${k}: exactly the flows sent`);
    }
  });

  test("the gateway counts one copy per collector and balances", () => {
    for (let k = 0; k < 3; k++) {
      assert.equal(status.find((b) => b.backend === backendName(lab, k))?.packets, exporters.length * TICKS, `packets to ${backendName(lab, k)}`);
    }
    assert.equal(counters['tx.forwarded'], exporters.length * TICKS, 'each received datagram forwarded once');
    assert.equal(counters['select.copies_unsent'], 0);
    assert.equal(balanced, true);
  });
});
