import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { pino } from 'pino';
import { ConfigError, MirrorgateError } from '../../src/control/errors.js';
import type { ProbeResult } from '../../src/health/checks.js';
import { HealthCheckSchema, type HealthCheckConfig, type HealthCheckInput } from '../../src/health/config.js';
import { HealthMonitor, type HealthChange, type HealthSpec } from '../../src/health/monitor.js';
import { closedPort, httpServer, sleep, tcpServer, waitFor } from './helpers.js';

/** Scheduling slack on a loaded CI machine, on top of the contract's bound. */
const SLACK_MS = 150;

/**
 * A validated check. The schema's 100 ms floor on `interval` protects operators from typos; the
 * monitor itself takes any interval, and these tests run at 50 ms to stay fast.
 */
const check = (c: HealthCheckInput): HealthCheckConfig => ({
  ...HealthCheckSchema.parse({ ...c, interval: 1000, timeout: 10 }),
  interval: (c.interval as number | undefined) ?? 1000,
  timeout: (c.timeout as number | undefined) ?? 500,
});

function spec(backend: string, c: HealthCheckInput, destination = 'collectors'): HealthSpec {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(backend)!;
  return { destination, backend, host: m[1], port: Number(m[2]), check: check(c) };
}

function memoryLogger() {
  const lines: Array<{ level: number; msg: string; backend?: string; to?: string }> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}

/** A scripted probe: verdicts per backend, call and concurrency bookkeeping. */
function scriptedProbe(delayMs = 0) {
  const verdict = new Map<string, boolean>();
  const calls = new Map<string, number>();
  const starts = new Map<string, number[]>();
  const inflight = new Map<string, number>();
  let maxConcurrent = 0;
  const aborted: string[] = [];
  const probe = async (s: HealthSpec, signal: AbortSignal): Promise<ProbeResult> => {
    calls.set(s.backend, (calls.get(s.backend) ?? 0) + 1);
    starts.set(s.backend, [...(starts.get(s.backend) ?? []), performance.now()]);
    const n = (inflight.get(s.backend) ?? 0) + 1;
    inflight.set(s.backend, n);
    maxConcurrent = Math.max(maxConcurrent, n);
    if (delayMs > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delayMs);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          aborted.push(s.backend);
          resolve();
        });
      });
    }
    inflight.set(s.backend, (inflight.get(s.backend) ?? 1) - 1);
    const ok = verdict.get(s.backend) ?? true;
    return { ok, detail: ok ? 'connected' : 'ECONNREFUSED', latencyMs: delayMs };
  };
  return { probe, verdict, calls, starts, aborted, maxConcurrent: () => maxConcurrent };
}

/** Resolves with the next `change` for `backend` going `to`, and how long it took. */
function nextChange(m: HealthMonitor, backend: string, to: 'up' | 'down', timeoutMs: number): Promise<{ change: HealthChange; ms: number }> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      m.off('change', on);
      reject(new Error(`${backend} did not go ${to} within ${timeoutMs} ms: ${JSON.stringify(m.states())}`));
    }, timeoutMs);
    const on = (c: HealthChange) => {
      if (c.backend !== backend || c.to !== to) return;
      clearTimeout(t);
      m.off('change', on);
      resolve({ change: c, ms: performance.now() - start });
    };
    m.on('change', on);
  });
}

