import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyProbe, initialHealth, TRANSITION_HISTORY, type BackendHealth, type HealthState, type Transition } from '../../src/health/state.js';

const run = (h: BackendHealth, oks: boolean[], t: { rise: number; fall: number }, t0 = 1000) => {
  const transitions: Transition[] = [];
  oks.forEach((ok, i) => {
    const r = applyProbe(h, { ok, detail: ok ? 'connected' : 'ECONNREFUSED', latencyMs: 1 }, t0 + i, t);
    h = r.health;
    if (r.transition) transitions.push(r.transition);
  });
  return { h, transitions };
};

test('starts in the initial state with nothing counted', () => {
  const h = initialHealth('up', 42);
  assert.deepEqual(h, { state: 'up', since: 42, lastDetail: '', lastLatencyMs: null, lastProbeAt: null, consecutive: { ok: 0, fail: 0 }, probes: 0, failures: 0, transitions: [] });
  assert.equal(initialHealth('down', 0).state, 'down');
});

test('goes down on the fall-th consecutive failure, not before', () => {
  const t = { rise: 2, fall: 3 };
  let h = initialHealth('up', 0);
  for (let i = 1; i <= 2; i++) {
    const r = applyProbe(h, { ok: false, detail: 'ECONNREFUSED' }, i, t);
    assert.equal(r.transition, null);
    h = r.health;
  }
  assert.equal(h.state, 'up');
  assert.deepEqual(h.consecutive, { ok: 0, fail: 2 });
  const r = applyProbe(h, { ok: false, detail: 'timeout after 500 ms', latencyMs: 500 }, 3, t);
  assert.deepEqual(r.transition, { from: 'up', to: 'down', at: 3, detail: 'timeout after 500 ms' });
  assert.equal(r.health.state, 'down');
  assert.equal(r.health.since, 3);
  assert.equal(r.health.lastDetail, 'timeout after 500 ms');
  assert.equal(r.health.lastLatencyMs, 500);
  assert.equal(r.health.lastProbeAt, 3);
  assert.deepEqual([r.health.probes, r.health.failures], [3, 3]);
});

test('comes back up on the rise-th consecutive success', () => {
  const t = { rise: 2, fall: 1 };
  const { h, transitions } = run(initialHealth('up', 0), [false, true, true], t);
  assert.deepEqual(transitions.map((x) => `${x.from}->${x.to}@${x.at}`), ['up->down@1000', 'down->up@1002']);
  assert.equal(h.state, 'up');
  assert.equal(h.since, 1002);
  assert.deepEqual([h.probes, h.failures], [3, 1]);
});

test('a flapping backend does not toggle', () => {
  const { h, transitions } = run(initialHealth('up', 0), Array.from({ length: 20 }, (_, i) => i % 2 === 0), { rise: 2, fall: 2 });
  assert.equal(transitions.length, 0);
  assert.equal(h.state, 'up');
});

test('does not modify its input', () => {
  const h = initialHealth('up', 0);
  const copy = structuredClone(h);
  applyProbe(h, { ok: false, detail: 'x' }, 1, { rise: 1, fall: 1 });
  assert.deepEqual(h, copy);
});

test('keeps the last TRANSITION_HISTORY transitions', () => {
  const oks = Array.from({ length: 50 }, (_, i) => i % 2 === 1); // fail, ok, fail, ok...: each one flips with rise=fall=1
  const { h } = run(initialHealth('up', 0), oks, { rise: 1, fall: 1 });
  assert.equal(h.transitions.length, TRANSITION_HISTORY);
  assert.equal(h.transitions.at(-1)!.at, 1049);
});

/**
 * Reference model, written differently on purpose: split the results into runs of equal
 * verdicts; a run of failures at least `fall` long takes an up backend down at its fall-th
 * element, a run of successes at least `rise` long brings a down backend up at its rise-th.
 */
function model(initial: HealthState, oks: boolean[], rise: number, fall: number) {
  let state = initial;
  const flips: Array<{ to: HealthState; index: number }> = [];
  let i = 0;
  while (i < oks.length) {
    let j = i;
    while (j < oks.length && oks[j] === oks[i]) j++;
    const len = j - i;
    if (oks[i] && state === 'down' && len >= rise) flips.push({ to: (state = 'up'), index: i + rise - 1 });
    if (!oks[i] && state === 'up' && len >= fall) flips.push({ to: (state = 'down'), index: i + fall - 1 });
    i = j;
  }
  const last = oks.length ? oks[oks.length - 1] : undefined;
  let streak = 0;
  for (let k = oks.length - 1; k >= 0 && oks[k] === last; k--) streak++;
  return { state, flips, streak: { ok: last === true ? streak : 0, fail: last === false ? streak : 0 } };
}

test('property: matches the run-length reference model for any sequence', () => {
  fc.assert(
    fc.property(
      fc.constantFrom<HealthState>('up', 'down'),
      fc.integer({ min: 1, max: 10 }),
      fc.integer({ min: 1, max: 10 }),
      fc.array(fc.boolean(), { maxLength: 200 }),
      (initial, rise, fall, oks) => {
        const { h, transitions } = run(initialHealth(initial, 0), oks, { rise, fall }, 0);
        const m = model(initial, oks, rise, fall);
        assert.equal(h.state, m.state);
        assert.deepEqual(transitions.map((t) => ({ to: t.to, index: t.at })), m.flips);
        assert.deepEqual(h.consecutive, m.streak);
        assert.equal(h.probes, oks.length);
        assert.equal(h.failures, oks.filter((ok) => !ok).length);
        assert.equal(h.since, m.flips.length ? m.flips[m.flips.length - 1].index : 0);
        // Transitions alternate and chain from the initial state.
        let from = initial;
        for (const t of transitions) {
          assert.equal(t.from, from);
          assert.notEqual(t.to, t.from);
          from = t.to;
        }
      },
    ),
    { numRuns: 2000 },
  );
});
