/**
 * Probes every collector backend on its own schedule and keeps its up/down state. Runs on the
 * main thread; the data path only ever sees the resulting up set (built from `states()`/`isUp()`
 * or maintained from `change` events).
 *
 * Scheduling. Each backend has one timer. The first probe starts within `jitter × interval` of
 * the backend being added, and each later one `interval × (1 − jitter × random)` after the
 * previous one *started*, so 50 backends added together drift apart instead of probing in
 * lockstep. Jitter only ever shortens the gap, which keeps the timing contract below exact. A
 * probe ends within `timeout` < `interval`, and the next one is not started before the previous
 * one has finished: probes of one backend never overlap, even if the event loop stalls.
 *
 * Timing contract, for a backend that dies at time t (probes fail from then on):
 *   - the first probe that starts after t starts by t + interval;
 *   - the fall-th failing probe starts by t + fall × interval and ends by + timeout;
 *   so the backend leaves the up set within `fall × interval + timeout`.
 * For a backend that comes back at time t, the rise-th succeeding probe starts by
 * t + rise × interval, so it rejoins within `rise × interval` (plus that probe's latency).
 *
 * Reloads. `update(specs)` is called at start and on every config reload. A backend whose key
 * (destination + "ip:port") and check (host, port, health block) are unchanged keeps its state,
 * counters and schedule; a changed check starts over from its initial state; a removed backend
 * is stopped (timer cleared, in-flight probe aborted).
 *
 * Events (typed EventEmitter):
 *   change     { destination, backend, from, to, detail, at } on every up↔down transition,
 *              including a reset by `update()` that changes the state.
 *   restarted  the same payload, emitted after `change` when a backend goes down → up: the
 *              collector may have restarted and lost its NetFlow v9/IPFIX templates, so the
 *              template module re-sends them.
 * State changes are also logged through the optional pino logger: warn on down, info on up.
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../control/log.js';
import { ConfigError, MirrorgateError } from '../control/errors.js';
import { probe as runProbe, PROBE_DETAIL, type ProbeResult } from './checks.js';
import type { HealthCheckConfig } from './config.js';
import { applyProbe, initialHealth, type BackendHealth, type HealthState, type Transition } from './state.js';

export interface HealthSpec {
  destination: string;
  /** "ip:port" as written in the config ("[v6]:port" for IPv6): the backend's key and name. */
  backend: string;
  /** Address literal to probe (IPv6 without brackets). */
  host: string;
  /** The backend's port; the probe uses `check.port` instead when that is set. */
  port: number;
  check: HealthCheckConfig;
}

export interface HealthChange {
  destination: string;
  backend: string;
  from: HealthState;
  to: HealthState;
  detail: string;
  /** Epoch milliseconds. */
  at: number;
}

export interface BackendStatus {
  check: HealthCheckConfig['check'];
  state: HealthState;
  /** Epoch ms since which the backend has been in `state`. */
  since: number;
  lastDetail: string;
  lastLatencyMs: number | null;
  lastProbeAt: number | null;
  consecutive: { ok: number; fail: number };
  probes: number;
  failures: number;
  transitions: readonly Transition[];
}

/** destination → backend → status. */
export type HealthSnapshot = Record<string, Record<string, BackendStatus>>;

export type HealthMonitorEvents = {
  change: [HealthChange];
  restarted: [HealthChange];
};

export type ProbeFunction = (spec: HealthSpec, signal: AbortSignal) => Promise<ProbeResult>;

export interface HealthMonitorOptions {
  /** Logs state changes (warn on down, info on up). */
  log?: Logger;
  /** Fraction of the interval used to spread probes, 0-0.5 (default 0.1). */
  jitter?: number;
  /** Replaces the network probe (tests, or checks of another kind). Must resolve, not reject. */
  probe?: ProbeFunction;
  /** Clock for timestamps (default Date.now). */
  now?: () => number;
}

const DEFAULT_JITTER = 0.1;

interface Entry {
  readonly spec: HealthSpec;
  readonly fingerprint: string;
  health: BackendHealth;
  timer: NodeJS.Timeout | null;
  inflight: AbortController | null;
  stopped: boolean;
}

const keyOf = (destination: string, backend: string): string => `${destination}\u0000${backend}`;

/** What must match for a reload to keep a backend's state. */
function fingerprint(s: HealthSpec): string {
  const c = s.check;
  return JSON.stringify([s.host, s.port, c.check, c.interval, c.timeout, c.rise, c.fall, c.port ?? null, c.path, c.expect, c.initial]);
}

export class HealthMonitor extends EventEmitter<HealthMonitorEvents> {
  private readonly entries = new Map<string, Entry>();
  private readonly log: Logger | undefined;
  private readonly jitter: number;
  private readonly probeFn: ProbeFunction;
  private readonly now: () => number;
  private stopped = false;

  constructor(options: HealthMonitorOptions = {}) {
    super();
    const jitter = options.jitter ?? DEFAULT_JITTER;
    if (!(typeof jitter === 'number' && jitter >= 0 && jitter <= 0.5)) {
      throw new MirrorgateError('MG_ERR_HEALTH', `HealthMonitor: expected jitter 0-0.5, got ${String(jitter)}`);
    }
    this.jitter = jitter;
    this.log = options.log;
    this.probeFn = options.probe ?? ((s, signal) => runProbe(s.host, s.port, s.check, signal));
    this.now = options.now ?? Date.now;
  }

