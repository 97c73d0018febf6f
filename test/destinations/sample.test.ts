/**
 * Per-destination sampling: `netflow` with `sample: 4` forwards one datagram in four and counts
 * the rest as dropped `sampled_out`; `ipfix` on the same gateway (no sample) forwards all.
 * Tagged datagrams through the kernel mirror, counted at the collector (the lab agent's counter).
 * The counter runs per worker (each keeps its own 1-in-N count), so the forwarded total is
 * within one datagram per worker of a quarter.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TelemetryPort } from '../../src/lab/plan.js';
import {
  netflowConfig,
  reapStaleTestLabs,
  requireTools,
  senderResult,
  skipLab,
  sleep,
  startHealthEndpoints,
  startSender,
  testLab,
  UdpCounter,
  type Tally,
} from './helpers.js';

const WORKERS = 2;
const N = 4;
const NETFLOW = { rate: 1000, seconds: 2, tag: 0x5a4 };
const IPFIX = { rate: 250, seconds: 2, tag: 0x1f1 };

describe('destinations: per-destination 1-in-N sampling', { skip: skipLab, timeout: 120_000 }, () => {
  const lab = testLab('sample', { collectors: 1, workers: WORKERS });
  let netflow: { sent: number; tally: Tally };
  let ipfix: { sent: number; tally: Tally };
  let counters: Record<string, number>;
  let balanced = false;

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool');
    await reapStaleTestLabs();
    await lab.up();
    await startHealthEndpoints(lab);
    await lab.startGateway({ config: netflowConfig(lab, { sample: N }) });
    const nfCounter = await UdpCounter.start(lab, 0, { tag: NETFLOW.tag });
    const ipfixCounter = await UdpCounter.start(lab, 0, { tag: IPFIX.tag, port: TelemetryPort.IPFIX });
    const senders = [
      startSender(lab, { from: lab.exporters, ...NETFLOW }),
      startSender(lab, { from: lab.exporters, port: TelemetryPort.IPFIX, ...IPFIX }),
    ];
    const [nf, ip] = await Promise.all(senders.map((s) => senderResult(s, 30_000)));
    await sleep(500);
    netflow = { sent: nf.sent, tally: await nfCounter.stop() };
    ipfix = { sent: ip.sent, tally: await ipfixCounter.stop() };
    counters = await lab.counters();
    balanced = (await lab.status()).accounting.balanced;
    console.log(`# sample 1-in-${N}: ${netflow.tally.tagged} of ${netflow.sent} forwarded, ${counters['drop.sampled_out']} sampled out; by exporter ${JSON.stringify(netflow.tally.bySource)}`);
  });

  after(async () => {
    await lab.down();
  });

  test('sample: 4 forwards about a quarter; the rest are counted as sampled_out', () => {
    assert.equal(netflow.sent, NETFLOW.rate * NETFLOW.seconds);
    const quarter = netflow.sent / N;
    assert.ok(Math.abs(netflow.tally.tagged - quarter) <= WORKERS, `${netflow.tally.tagged} forwarded, expected ${quarter} ± ${WORKERS}`);
    assert.equal(netflow.tally.tagged + counters['drop.sampled_out'], netflow.sent, 'forwarded + sampled_out = sent');
    assert.equal(netflow.tally.duplicates, 0);
    assert.equal(balanced, true);
  });

  test('the other destination, without sample, forwards everything', () => {
    assert.equal(ipfix.tally.tagged, ipfix.sent);
  });
});