test('tcp: a killed collector leaves the up set within fall × interval + timeout, returns within rise × interval', async () => {
  const interval = 50;
  const timeout = 30;
  const rise = 2;
  const fall = 3;
  const server = await tcpServer();
  const backend = `127.0.0.1:${server.port}`;
  const { log, lines } = memoryLogger();
  const m = new HealthMonitor({ log });
  const restarted: HealthChange[] = [];
  m.on('restarted', (c) => restarted.push(c));
  try {
    m.update([spec(backend, { check: 'tcp', interval, timeout, rise, fall })]);
    await waitFor(() => (m.states().collectors?.[backend]?.probes ?? 0) >= 2, 1000, 'two probes');
    assert.equal(m.isUp('collectors', backend), true);
    assert.equal(m.states().collectors[backend].lastDetail, 'connected');

    const down = nextChange(m, backend, 'down', 2000);
    await server.close();
    const d = await down;
    assert.ok(d.ms <= fall * interval + timeout + SLACK_MS, `down after ${d.ms.toFixed(0)} ms`);
    assert.deepEqual({ ...d.change, at: 0 }, { destination: 'collectors', backend, from: 'up', to: 'down', detail: 'ECONNREFUSED', at: 0 });
    assert.equal(m.isUp('collectors', backend), false);
    const s = m.states().collectors[backend];
    assert.equal(s.state, 'down');
    assert.equal(s.consecutive.fail, fall, 'down on exactly the fall-th failure');
    assert.equal(s.since, d.change.at);

    const up = nextChange(m, backend, 'up', 2000);
    await server.reopen();
    const u = await up;
    assert.ok(u.ms <= rise * interval + SLACK_MS, `up after ${u.ms.toFixed(0)} ms`);
    assert.equal(m.isUp('collectors', backend), true);
    assert.equal(restarted.length, 1, 'down → up is announced as restarted');
    assert.deepEqual(restarted[0], u.change);
    assert.deepEqual(m.states().collectors[backend].transitions.map((t) => `${t.from}->${t.to}`), ['up->down', 'down->up']);

    const changes = lines.filter((l) => l.to !== undefined).map((l) => [l.level, l.to, l.backend]);
    assert.deepEqual(changes, [[40, 'down', backend], [30, 'up', backend]], 'warn on down, info on up');
  } finally {
    m.stop();
    await server.close();
  }
});

test('http: a hanging collector leaves the up set within fall × interval + timeout', async () => {
  const interval = 60;
  const timeout = 40;
  const fall = 2;
  const rise = 1;
  let mode: 'ok' | 'hang' | 'error' = 'ok';
  const server = await httpServer((_req, res) => {
    if (mode === 'hang') return;
    res.statusCode = mode === 'ok' ? 200 : 503;
    res.end();
  }, '::1');
  const backend = `[::1]:${server.port}`;
  const m = new HealthMonitor();
  try {
    m.update([spec(backend, { check: 'http', interval, timeout, rise, fall, path: '/status' })]);
    await waitFor(() => m.states().collectors?.[backend]?.lastDetail === 'HTTP 200', 1000, 'a first probe');

    const down = nextChange(m, backend, 'down', 2000);
    mode = 'hang';
    const d = await down;
    assert.ok(d.ms <= fall * interval + timeout + SLACK_MS, `down after ${d.ms.toFixed(0)} ms`);
    assert.equal(d.change.detail, `timeout after ${timeout} ms`);

    const up = nextChange(m, backend, 'up', 2000);
    mode = 'ok';
    const u = await up;
    assert.ok(u.ms <= rise * interval + timeout + SLACK_MS, `up after ${u.ms.toFixed(0)} ms`);

    const again = nextChange(m, backend, 'down', 2000);
    mode = 'error';
    assert.equal((await again).change.detail, 'HTTP 503 (expected 200)');
  } finally {
    m.stop();
    await server.close();
  }
});

test('probes of one backend never overlap, even when a probe outlasts the interval', async () => {
  const p = scriptedProbe(70);
  const m = new HealthMonitor({ probe: p.probe });
  try {
    m.update([spec('10.0.0.1:2055', { check: 'tcp', interval: 100, timeout: 50 }), spec('10.0.0.2:2055', { check: 'tcp', interval: 100, timeout: 50 })]);
    await sleep(400);
    assert.equal(p.maxConcurrent(), 1);
    assert.ok((p.calls.get('10.0.0.1:2055') ?? 0) >= 3);
  } finally {
    m.stop();
  }
});

test('jitter spreads backends apart and only ever shortens the interval', async () => {
  const p = scriptedProbe();
  const m = new HealthMonitor({ probe: p.probe, jitter: 0.5 });
  const interval = 100;
  const backends = Array.from({ length: 20 }, (_, i) => `10.0.1.${i + 1}:2055`);
  const t0 = performance.now();
  try {
    m.update(backends.map((b) => spec(b, { check: 'tcp', interval, timeout: 50 })));
    await sleep(450);
  } finally {
    m.stop();
  }
  const firsts = backends.map((b) => p.starts.get(b)![0] - t0);
  assert.ok(Math.max(...firsts) - Math.min(...firsts) > 10, `first probes at ${firsts.map((x) => x.toFixed(0)).join(', ')} ms`);
  assert.ok(Math.max(...firsts) <= 0.5 * interval + SLACK_MS);
  for (const b of backends) {
    const s = p.starts.get(b)!;
    for (let i = 1; i < s.length; i++) {
      const gap = s[i] - s[i - 1];
      assert.ok(gap >= 0.5 * interval - 2 && gap <= interval + SLACK_MS, `${b}: gap ${gap.toFixed(1)} ms`);
    }
  }
});

