/**
 * Every backend of a destination down: `whenAllDown: send` (the default) keeps delivering — to
 * the configured set, hashed as when all were up, so no exporter moves — and says so loudly
 * (one error-level log line); `whenAllDown: drop` stops delivering, counts each datagram as
 * `all_backends_down`, and says that. Two collector hosts with health endpoints, both killed;
 * tagged datagrams from eight exporter addresses through the kernel mirror, counted per source
 * at each collector (the lab agent's counter).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Lab } from '../../src/lab/lab.js';
import {
  addExporterAddresses,
  backendName,
  backendStatus,
  backendUpMetric,
  exporterAddresses,
  gatewayLog,
  growth,
  Level,
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
  waitBackend,
  type BackendStatus,
  type HealthEndpoint,
  type Tally,
} from './helpers.js';

const EXPORTERS = exporterAddresses(8, 50);
const RATE = 400;
const SECONDS = 8;
const TAG = 0xa11d;

interface Run {
  sent: number;
  baseline: Tally[];
  /** Reports once every backend was seen down (after the workers had time to apply it). */
  allDown: Tally[];
  /** Reports after a further stretch with all down. */
  later: Tally[];
  final: Tally[];
  status: BackendStatus[];
  metrics: Record<string, number>;
  readyz: { status: number; body?: unknown };
  counters: Record<string, number>;
  balanced: boolean;
}

/** Sends for SECONDS; kills every health endpoint after 1.5 s; reports around it. */
async function allDownRun(lab: Lab, policy: 'send' | 'drop', opts: { afterAllDown?: (health: HealthEndpoint[]) => Promise<void> } = {}): Promise<Run> {
  await addExporterAddresses(lab, EXPORTERS);
  const health = await startHealthEndpoints(lab);
  await lab.startGateway({ config: netflowConfig(lab, { whenAllDown: policy }) });
  const counters = [await UdpCounter.start(lab, 0, { tag: TAG }), await UdpCounter.start(lab, 1, { tag: TAG })];
  const report = () => Promise.all(counters.map((c) => c.report()));
  const sender = startSender(lab, { from: EXPORTERS, rate: RATE, seconds: SECONDS, tag: TAG });
  await sleep(1500);
  const baseline = await report();
  await Promise.all(health.map((h) => h.kill()));
  for (let k = 0; k < 2; k++) await waitBackend(lab, backendName(lab, k), false, 5000);
  const status = await backendStatus(lab);
  const metrics = await backendUpMetric(lab);
  const readyz = await lab.control('GET', '/readyz');
  await sleep(300);
  const allDown = await report();
  await sleep(2000);
  const later = await report();
  await opts.afterAllDown?.(health);
  const { sent } = await senderResult(sender, (SECONDS + 15) * 1000);
  await sleep(500);
  const final = await Promise.all(counters.map((c) => c.stop()));
  const s = await lab.status();
  return { sent, baseline, allDown, later, final, status, metrics, readyz, counters: await lab.counters(), balanced: s.accounting.balanced };
}

const total = (ts: readonly Tally[]) => ts.reduce((n, t) => n + t.tagged, 0);

describe('destinations: all backends down, whenAllDown: send', { skip: skipLab, timeout: 120_000 }, () => {
  const lab = testLab('alldsend', { collectors: 2, workers: 2 });
  let run: Run;

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool');
    await reapStaleTestLabs();
    await lab.up();
    run = await allDownRun(lab, 'send');
  });

  after(async () => {
    await lab.down();
  });

  test('both backends are down in /api/status, /metrics and /readyz', () => {
    for (let k = 0; k < 2; k++) {
      assert.equal(run.status.find((b) => b.backend === backendName(lab, k))?.up, false);
      assert.equal(run.metrics[backendName(lab, k)], 0);
    }
    assert.equal(run.readyz.status, 503);
    assert.match(String(run.readyz.body), /no healthy backend in netflow/);
  });

  test('traffic keeps flowing, all of it to the last collector known up (the last-known set)', () => {
    const before = growth([], run.baseline);
    const during = growth(run.allDown, run.later);
    assert.equal(before.size, EXPORTERS.length, 'every exporter reached a collector while all were up');
    assert.ok(new Set([...before.values()].flatMap((m) => [...m.keys()])).size === 2, 'both collectors had exporters');
    const flowed = total(run.later) - total(run.allDown);
    assert.ok(flowed >= RATE, `${flowed} datagrams delivered in 2 s with every backend down`);
    // Killed together, the two health checks still fail one after the other: the one that failed
    // last was the last backend known up, and every exporter stays with it.
    const since = (k: number) => Date.parse(String(run.status.find((b) => b.backend === backendName(lab, k))?.since));
    const last = since(0) > since(1) ? 0 : 1;
    for (const e of EXPORTERS) assert.deepEqual([...(during.get(e)?.keys() ?? [])], [last], `${e} goes to collector ${last}`);
    assert.equal(total(run.final), run.sent, 'every datagram was delivered');
    assert.equal(run.counters['drop.all_backends_down'], 0);
    assert.equal(run.balanced, true);
  });

  test('one error-level log line says every backend is down and traffic still goes to them', () => {
    const lines = gatewayLog(lab).filter((l) => l.level >= Level.ERROR && /every backend of destination netflow is down/.test(l.msg));
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.match(lines[0].msg, /still sending/);
    assert.equal(lines[0].destination, 'netflow');
  });
});

