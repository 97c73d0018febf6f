/**
 * Health-checked hash failover and rejoin, end to end: three collector hosts, each with nfcapd
 * and an HTTP health endpoint; the gateway balances `hash` over them with
 * `health: { check: http, port: 8080, path: /healthz, interval: 300, timeout: 200, rise: 2, fall: 2 }`.
 *
 * The exporters: twelve exporter addresses replaying REAL softflowd NetFlow v9 output (replayer.ts),
 * four datagrams a second each, in lockstep. softflowd sends its templates in its first datagram
 * and then in every 16th (measured: datagrams 0, 16, 32, ...), so at this pace a collector that
 * misses them is blind for up to 4 s; a real softflowd on a quiet link is blind for minutes.
 *
 * One run, timed against softflowd's refresh (ticks are datagram indexes of the recording):
 *
 *   tick 0         templates to every collector; each exporter settles on one collector
 *   tick 17        CONTROL: collector S's nfcapd restarts (loses every template) while its health
 *                  endpoint stays up, so the gateway has no reason to re-send anything
 *   tick 33        collector A's health endpoint dies; A leaves the hash; its exporters move
 *   (A is down)    A's nfcapd restarts too, as a collector host coming back would
 *   tick 49        A's health endpoint returns; A rejoins; its exporters move back
 *   tick 70        end
 *
 * Why the contrast is honest. Whether a collector can decode a data datagram depends only on
 * whether it has the exporter's templates. After tick 17 collector S's fresh nfcapd receives the
 * same softflowd data datagrams (same exporter, same stream, nothing moved) with nothing sent
 * ahead: it must lose them until softflowd's own refresh at tick 32. After tick 33 the moved
 * exporters' data datagrams reach a collector that never saw their templates either, but the
 * gateway sends its cached copy ahead, so nfcapd must decode the very first one. Likewise after
 * tick 49, for A's restarted nfcapd. Same exporter program, same collector program, same gateway:
 * the only difference is the template datagram mirrorgate sends ahead of a moved stream.
 *
 * Also checked: the template datagram sent ahead must not look like lost telemetry to the
 * collector. In NetFlow v9 the header's sequence number counts export packets (RFC 3954 §5.1);
 * select.ts's sendTemplates copies the data packet's export header unchanged, so the collector
 * sees that sequence number twice and nfcapd counts one "sequence failure" per moved stream, on
 * every failover and rejoin (IPFIX is not affected: its sequence counts data records, and a
 * template-only message rightly carries the next data message's number).
 *
 * Every datagram is followed by tcpdump at each collector (which exporter datagram, by sequence
 * number, reached which collector, whether it carried templates) and every flow by nfdump (the
 * flows' source ports are unique, which ties each stored record to one datagram).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  addExporterAddresses,
  APPLY_MS,
  backendName,
  backendStatus,
  backendUpMetric,
  Collectors,
  DOWN_BOUND_MS,
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
  UP_BOUND_MS,
  waitBackend,
  type Arrival,
  type BackendStatus,
  type NfcapdRun,
  type Recording,
} from './helpers.js';

const EXPORTERS = exporterAddresses(12, 31);
/** Datagrams per second per exporter. */
const RATE = 4;
/** softflowd -v 9 puts its templates in every 16th datagram (checked on the recording). */
const REFRESH = 16;
const CONTROL_TICK = REFRESH + 1;
const FAIL_TICK = 2 * REFRESH + 1;
const REVIVE_TICK = 3 * REFRESH + 1;
const LAST_TICK = 4 * REFRESH + 6;
/** Scheduling slack on top of the health module's timing contract (timer and event-loop delays). */
const SLACK_MS = 300;
/** Seeing a change through /api/status also costs the polls (each runs a control agent). */
const API_SLACK_MS = 1500;

interface Evidence {
  recording: Recording;
  collectors: Collectors;
  arrivals: Arrival[];
  /** Tick index → epoch ms it went out. */
  tickAt: Map<number, number>;
  /** Exporter → collector before anything failed. */
  baseline: Map<string, number>;
  failed: number;
  control: number;
  controlRun: NfcapdRun;
  failedRun: NfcapdRun;
  killAt: number;
  down: { at: number; seenAt: number; status: BackendStatus[]; metrics: Record<string, number> };
  reviveAt: number;
  up: { at: number; seenAt: number; status: BackendStatus[]; metrics: Record<string, number> };
  templatesSent: { beforeFail: number; afterFail: number; end: number };
  balanced: boolean;
}

