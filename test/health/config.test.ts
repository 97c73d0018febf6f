import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_HEALTH_CHECK, HealthCheckSchema, formatExpect, statusAccepted } from '../../src/health/config.js';

const problems = (v: unknown): string[] => {
  const r = HealthCheckSchema.safeParse(v, { reportInput: true });
  assert.equal(r.success, false, `expected ${JSON.stringify(v)} to be rejected`);
  return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

test('an empty block gets every default', () => {
  assert.deepEqual(HealthCheckSchema.parse({}), {
    check: 'none',
    interval: 2000,
    timeout: 1000,
    rise: 2,
    fall: 3,
    path: '/healthz',
    expect: [[200, 200]],
    initial: 'up',
  });
  assert.deepEqual(DEFAULT_HEALTH_CHECK, HealthCheckSchema.parse({}));
  assert.equal(HealthCheckSchema.parse({}).port, undefined, 'port defaults to the backend port');
});

test('prefault({}) applies the defaults when the block is absent', () => {
  assert.deepEqual(HealthCheckSchema.prefault({}).parse(undefined), DEFAULT_HEALTH_CHECK);
});

test('expect accepts a status, a range, a comma list and an array; normalised to ranges', () => {
  const cases: Array<[unknown, Array<[number, number]>]> = [
    [204, [[204, 204]]],
    ['200-399', [[200, 399]]],
    ['200 - 299', [[200, 299]]],
    ['204', [[204, 204]]],
    ['200, 204', [[200, 200], [204, 204]]],
    [[200, '300-304'], [[200, 200], [300, 304]]],
  ];
  for (const [expect, ranges] of cases) assert.deepEqual(HealthCheckSchema.parse({ check: 'http', expect }).expect, ranges);
});

test('a full http block', () => {
  const c = HealthCheckSchema.parse({ check: 'http', interval: 500, timeout: 100, rise: 1, fall: 10, port: 8080, path: '/ready?x=1', expect: '200-299', initial: 'down' });
  assert.deepEqual(c, { check: 'http', interval: 500, timeout: 100, rise: 1, fall: 10, port: 8080, path: '/ready?x=1', expect: [[200, 299]], initial: 'down' });
});

test('problems read "expected ..., got ..."', () => {
  const cases: Array<[unknown, string]> = [
    [{ interval: 50 }, 'interval: expected an interval in ms 100-3600000, got 50'],
    [{ interval: '2s' }, 'interval: expected an interval in ms 100-3600000, got "2s"'],
    [{ timeout: 2000 }, 'timeout: expected a timeout below interval (2000 ms), got 2000'],
    [{ interval: 100, timeout: 500 }, 'timeout: expected a timeout below interval (100 ms), got 500'],
    [{ timeout: 0 }, 'timeout: expected a timeout in ms 1-3600000, got 0'],
    [{ rise: 0 }, 'rise: expected a count 1-10, got 0'],
    [{ fall: 11 }, 'fall: expected a count 1-10, got 11'],
    [{ fall: 1.5 }, 'fall: expected a count 1-10, got 1.5'],
    [{ port: 70000 }, 'port: expected a port 1-65535, got 70000'],
    [{ path: 'healthz' }, 'path: expected an absolute path like "/healthz" (no spaces), got "healthz"'],
    [{ path: '/a b' }, 'path: expected an absolute path like "/healthz" (no spaces), got "/a b"'],
    [{ expect: 700 }, 'expect: expected an HTTP status 100-599, a range "lo-hi", or a list of those, got 700'],
    [{ expect: '399-200' }, 'expect: expected an HTTP status 100-599, a range "lo-hi", or a list of those, got "399-200"'],
    [{ expect: [] }, 'expect: expected an HTTP status 100-599, a range "lo-hi", or a list of those, got []'],
    [{ check: 'udp' }, 'check: expected one of "tcp" | "http" | "none", got "udp"'],
    [{ initial: 'maybe' }, 'initial: expected one of "up" | "down", got "maybe"'],
  ];
  for (const [input, message] of cases) assert.deepEqual(problems(input), [message], JSON.stringify(input));
});

test('unknown keys are rejected', () => {
  assert.equal(problems({ check: 'tcp', intervall: 100 }).length, 1);
});

test('statusAccepted and formatExpect', () => {
  const expect = [[200, 200], [300, 399]] as const;
  assert.equal(statusAccepted(200, expect), true);
  assert.equal(statusAccepted(301, expect), true);
  assert.equal(statusAccepted(204, expect), false);
  assert.equal(formatExpect(expect), '200, 300-399');
});
