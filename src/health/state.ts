/**
 * The per-backend health state machine: pure and synchronous, so every rule is unit-testable
 * without sockets or timers. The monitor owns the clock and feeds probe results in.
 *
 *            fail × fall (consecutive)
 *       up ───────────────────────────▶ down
 *          ◀───────────────────────────
 *            ok × rise (consecutive)
 *
 * A success resets the failure streak and a failure resets the success streak, so a flapping
 * backend (ok, fail, ok, fail...) stays where it is rather than toggling on every probe.
 *
 * Initial state. Before the first verdict there is no evidence either way, and the default is
 * `up`: traffic flows from the first packet after a gateway start or reload. Starting `down`
 * would hold every flow record for `rise × interval` on each restart, while healthy collectors
 * are the common case; a dead one costs at most `fall × interval + timeout` of records sent to
 * it, the same as a collector that dies later. `initial: down` is there for destinations where
 * sending to a dead backend is worse than waiting (e.g. one that replicates to a fallback).
 */

export type HealthState = 'up' | 'down';

export interface Thresholds {
  /** Consecutive successes that bring a down backend up (1-10). */
  rise: number;
  /** Consecutive failures that take an up backend down (1-10). */
  fall: number;
}

export interface Transition {
  from: HealthState;
  to: HealthState;
  /** Epoch milliseconds. */
  at: number;
  /** The probe detail that tipped the balance (or why the state was reset). */
  detail: string;
}

/** Transitions kept per backend; older ones are dropped (the counters still hold the totals). */
export const TRANSITION_HISTORY = 16;

export interface BackendHealth {
  readonly state: HealthState;
  /** Epoch ms at which the backend entered `state` (creation time for the initial state). */
  readonly since: number;
  /** The last probe's detail; empty before the first probe. */
  readonly lastDetail: string;
  readonly lastLatencyMs: number | null;
  /** Epoch ms of the last probe's verdict, null before the first. */
  readonly lastProbeAt: number | null;
  /** Current streaks; at most one of them is non-zero. */
  readonly consecutive: { readonly ok: number; readonly fail: number };
  /** Total probes and failed probes since the backend was (re)created. */
  readonly probes: number;
  readonly failures: number;
  /** Most recent last, at most TRANSITION_HISTORY. */
  readonly transitions: readonly Transition[];
}

export interface ProbeOutcome {
  ok: boolean;
  detail: string;
  latencyMs?: number;
}

export function initialHealth(state: HealthState, now: number): BackendHealth {
  return {
    state,
    since: now,
    lastDetail: '',
    lastLatencyMs: null,
    lastProbeAt: null,
    consecutive: { ok: 0, fail: 0 },
    probes: 0,
    failures: 0,
    transitions: [],
  };
}

/**
 * Applies one probe result at time `now`. Returns the next state (the input is not modified) and
 * the transition it caused, if any.
 */
export function applyProbe(
  h: BackendHealth,
  outcome: ProbeOutcome,
  now: number,
  { rise, fall }: Thresholds,
): { health: BackendHealth; transition: Transition | null } {
  const consecutive = outcome.ok ? { ok: h.consecutive.ok + 1, fail: 0 } : { ok: 0, fail: h.consecutive.fail + 1 };
  let to: HealthState = h.state;
  if (h.state === 'up' && consecutive.fail >= fall) to = 'down';
  else if (h.state === 'down' && consecutive.ok >= rise) to = 'up';
  const transition = to !== h.state ? { from: h.state, to, at: now, detail: outcome.detail } : null;
  const health: BackendHealth = {
    state: to,
    since: transition ? now : h.since,
    lastDetail: outcome.detail,
    lastLatencyMs: outcome.latencyMs ?? null,
    lastProbeAt: now,
    consecutive,
    probes: h.probes + 1,
    failures: h.failures + (outcome.ok ? 0 : 1),
    transitions: transition ? [...h.transitions, transition].slice(-TRANSITION_HISTORY) : h.transitions,
  };
  return { health, transition };
}