describe('destinations: health-checked hash failover and rejoin', { skip: skipLab, timeout: 180_000 }, () => {
  const lab = testLab('failover', { collectors: 3, workers: 2 });
  let ev: Evidence;

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool', 'tcpdump', 'tshark', 'softflowd', 'nfcapd', 'nfdump');
    await reapStaleTestLabs();
    await lab.up();
    const recording = await recordSoftflowd(lab, { flows: 3200 });
    assert.ok(recording.datagrams.length > LAST_TICK, `the recording has ${recording.datagrams.length} datagrams`);
    assert.deepEqual(
      recording.templates.flatMap((t, i) => (t ? [i] : [])).slice(0, 5),
      [0, REFRESH, 2 * REFRESH, 3 * REFRESH, 4 * REFRESH],
      "softflowd's template refresh interval is 16 datagrams",
    );
    await addExporterAddresses(lab, EXPORTERS);
    const health = await startHealthEndpoints(lab);
    await lab.startGateway({ config: netflowConfig(lab) });
    const collectors = await Collectors.start(lab);
    const templatesSent = async () => (await lab.counters())['select.templates_sent'];

    const replayer = await Replayer.start(lab, recording, { exporters: EXPORTERS, rate: RATE, count: LAST_TICK + 1 });
    await replayer.tick(10);
    const baseline = new Map<string, number>();
    for (const a of collectors.arrivals()) {
      assert.equal(baseline.get(a.exporter) ?? a.collector, a.collector, `${a.exporter} is sticky before anything fails`);
      baseline.set(a.exporter, a.collector);
    }
    assert.equal(baseline.size, EXPORTERS.length, 'every exporter reached a collector');
    const load = [0, 1, 2].map((k) => [...baseline.values()].filter((c) => c === k).length);
    // The collector that fails has the most exporters; the control collector is another with some.
    const failed = load.indexOf(Math.max(...load));
    const control = [0, 1, 2].filter((k) => k !== failed).sort((a, b) => load[b] - load[a])[0];
    assert.ok(load[failed] >= 2 && load[control] >= 1 && load.every((n) => n >= 1), `exporters per collector: ${load.join(', ')}`);

    await replayer.tick(CONTROL_TICK);
    const controlRun = await collectors.restartNfcapd(control);

    await replayer.tick(FAIL_TICK);
    const beforeFail = await templatesSent();
    const killAt = await health[failed].kill();
    const downSeen = await waitBackend(lab, backendName(lab, failed), false, 5000);
    const down = { at: Date.parse(downSeen.row.since), seenAt: downSeen.seenAt, status: await backendStatus(lab), metrics: await backendUpMetric(lab) };
    // The failed collector's host "restarts" while out of the hash: a fresh nfcapd, no templates.
    const failedRun = await collectors.restartNfcapd(failed);
    await sleep(1000); // every moved exporter has sent a few datagrams to its new collector
    const afterFail = await templatesSent();

    await replayer.tick(REVIVE_TICK);
    const reviveAt = await health[failed].revive();
    const upSeen = await waitBackend(lab, backendName(lab, failed), true, 5000);
    const up = { at: Date.parse(upSeen.row.since), seenAt: upSeen.seenAt, status: await backendStatus(lab), metrics: await backendUpMetric(lab) };

    const ticks = await replayer.finish(60_000);
    assert.equal(ticks, LAST_TICK + 1);
    const tickAt = new Map(replayer.ticks().map((t) => [t.index, t.t]));
    await collectors.stop();
    const end = await templatesSent();
    const balanced = (await lab.status()).accounting.balanced;
    ev = {
      recording, collectors, arrivals: collectors.arrivals(), tickAt, baseline, failed, control, controlRun, failedRun,
      killAt, down, reviveAt, up, templatesSent: { beforeFail, afterFail, end }, balanced,
    };
    const moved = EXPORTERS.filter((e) => baseline.get(e) === failed);
    console.log(
      `# failover: collector ${failed} (${moved.length} exporters) down ${down.at - killAt} ms after its health endpoint died ` +
        `(bound ${DOWN_BOUND_MS} ms; seen via /api/status after ${down.seenAt - killAt} ms); ` +
        `rejoined ${up.at - reviveAt} ms after it came back (bound ${UP_BOUND_MS} ms; seen after ${up.seenAt - reviveAt} ms); ` +
        `exporters per collector ${load.join('/')}; control collector ${control}`,
    );
  });

  after(async () => {
    await lab.down();
  });

  // ---- helpers over the evidence ----

  const name = (k: number) => backendName(lab, k);
  const tickOf = (a: Arrival) => ev.recording.indexOf.get(a.sequence) ?? -1;
  /** First tick sent after epoch ms `t` (plus the time the workers take to apply a change). */
  const firstTickAfter = (t: number) => Math.min(...[...ev.tickAt].filter(([, at]) => at > t + APPLY_MS).map(([i]) => i));
  const lastTickBefore = (t: number) => Math.max(...[...ev.tickAt].filter(([, at]) => at < t).map(([i]) => i));
  const exportersOf = (k: number) => EXPORTERS.filter((e) => ev.baseline.get(e) === k);
  const dataFrom = (e: string) => ev.arrivals.filter((a) => a.exporter === e && a.data);
  /** The next softflowd template datagram at or after tick i. */
  const nextRefresh = (i: number) => Math.ceil(i / REFRESH) * REFRESH;

  /** Checks that `run` decoded every flow of `arrivals` (data datagrams it received); returns the flow count. */
  function assertDecoded(run: NfcapdRun, arrivals: Arrival[], what: string): number {
    let n = 0;
    for (const a of arrivals) {
      const flows = flowsOf(ev.recording, a.exporter, a.sequence);
      const missing = flows.filter((f) => !run.flows.has(f));
      assert.deepEqual(missing, [], `${what}: nfcapd on collector ${run.collector} did not decode ${missing.length} of ${flows.length} flows of ${a.exporter}'s datagram at tick ${tickOf(a)}`);
      n += flows.length;
    }
    return n;
  }

  // ---- 1. failover ----

  test('failover: the collector whose health endpoint died is down in /api/status and /metrics within fall × interval + timeout', () => {
    const ms = ev.down.at - ev.killAt;
    assert.ok(ms >= 0 && ms <= DOWN_BOUND_MS + SLACK_MS, `down ${ms} ms after the endpoint died; bound ${DOWN_BOUND_MS} ms + ${SLACK_MS} ms slack`);
    assert.ok(ev.down.seenAt - ev.killAt <= DOWN_BOUND_MS + API_SLACK_MS, `/api/status showed it down after ${ev.down.seenAt - ev.killAt} ms`);
    for (let k = 0; k < 3; k++) {
      const row = ev.down.status.find((b) => b.backend === name(k));
      assert.equal(row?.up, k !== ev.failed, `/api/status up of ${name(k)}`);
      assert.equal(ev.down.metrics[name(k)], k === ev.failed ? 0 : 1, `mirrorgate_backend_up of ${name(k)}`);
    }
    assert.match(ev.down.status.find((b) => b.backend === name(ev.failed))!.detail, /ECONNREFUSED/);
  });

  test('failover: every datagram arrives exactly once; only the dead collector\'s exporters move, each to one survivor', () => {
    // Exactly once: each exporter's data datagram of each tick, at exactly one collector.
    for (const e of EXPORTERS) {
      const seen = new Map<number, number>();
      for (const a of dataFrom(e)) seen.set(tickOf(a), (seen.get(tickOf(a)) ?? 0) + 1);
      const ticks = [...ev.tickAt.keys()];
      assert.deepEqual(ticks.filter((i) => seen.get(i) !== 1), [], `${e}: ticks not delivered exactly once`);
    }
    // Exporters of the surviving collectors never move, through failover and rejoin.
    for (const e of EXPORTERS.filter((x) => ev.baseline.get(x) !== ev.failed)) {
      const where = new Set(dataFrom(e).map((a) => a.collector));
      assert.deepEqual([...where], [ev.baseline.get(e)], `${e} stays on collector ${ev.baseline.get(e)}`);
    }
    // The dead collector's exporters: on it until the failure, then each on one other collector.
    const from = firstTickAfter(ev.down.at);
    const to = lastTickBefore(ev.up.at);
    assert.ok(to - from >= 8, `a down window of ticks ${from}-${to}`);
    const targets = new Set<number>();
    for (const e of exportersOf(ev.failed)) {
      const early = dataFrom(e).filter((a) => tickOf(a) < FAIL_TICK);
      assert.ok(early.every((a) => a.collector === ev.failed), `${e} was on collector ${ev.failed} before the failure`);
      const moved = new Set(dataFrom(e).filter((a) => tickOf(a) >= from && tickOf(a) <= to).map((a) => a.collector));
      assert.equal(moved.size, 1, `${e} moved to one collector: ${[...moved].join(', ')}`);
      assert.ok(!moved.has(ev.failed), `${e} left collector ${ev.failed}`);
      targets.add([...moved][0]);
    }
    // Nothing at all (data or templates) reached the dead collector while it was out of the hash.
    const during = ev.arrivals.filter((a) => a.collector === ev.failed && a.tUs / 1000 > ev.down.at + APPLY_MS && a.tUs / 1000 < ev.up.at);
    assert.deepEqual(during.map((a) => `${a.exporter}@${tickOf(a)}`), [], 'nothing reached the down collector');
    assert.ok(targets.size >= 1);
  });

  test("failover: the new collector's nfcapd decodes the moved exporters' first datagrams (templates sent ahead)", () => {
    const from = firstTickAfter(ev.down.at);
    const refresh = nextRefresh(from);
    let flows = 0;
    for (const e of exportersOf(ev.failed)) {
      // Everything of e's at another collector before the revive came after its move.
      const atNew = ev.arrivals.filter((a) => a.exporter === e && a.collector !== ev.failed && a.tUs / 1000 < ev.reviveAt);
      const target = atNew[0].collector;
      // The data datagrams before softflowd's own refresh: only mirrorgate's copy makes them decodable.
      const beforeRefresh = atNew.filter((a) => a.data && tickOf(a) < refresh);
      assert.ok(beforeRefresh.length >= 3, `${e}: ${beforeRefresh.length} data datagrams between the move (tick ${tickOf(atNew[0])}) and softflowd's refresh (tick ${refresh})`);
      const run = ev.collectors.runAt(target, beforeRefresh[0].tUs);
      assert.ok(run, `collector ${target}'s nfcapd was running`);
      flows += assertDecoded(run, beforeRefresh, `${e} moved to collector ${target}`);
      // Why: mirrorgate's template datagram (templates only, from the exporter's address) came first.
      const [first, second] = atNew;
      assert.ok(first.templates && !first.data, `${e}: the first datagram at collector ${target} is a template-only datagram (got templates=${first.templates} data=${first.data})`);
      assert.ok(second?.data, `${e}: then the data`);
    }
    assert.ok(flows > 0);
    assert.ok(ev.templatesSent.afterFail - ev.templatesSent.beforeFail >= exportersOf(ev.failed).length, `select.templates_sent rose by ${ev.templatesSent.afterFail - ev.templatesSent.beforeFail}`);
  });

  test('contrast: a collector that lost its templates without the gateway knowing cannot decode until softflowd refreshes them', () => {
    const run = ev.controlRun;
    const refresh = nextRefresh(CONTROL_TICK);
    for (const e of exportersOf(ev.control)) {
      const received = ev.arrivals.filter((a) => a.exporter === e && a.collector === ev.control && run.from <= a.tUs / 1000 && a.tUs / 1000 <= run.until);
      const blind = received.filter((a) => a.data && tickOf(a) < refresh);
      const after = received.filter((a) => a.data && tickOf(a) >= refresh);
      assert.ok(blind.length >= 8, `${e}: ${blind.length} data datagrams reached the restarted nfcapd before softflowd's refresh`);
      assert.ok(!received.some((a) => a.templates && tickOf(a) < refresh), `${e}: nothing sent templates ahead (the gateway saw no reason to)`);
      const lost = blind.flatMap((a) => flowsOf(ev.recording, e, a.sequence)).filter((f) => run.flows.has(f));
      assert.deepEqual(lost, [], `${e}: nfcapd could not decode data datagrams without templates`);
      assertDecoded(run, after, `${e} after softflowd's refresh at tick ${refresh}`);
    }
  });

  // ---- 2. rejoin ----

  test('rejoin: the collector is up again in /api/status and /metrics within rise × interval', () => {
    const ms = ev.up.at - ev.reviveAt;
    assert.ok(ms >= 0 && ms <= UP_BOUND_MS + SLACK_MS, `up ${ms} ms after the endpoint returned; bound ${UP_BOUND_MS} ms + ${SLACK_MS} ms slack`);
    assert.ok(ev.up.seenAt - ev.reviveAt <= UP_BOUND_MS + API_SLACK_MS, `/api/status showed it up after ${ev.up.seenAt - ev.reviveAt} ms`);
    for (let k = 0; k < 3; k++) {
      assert.equal(ev.up.status.find((b) => b.backend === name(k))?.up, true);
      assert.equal(ev.up.metrics[name(k)], 1, `mirrorgate_backend_up of ${name(k)}`);
    }
  });

  test('rejoin: exactly the collector\'s own exporters move back to it', () => {
    const back = firstTickAfter(ev.up.at);
    assert.ok(back < LAST_TICK - 4, `moved back by tick ${back}`);
    for (const e of exportersOf(ev.failed)) {
      const late = dataFrom(e).filter((a) => tickOf(a) >= back);
      assert.ok(late.length > 0 && late.every((a) => a.collector === ev.failed), `${e} is back on collector ${ev.failed}`);
    }
    const strangers = ev.arrivals.filter((a) => a.collector === ev.failed && ev.baseline.get(a.exporter) !== ev.failed);
    assert.deepEqual([...new Set(strangers.map((a) => a.exporter))], [], 'no other exporter ever reached it');
  });

  test("rejoin: the collector's restarted nfcapd decodes its returning exporters at once (templates re-sent)", () => {
    const back = firstTickAfter(ev.up.at);
    const refresh = nextRefresh(back);
    const run = ev.failedRun;
    for (const e of exportersOf(ev.failed)) {
      const received = ev.arrivals.filter((a) => a.exporter === e && a.collector === ev.failed && a.tUs / 1000 >= run.from);
      const beforeRefresh = received.filter((a) => a.data && tickOf(a) < refresh);
      assert.ok(beforeRefresh.length >= 3, `${e}: ${beforeRefresh.length} data datagrams before softflowd's refresh at tick ${refresh}`);
      assertDecoded(run, beforeRefresh, `${e} back on collector ${ev.failed}`);
      const [first, second] = received;
      assert.ok(first.templates && !first.data, `${e}: the first datagram at the rejoined collector is a template-only datagram`);
      assert.ok(second?.data, `${e}: then the data`);
    }
    assert.ok(ev.templatesSent.end - ev.templatesSent.afterFail >= exportersOf(ev.failed).length, 'templates were sent ahead of the returning streams');
  });

  test('the template datagram sent ahead does not count as a lost export packet at the collector', () => {
    // NetFlow v9's sequence number counts export packets (RFC 3954 §5.1). A collector that first
    // hears an exporter mid-stream starts counting there; from then on these streams are
    // contiguous, so any sequence failure nfcapd counts for a moved exporter at its new
    // collector, or at the rejoined collector's fresh nfcapd, comes from the injected datagram.
    const failures: string[] = [];
    for (const e of exportersOf(ev.failed)) {
      const target = ev.arrivals.find((a) => a.exporter === e && a.collector !== ev.failed)!.collector;
      const runs = [ev.collectors.runAt(target, ev.arrivals.find((a) => a.exporter === e && a.collector === target)!.tUs)!, ev.failedRun];
      for (const run of runs) {
        const n = run.sequenceFailures.get(e) ?? 0;
        if (n) failures.push(`${e} at collector ${run.collector}: ${n}`);
      }
    }
    for (const e of exportersOf(ev.control)) {
      const n = ev.controlRun.sequenceFailures.get(e) ?? 0;
      assert.equal(n, 0, `${e} at the control collector (never moved, nothing sent ahead): ${n} sequence failures`);
    }
    assert.deepEqual(failures, [], 'nfcapd sequence failures caused by template datagrams that repeat the data packet\'s sequence number');
  });

  test("the gateway's accounting balances", () => {
    assert.equal(ev.balanced, true);
  });
});