test('update(): unchanged backends keep their state, changed checks start over, removed ones stop', async () => {
  const p = scriptedProbe();
  const m = new HealthMonitor({ probe: p.probe, jitter: 0 });
  const changes: HealthChange[] = [];
  const restarted: HealthChange[] = [];
  m.on('change', (c) => changes.push(c));
  m.on('restarted', (c) => restarted.push(c));
  const a = '10.0.0.1:2055';
  const b = '10.0.0.2:2055';
  const fast = { check: 'tcp', interval: 100, timeout: 50, fall: 1, rise: 2 } as const;
  try {
    p.verdict.set(a, false);
    p.verdict.set(b, false);
    m.update([spec(a, fast), spec(b, fast)]);
    await waitFor(() => !m.isUp('collectors', a) && !m.isUp('collectors', b), 1000, 'both down');
    assert.equal(changes.length, 2);

    // A reload with the same config (fresh objects): nothing changes, probing goes on.
    const before = m.states().collectors[a];
    m.update([spec(a, fast), spec(b, fast)]);
    assert.equal(m.isUp('collectors', a), false);
    assert.deepEqual(m.states().collectors[a], before);
    await waitFor(() => m.states().collectors[a].probes > before.probes, 1000, 'probing to continue');
    assert.equal(changes.length, 2, 'no event for an unchanged reload');

    // A changed check for `a` starts over (initial: up, counters reset); `b` is removed.
    const callsB = p.calls.get(b);
    m.update([spec(a, { ...fast, fall: 2 })]);
    const s = m.states();
    assert.deepEqual(Object.keys(s.collectors), [a]);
    assert.equal(s.collectors[a].state, 'up');
    assert.deepEqual([s.collectors[a].probes, s.collectors[a].failures, s.collectors[a].transitions.length], [0, 0, 0]);
    assert.deepEqual(changes.slice(2).map((c) => [c.backend, c.from, c.to, c.detail]), [[a, 'down', 'up', 'health check changed']]);
    assert.equal(restarted.length, 1);
    assert.equal(m.isUp('collectors', b), true, 'an unmonitored backend counts as up');
    await sleep(250);
    assert.equal(p.calls.get(b), callsB, 'a removed backend is no longer probed');

    // The same backend under another destination is a separate key.
    m.update([spec(a, { ...fast, fall: 2 }), spec(a, fast, 'other')]);
    assert.deepEqual(Object.keys(m.states()).sort(), ['collectors', 'other']);
  } finally {
    m.stop();
  }
});

test('a reload that changes another destination keeps this one\'s health (real sockets)', async () => {
  const port = await closedPort();
  const dead = `127.0.0.1:${port}`;
  const m = new HealthMonitor();
  try {
    const c = { check: 'tcp', interval: 50, timeout: 30, fall: 1 } as const;
    m.update([spec(dead, c, 'netflow')]);
    await waitFor(() => !m.isUp('netflow', dead), 1000, 'down');
    m.update([spec(dead, c, 'netflow'), spec('127.0.0.1:9', { check: 'none' }, 'sflow')]);
    assert.equal(m.isUp('netflow', dead), false);
    assert.equal(m.states().netflow[dead].lastDetail, 'ECONNREFUSED');
  } finally {
    m.stop();
  }
});

test('check none: up, never probed', async () => {
  const p = scriptedProbe();
  p.verdict.set('10.0.0.1:2055', false);
  const m = new HealthMonitor({ probe: p.probe });
  try {
    m.update([spec('10.0.0.1:2055', { check: 'none', initial: 'down', interval: 100, timeout: 50 })]);
    await sleep(150);
    assert.equal(p.calls.size, 0);
    const s = m.states().collectors['10.0.0.1:2055'];
    assert.deepEqual([s.state, s.check, s.lastDetail, s.probes], ['up', 'none', 'no health check', 0]);
  } finally {
    m.stop();
  }
});

test('initial: down waits for rise successes, then announces up and restarted', async () => {
  const p = scriptedProbe();
  const m = new HealthMonitor({ probe: p.probe });
  const restarted: HealthChange[] = [];
  m.on('restarted', (c) => restarted.push(c));
  try {
    const up = nextChange(m, '10.0.0.1:2055', 'up', 1000);
    m.update([spec('10.0.0.1:2055', { check: 'tcp', initial: 'down', rise: 3, interval: 100, timeout: 50 })]);
    assert.equal(m.isUp('collectors', '10.0.0.1:2055'), false);
    const u = await up;
    assert.ok(u.ms <= 3 * 100 + SLACK_MS);
    assert.equal(m.states().collectors['10.0.0.1:2055'].probes, 3);
    assert.equal(restarted.length, 1);
  } finally {
    m.stop();
  }
});

