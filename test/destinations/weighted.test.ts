/**
 * Weighted hash: two collectors with weights 1 and 3 and 128 exporter addresses (secondaries of
 * the exporter host, sending through the kernel mirror). Each exporter must stick to one
 * collector, and the exporters (and so the datagrams, each exporter sending as many) must split
 * about 1:3. With 128 exporters a fair 3/4 draw has a standard deviation of 0.038; the tolerance
 * is ±0.12, three of them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  addExporterAddresses,
  backendName,
  backendStatus,
  exporterAddresses,
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
  type BackendStatus,
  type Tally,
} from './helpers.js';

const EXPORTERS = exporterAddresses(128, 100);
const PER_EXPORTER = 16;
const RATE = 1024;
const TAG = 0x3e16;
const WEIGHTS = [1, 3];
const TOLERANCE = 0.12;

describe('destinations: weighted hash splits exporters by weight', { skip: skipLab, timeout: 120_000 }, () => {
  const lab = testLab('weighted', { collectors: 2, workers: 2 });
  let tallies: Tally[];
  let sent: number;
  let status: BackendStatus[];

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool');
    await reapStaleTestLabs();
    await lab.up();
    await addExporterAddresses(lab, EXPORTERS);
    await startHealthEndpoints(lab);
    await lab.startGateway({ config: netflowConfig(lab, { weights: WEIGHTS }) });
    const counters = [await UdpCounter.start(lab, 0, { tag: TAG }), await UdpCounter.start(lab, 1, { tag: TAG })];
    const sender = startSender(lab, { from: EXPORTERS, rate: RATE, seconds: (EXPORTERS.length * PER_EXPORTER) / RATE, tag: TAG });
    ({ sent } = await senderResult(sender, 30_000));
    await sleep(500);
    tallies = await Promise.all(counters.map((c) => c.stop()));
    status = await backendStatus(lab);
  });

  after(async () => {
    await lab.down();
  });

  test('every datagram arrives, each exporter at one collector', () => {
    assert.equal(sent, EXPORTERS.length * PER_EXPORTER);
    assert.equal(tallies[0].tagged + tallies[1].tagged, sent);
    for (const e of EXPORTERS) {
      const at = tallies.map((t) => t.bySource[e] ?? 0);
      assert.ok(at.filter((n) => n > 0).length === 1 && at[0] + at[1] === PER_EXPORTER, `${e}: ${at.join(' + ')}`);
    }
  });

  test('exporters and datagrams split about 1:3', () => {
    const heavy = Object.keys(tallies[1].bySource).length / EXPORTERS.length;
    const packets = tallies[1].tagged / sent;
    console.log(`# weights 1:3 → exporters ${Object.keys(tallies[0].bySource).length}:${Object.keys(tallies[1].bySource).length}, datagrams ${tallies[0].tagged}:${tallies[1].tagged}`);
    assert.ok(Math.abs(heavy - 0.75) <= TOLERANCE, `weight-3 collector has ${(heavy * 100).toFixed(1)}% of the exporters, expected 75% ± ${TOLERANCE * 100}`);
    assert.ok(Math.abs(packets - 0.75) <= TOLERANCE, `weight-3 collector has ${(packets * 100).toFixed(1)}% of the datagrams`);
    for (let k = 0; k < 2; k++) assert.equal(status.find((b) => b.backend === backendName(lab, k))?.packets, tallies[k].tagged, `gateway's count for collector ${k}`);
  });
});