  /**
   * Replaces the set of monitored backends (see "Reloads" above). Throws ConfigError, changing
   * nothing, when a spec is invalid or a destination/backend pair is listed twice.
   */
  update(specs: readonly HealthSpec[]): void {
    if (this.stopped) throw new MirrorgateError('MG_ERR_HEALTH', 'HealthMonitor.update() called after stop()');
    const problems: string[] = [];
    const wanted = new Map<string, HealthSpec>();
    specs.forEach((s, i) => {
      const where = `health[${i}] (${s.destination} ${s.backend})`;
      if (isIP(s.host) === 0) problems.push(`${where}: expected an IP address, got ${JSON.stringify(s.host)}`);
      if (!(Number.isInteger(s.port) && s.port >= 1 && s.port <= 65535)) problems.push(`${where}: expected a port 1-65535, got ${s.port}`);
      const key = keyOf(s.destination, s.backend);
      if (wanted.has(key)) problems.push(`${where}: backend is listed twice for this destination`);
      wanted.set(key, s);
    });
    if (problems.length) throw new ConfigError(problems, 'health');

    const changes: HealthChange[] = [];
    for (const [key, e] of [...this.entries]) {
      const s = wanted.get(key);
      if (s && fingerprint(s) === e.fingerprint) continue;
      this.halt(e);
      this.entries.delete(key);
      if (!s) continue;
      // A changed check starts over; if that flips the state, listeners hear about it.
      const fresh = this.add(key, s);
      if (fresh.health.state !== e.health.state) {
        changes.push({ destination: s.destination, backend: s.backend, from: e.health.state, to: fresh.health.state, detail: 'health check changed', at: fresh.health.since });
      }
    }
    for (const [key, s] of wanted) if (!this.entries.has(key)) this.add(key, s);
    for (const c of changes) this.announce(c);
  }

  /** Snapshot of every monitored backend, by destination then backend. */
  states(): HealthSnapshot {
    const out: HealthSnapshot = {};
    for (const e of this.entries.values()) {
      const h = e.health;
      (out[e.spec.destination] ??= {})[e.spec.backend] = {
        check: e.spec.check.check,
        state: h.state,
        since: h.since,
        lastDetail: h.lastDetail,
        lastLatencyMs: h.lastLatencyMs,
        lastProbeAt: h.lastProbeAt,
        consecutive: { ...h.consecutive },
        probes: h.probes,
        failures: h.failures,
        transitions: h.transitions,
      };
    }
    return out;
  }

  /** False only for a monitored backend that is down; unmonitored backends count as up (as with check: none). */
  isUp(destination: string, backend: string): boolean {
    return this.entries.get(keyOf(destination, backend))?.health.state !== 'down';
  }

  /** Clears every timer and aborts in-flight probes; states() keeps the last snapshot. Idempotent. */
  stop(): void {
    this.stopped = true;
    for (const e of this.entries.values()) this.halt(e);
  }

  private add(key: string, spec: HealthSpec): Entry {
    const none = spec.check.check === 'none';
    const e: Entry = {
      spec,
      fingerprint: fingerprint(spec),
      // Nothing will probe a `none` backend, so it is up whatever `initial` says.
      health: initialHealth(none ? 'up' : spec.check.initial, this.now()),
      timer: null,
      inflight: null,
      stopped: false,
    };
    if (none) e.health = { ...e.health, lastDetail: PROBE_DETAIL.NO_CHECK };
    else this.schedule(e, Math.random() * this.jitter * spec.check.interval);
    this.entries.set(key, e);
    return e;
  }

  private halt(e: Entry): void {
    e.stopped = true;
    if (e.timer) clearTimeout(e.timer);
    e.timer = null;
    e.inflight?.abort();
    e.inflight = null;
  }

  private schedule(e: Entry, delayMs: number): void {
    e.timer = setTimeout(() => void this.run(e), Math.max(0, delayMs));
  }

  private async run(e: Entry): Promise<void> {
    e.timer = null;
    if (e.stopped) return;
    const started = performance.now();
    const abort = new AbortController();
    e.inflight = abort;
    let result: ProbeResult;
    try {
      result = await this.probeFn(e.spec, abort.signal);
    } catch (err) {
      result = { ok: false, detail: err instanceof Error ? err.message : String(err), latencyMs: performance.now() - started };
    }
    if (e.stopped) return; // removed, replaced or stopped while the probe ran: its verdict is moot
    e.inflight = null;

    const { interval, rise, fall } = e.spec.check;
    const gap = interval * (1 - this.jitter * Math.random());
    this.schedule(e, gap - (performance.now() - started));

    const { health, transition } = applyProbe(e.health, result, this.now(), { rise, fall });
    e.health = health;
    if (transition) this.announce({ destination: e.spec.destination, backend: e.spec.backend, ...transition });
  }

  private announce(c: HealthChange): void {
    if (this.log) {
      const fields = { destination: c.destination, backend: c.backend, from: c.from, to: c.to, detail: c.detail };
      if (c.to === 'down') this.log.warn(fields, `health: backend ${c.backend} of ${c.destination} is down (${c.detail})`);
      else this.log.info(fields, `health: backend ${c.backend} of ${c.destination} is up (${c.detail})`);
    }
    try {
      this.emit('change', c);
      if (c.from === 'down' && c.to === 'up') this.emit('restarted', c);
    } catch (err) {
      // A throwing listener must not stop the probing; report it and carry on.
      if (this.log) this.log.error({ err, destination: c.destination, backend: c.backend }, 'health: change listener threw');
      else queueMicrotask(() => {
        throw err;
      });
    }
  }
}
