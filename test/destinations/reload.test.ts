/**
 * A reload that leaves a destination as it was keeps that destination's health state and hash:
 * three collectors (hash, http health), twelve exporter addresses replaying REAL softflowd
 * NetFlow v9; collector A's health endpoint dies and its exporters move; then a reload that
 * changes other parts of the config (a new rule, another destination's MTU) but not `netflow`.
 * After it, A must still be down (same transition time in /api/status, 0 in /metrics, no datagram
 * reaches it even for a moment), every exporter must stay where it was, and the gateway must not
 * act as if a collector had lost its templates (no template datagrams sent because of the reload).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { until } from '../../src/lab/process.js';
import {
  addExporterAddresses,
  APPLY_MS,
  backendName,
  backendStatus,
  backendUpMetric,
  Collectors,
  exporterAddresses,
  flowsOf,
  netflowConfig,
  reapStaleTestLabs,
  recordSoftflowd,
  Replayer,
  requireTools,
  skipLab,
  sleep,
  startHealthEndpoints,
  testLab,
  type Arrival,
  type BackendStatus,
  waitBackend,
  type Recording,
} from './helpers.js';

const EXPORTERS = exporterAddresses(12, 31);
const RATE = 8;
const TICKS = 80;

interface Evidence {
  recording: Recording;
  collectors: Collectors;
  arrivals: Arrival[];
  tickAt: Map<number, number>;
  failed: number;
  downAt: number;
  reloadAt: number;
  reloadedAt: number;
  generation: [number, number];
  before: BackendStatus[];
  after: BackendStatus[];
  metricsAfter: Record<string, number>;
  templatesSent: { beforeReload: number; end: number };
  reloadProbeWindowMs: number;
}

describe('destinations: a reload that keeps the destination keeps its health state and hash', { skip: skipLab, timeout: 150_000 }, () => {
  const lab = testLab('reloadkeep', { collectors: 3, workers: 2 });
  let ev: Evidence;

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool', 'tcpdump', 'tshark', 'softflowd', 'nfcapd', 'nfdump');
    await reapStaleTestLabs();
    await lab.up();
    const recording = await recordSoftflowd(lab, { flows: 3200 });
    await addExporterAddresses(lab, EXPORTERS);
    const health = await startHealthEndpoints(lab);
    const config = netflowConfig(lab);
    const gateway = await lab.startGateway({ config });
    const collectors = await Collectors.start(lab);
    const replayer = await Replayer.start(lab, recording, { exporters: EXPORTERS, rate: RATE, count: TICKS });
    await replayer.tick(8);
    const load = [0, 1, 2].map((k) => new Set(collectors.arrivals().filter((a) => a.collector === k).map((a) => a.exporter)).size);
    const failed = load.indexOf(Math.max(...load));

    await health[failed].kill();
    const down = await waitBackend(lab, backendName(lab, failed), false, 5000);
    await sleep(1500); // the moved streams have had their templates sent ahead
    const beforeStatus = await backendStatus(lab);
    const templatesBefore = (await lab.counters())['select.templates_sent'];
    const generation0 = (await lab.status()).generation;

    // Other parts change; the netflow destination is written exactly as before.
    const next = netflowConfig(lab);
    next.rules.push({ name: 'syslog', match: { protocol: 'udp', dstPort: 514 }, destination: 'sflow' });
    next.destinations.ipfix.mtu = 1400;
    lab.writeGatewayConfig(next);
    const reloadAt = Date.now();
    gateway.signal('SIGHUP');
    const generation1 = await until('the reload', async () => {
      const s = await lab.status();
      return s.generation > generation0 ? s.generation : undefined;
    }, 10_000, 20);
    const reloadedAt = Date.now();
    // Longer than a reset health state would need to go down again (fall × interval + timeout):
    // a backend wrongly reset to "up" would have taken traffic in the meantime.
    const window = 2000;
    await sleep(window);
    const afterStatus = await backendStatus(lab);
    const metricsAfter = await backendUpMetric(lab);
    const templatesEnd = (await lab.counters())['select.templates_sent'];

    await replayer.stop();
    const tickAt = new Map(replayer.ticks().map((t) => [t.index, t.t]));
    await collectors.stop();
    ev = {
      recording, collectors, arrivals: collectors.arrivals(), tickAt, failed, downAt: Date.parse(down.row.since), reloadAt, reloadedAt,
      generation: [generation0, generation1], before: beforeStatus, after: afterStatus, metricsAfter,
      templatesSent: { beforeReload: templatesBefore, end: templatesEnd }, reloadProbeWindowMs: window,
    };
  });

  after(async () => {
    await lab.down();
  });

  const tickOf = (a: Arrival) => ev.recording.indexOf.get(a.sequence) ?? -1;
  const ticksBetween = (from: number, to: number) => new Set([...ev.tickAt].filter(([, t]) => t > from && t < to).map(([i]) => i));

  test('the reload applied (generation +1)', () => {
    assert.equal(ev.generation[1], ev.generation[0] + 1);
  });

  test('the down backend stays down: same transition in /api/status, 0 in /metrics', () => {
    const name = backendName(lab, ev.failed);
    const before = ev.before.find((b) => b.backend === name)!;
    const after = ev.after.find((b) => b.backend === name)!;
    assert.equal(before.up, false);
    assert.equal(after.up, false, 'still down after the reload');
    assert.equal(after.since, before.since, 'the same down transition: the state was kept, not reset and re-learnt');
    assert.equal(ev.metricsAfter[name], 0);
    for (const b of ev.after.filter((x) => x.backend !== name)) assert.equal(b.up, true);
  });

  test('no datagram reaches the down collector across the reload, not even for a moment', () => {
    const from = ev.downAt + APPLY_MS;
    const late = ev.arrivals.filter((a) => a.collector === ev.failed && a.tUs / 1000 > from);
    assert.deepEqual(late.map((a) => `${a.exporter}@${tickOf(a)}`), []);
  });

  test('every exporter stays on its collector across the reload', () => {
    const beforeTicks = ticksBetween(ev.downAt + APPLY_MS, ev.reloadAt);
    const afterTicks = ticksBetween(ev.reloadAt, Infinity);
    assert.ok(beforeTicks.size >= 8 && afterTicks.size >= 8, `${beforeTicks.size} ticks before the reload, ${afterTicks.size} after`);
    for (const e of EXPORTERS) {
      const where = (ticks: Set<number>) => [...new Set(ev.arrivals.filter((a) => a.exporter === e && a.data && ticks.has(tickOf(a))).map((a) => a.collector))];
      const b = where(beforeTicks);
      assert.equal(b.length, 1, `${e} on one collector before the reload: ${b.join(', ')}`);
      assert.deepEqual(where(afterTicks), b, `${e} stays on collector ${b[0]}`);
    }
  });

  test('the reload sends no templates (no collector is taken for one that lost them) and nfcapd decodes everything after it', () => {
    assert.equal(ev.templatesSent.end, ev.templatesSent.beforeReload, 'select.templates_sent unchanged by the reload');
    const sinceReload = ev.arrivals.filter((a) => a.tUs / 1000 > ev.reloadAt);
    assert.deepEqual(sinceReload.filter((a) => !a.data).map((a) => `${a.exporter}@${tickOf(a)}`), [], 'no template-only datagram after the reload');
    const after = sinceReload.filter((a) => a.data);
    assert.ok(after.length > 0);
    for (const a of after) {
      const run = ev.collectors.runAt(a.collector, a.tUs)!;
      const missing = flowsOf(ev.recording, a.exporter, a.sequence).filter((f) => !run.flows.has(f));
      assert.deepEqual(missing, [], `${a.exporter}'s datagram at tick ${tickOf(a)} on collector ${a.collector}`);
    }
  });
});