test('a throwing change listener does not stop the probing', async () => {
  const p = scriptedProbe();
  const { log, lines } = memoryLogger();
  const m = new HealthMonitor({ probe: p.probe, log, jitter: 0 });
  m.on('change', () => {
    throw new Error('listener bug');
  });
  p.verdict.set('10.0.0.1:2055', false);
  try {
    m.update([spec('10.0.0.1:2055', { check: 'tcp', fall: 1, interval: 100, timeout: 50 })]);
    await waitFor(() => !m.isUp('collectors', '10.0.0.1:2055'), 1000, 'down');
    const probes = m.states().collectors['10.0.0.1:2055'].probes;
    await waitFor(() => m.states().collectors['10.0.0.1:2055'].probes > probes, 1000, 'another probe');
    assert.ok(lines.some((l) => l.level === 50 && l.msg === 'health: change listener threw'));
  } finally {
    m.stop();
  }
});

test('update() rejects bad specs whole, and is refused after stop()', () => {
  const m = new HealthMonitor();
  const good = spec('10.0.0.1:2055', { check: 'tcp' });
  assert.throws(
    () => m.update([good, { ...good }]),
    (e: unknown) => e instanceof ConfigError && e.code === 'MG_ERR_CONFIG' && /listed twice/.test(e.problems[0]),
  );
  assert.throws(
    () => m.update([{ ...good, backend: '[::1]:1', host: '[::1]' }]),
    (e: unknown) => e instanceof ConfigError && /expected an IP address, got "\[::1\]"/.test(e.problems[0]),
  );
  assert.throws(() => m.update([{ ...good, port: 0 }]), /expected a port 1-65535, got 0/);
  assert.deepEqual(m.states(), {}, 'nothing was started');
  assert.throws(() => new HealthMonitor({ jitter: 0.9 }), /expected jitter 0-0.5, got 0.9/);
  m.stop();
  m.stop();
  assert.throws(() => m.update([good]), (e: unknown) => e instanceof MirrorgateError && e.code === 'MG_ERR_HEALTH');
});

test('stop() aborts in-flight probes and keeps the last states', async () => {
  const p = scriptedProbe(1000);
  const m = new HealthMonitor({ probe: p.probe, jitter: 0 });
  m.update([spec('10.0.0.1:2055', { check: 'tcp', interval: 2000, timeout: 1000 })]);
  await waitFor(() => p.calls.size === 1, 1000, 'a probe in flight');
  m.stop();
  assert.deepEqual(p.aborted, ['10.0.0.1:2055']);
  await sleep(20);
  assert.equal(m.states().collectors['10.0.0.1:2055'].probes, 0, 'an aborted probe is not counted');
});

test('stop() leaves no timers or sockets: the process exits promptly', async () => {
  const monitorUrl = new URL('../../src/health/monitor.js', import.meta.url).href;
  // A hanging HTTP collector, so a probe (timeout 1900 ms) is in flight when stop() is called.
  const script = `
    import { createServer } from 'node:http';
    import { HealthMonitor } from ${JSON.stringify(monitorUrl)};
    let requests = 0;
    const server = createServer(() => { requests++; });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const m = new HealthMonitor({ jitter: 0 });
    const check = { check: 'http', interval: 2000, timeout: 1900, rise: 2, fall: 3, path: '/', expect: [[200, 200]], initial: 'up' };
    m.update([
      { destination: 'd', backend: 'a', host: '127.0.0.1', port: server.address().port, check },
      { destination: 'd', backend: 'b', host: '127.0.0.1', port: server.address().port, check: { ...check, check: 'tcp' } },
    ]);
    await new Promise((r) => setTimeout(r, 150));
    const t = performance.now();
    m.stop();
    server.close();
    process.on('exit', () => console.log(JSON.stringify({ requests, exitAfterStopMs: performance.now() - t })));
  `;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 5000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
  const r = JSON.parse(out) as { requests: number; exitAfterStopMs: number };
  assert.equal(r.requests, 1, 'the http probe was in flight');
  assert.ok(r.exitAfterStopMs < 300, `exited ${r.exitAfterStopMs.toFixed(0)} ms after stop()`);
});
