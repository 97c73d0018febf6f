/**
 * `mirrorgate runtime` (VPP's `show runtime`) on a live gateway after known traffic: a row per
 * graph node whose packets and batches are those of /api/counters, with the cost per packet.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Backend, PORTS, runCli, scenarioFrames, scratchDir, sendFrames, skipObserve, TestGateway, startGatewayWithBackend, stopGatewayWithBackend } from './helpers.js';

const P = PORTS.runtime;
const CONTROL = `127.0.0.1:${P + 2}`;

interface Row {
  node: string;
  packets: number;
  batches: number;
  packetsPerBatch: number;
  nsPerPacket: number;
}

const int = (s: string) => Number(s.replace(/,/g, ''));

describe('observe: mirrorgate runtime', { skip: skipObserve, timeout: 60_000 }, () => {
  const scratch = scratchDir('runtime');
  let backend: Backend;
  let gw: TestGateway;
  let counters: Record<string, number>;
  const good = scenarioFrames({ exporters: ['198.18.0.11', '198.18.0.12', '198.18.0.13'], datagramsPerExporter: 6, seed: 31 });
  const wrongVni = scenarioFrames({ vni: 5, exporters: ['198.18.0.14'], protocols: ['netflow5'], datagramsPerExporter: 9, seed: 32 });
  const N = good.length + wrongVni.length;

  before(async () => {
    ({ backend, gw } = await startGatewayWithBackend(scratch, P, { workers: 2 }));
    await sendFrames(P, [...good, ...wrongVni].sort((a, b) => a.timestampNs - b.timestampNs).map((f) => f.frame));
    counters = await gw.waitForRx(N);
  });

  after(() => stopGatewayWithBackend(gw, backend, scratch));

  /** Nodes in /api/counters, in order. */
  const nodes = () => Object.keys(counters).flatMap((k) => /^node\.(.+)\.packets$/.exec(k)?.[1] ?? []);

  test('a row per node with the packets and batches of /api/counters and ns per packet', async () => {
    const r = await runCli(['runtime', '--control', CONTROL]);
    assert.equal(r.code, 0, r.stderr);
    console.log(r.stdout);
    assert.deepEqual(await gw.counters(), counters, 'counters are still when no traffic arrives');
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0], /^node +packets +batches +pkts\/batch +ns\/pkt$/);
    const rows = lines.slice(1, -1).map((l) => {
      const m = /^(\S+) +([\d,]+) +([\d,]+) +(\d+\.\d) +(\d+)$/.exec(l);
      assert.ok(m, `row ${JSON.stringify(l)}`);
      return { node: m[1], packets: int(m[2]), batches: int(m[3]), perBatch: m[4], ns: Number(m[5]) };
    });
    assert.deepEqual(rows.map((x) => x.node), nodes());
    for (const row of rows) {
      const c = (what: string) => counters[`node.${row.node}.${what}`];
      assert.equal(row.packets, c('packets'), row.node);
      assert.equal(row.batches, c('batches'), row.node);
      assert.equal(row.perBatch, (c('batches') ? c('packets') / c('batches') : 0).toFixed(1), row.node);
      assert.equal(row.ns, Math.round(c('packets') ? c('ns') / c('packets') : 0), row.node);
      if (row.packets > 0) assert.ok(row.ns > 0, `${row.node}: a node that ran costs something`);
    }
    const byNode = Object.fromEntries(rows.map((x) => [x.node, x.packets]));
    assert.equal(byNode['tunnel-input'], N);
    assert.equal(byNode['vxlan-decap'], N);
    assert.equal(byNode['inner-ethernet'], good.length);
    assert.equal(byNode.tx, good.length);
    assert.equal(byNode['geneve-decap'], 0);
    const total = /^per received packet +(\d+)$/.exec(lines.at(-1)!);
    assert.ok(total, lines.at(-1));
    const nsSum = nodes().reduce((s, n) => s + counters[`node.${n}.ns`], 0);
    assert.ok(Math.abs(Number(total[1]) - nsSum / N) <= 1, `per received packet ${total[1]} vs ${nsSum / N}`);
  });

  test('--json has the same rows, unrounded', async () => {
    const r = await runCli(['runtime', '--json', '--control', CONTROL]);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Row[];
    assert.deepEqual(rows.map((x) => x.node), nodes());
    for (const row of rows) {
      const c = (what: string) => counters[`node.${row.node}.${what}`];
      assert.equal(row.packets, c('packets'));
      assert.equal(row.batches, c('batches'));
      assert.ok(Math.abs(row.packetsPerBatch - (c('batches') ? c('packets') / c('batches') : 0)) < 1e-9);
      assert.ok(Math.abs(row.nsPerPacket - (c('packets') ? c('ns') / c('packets') : 0)) < 1e-6);
    }
  });
});