describe('destinations: all backends down, whenAllDown: drop', { skip: skipLab, timeout: 120_000 }, () => {
  const lab = testLab('alldrop', { collectors: 2, workers: 2 });
  let run: Run;
  let revived = false;

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool');
    await reapStaleTestLabs();
    await lab.up();
    run = await allDownRun(lab, 'drop', {
      // Then collector 0 comes back: its traffic resumes, all of it (the only backend up).
      afterAllDown: async (health) => {
        await health[0].revive();
        await waitBackend(lab, backendName(lab, 0), true, 5000);
        revived = true;
      },
    });
  });

  after(async () => {
    await lab.down();
  });

  test('nothing is delivered while every backend is down; each datagram counts as all_backends_down', () => {
    assert.equal(total(run.later), total(run.allDown), 'no datagram reached a collector while all were down');
    const dropped = run.counters['drop.all_backends_down'];
    assert.ok(dropped >= 2 * RATE * 0.9, `${dropped} dropped as all_backends_down`);
    // Exact: every datagram sent either reached a collector or was dropped as all_backends_down.
    assert.equal(total(run.final) + dropped, run.sent, `${total(run.final)} delivered + ${dropped} dropped = ${run.sent} sent`);
    assert.equal(run.balanced, true);
  });

  test('traffic resumes, all to the backend that came back', () => {
    assert.ok(revived);
    const after = growth(run.later, run.final);
    assert.ok(total(run.final) > total(run.later), 'delivery resumed');
    for (const [src, where] of after) assert.deepEqual([...where.keys()], [0], `${src} goes to collector 0, the only one up`);
  });

  test('one error-level log line says every backend is down and its traffic is dropped', () => {
    const lines = gatewayLog(lab).filter((l) => l.level >= Level.ERROR && /every backend of destination netflow is down/.test(l.msg));
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.match(lines[0].msg, /dropping/);
  });
});

/**
 * Backends failing one after the other, whenAllDown: send. Collector 0 fails first (its exporters
 * move to 1), then collector 1: the last-known set is {collector 1}, so every exporter stays
 * there rather than going back to collector 0, which has been down longest.
 */
describe('destinations: backends down one after the other, whenAllDown: send', { skip: skipLab, timeout: 120_000 }, () => {
  const lab = testLab('alldstag', { collectors: 2, workers: 2 });
  let firstDown: Map<string, Map<number, number>>;
  let allDown: Map<string, Map<number, number>>;
  let baseline: Map<string, Map<number, number>>;

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool');
    await reapStaleTestLabs();
    await lab.up();
    await addExporterAddresses(lab, EXPORTERS);
    const health = await startHealthEndpoints(lab);
    await lab.startGateway({ config: netflowConfig(lab, { whenAllDown: 'send' }) });
    const counters = [await UdpCounter.start(lab, 0, { tag: TAG }), await UdpCounter.start(lab, 1, { tag: TAG })];
    const report = () => Promise.all(counters.map((c) => c.report()));
    const sender = startSender(lab, { from: EXPORTERS, rate: RATE, seconds: SECONDS, tag: TAG });
    await sleep(1000);
    baseline = growth([], await report());
    await health[0].kill();
    await waitBackend(lab, backendName(lab, 0), false, 5000);
    await sleep(300);
    const r1 = await report();
    await sleep(1200);
    firstDown = growth(r1, await report());
    await health[1].kill();
    await waitBackend(lab, backendName(lab, 1), false, 5000);
    await sleep(300);
    const r3 = await report();
    await sleep(1200);
    allDown = growth(r3, await report());
    await senderResult(sender, (SECONDS + 15) * 1000);
    await Promise.all(counters.map((c) => c.stop()));
  });

  after(async () => {
    await lab.down();
  });

  test('collector 0 down: its exporters move to collector 1', () => {
    assert.ok([...baseline.values()].some((m) => m.has(0)), 'collector 0 had exporters');
    for (const e of EXPORTERS) assert.deepEqual([...(firstDown.get(e)?.keys() ?? [])], [1], `${e} on collector 1`);
  });

  test('then collector 1 down too: traffic stays on the last backends known up (the last-known set)', () => {
    for (const e of EXPORTERS) assert.deepEqual([...(allDown.get(e)?.keys() ?? [])], [1], `${e} stays on collector 1, the last one known up`);
  });
});
