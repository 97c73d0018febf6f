/**
 * The per-destination `health` block: how the main thread probes a destination's collector
 * backends. Wired into the main schema as `health: HealthCheckSchema.prefault({})` (prefault, not
 * default, so the field defaults below are applied to the empty block).
 *
 *   destinations:
 *     collectors:
 *       backends: ["10.0.0.5:2055", "10.0.0.6:2055"]
 *       health: { check: http, port: 8080, path: /healthz, expect: "200-299", interval: 2000 }
 *
 * Timing contract (see monitor.ts): a backend that dies leaves the up set within
 * `fall × interval + timeout`, and one that comes back rejoins within `rise × interval` (plus
 * the latency of its last probe). That is why `timeout` must be below `interval`: a probe always
 * finishes before the next one is due, so probes of one backend never overlap.
 */
import { z } from 'zod';

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(JSON.stringify(v) ?? v));

/** A field parsed by hand, for messages that read `expected X, got Y`. */
function field<T>(parse: (v: unknown) => T | { error: string }) {
  return z.unknown().transform((v, ctx) => {
    const r = parse(v);
    if (r !== null && typeof r === 'object' && !Array.isArray(r) && 'error' in (r as object)) {
      ctx.issues.push({ code: 'custom', message: (r as { error: string }).error, input: v });
      return z.NEVER;
    }
    return r as T;
  });
}

const int = (v: unknown, lo: number, hi: number, what: string): number | { error: string } =>
  Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi
    ? (v as number)
    : { error: `expected ${what} ${lo}-${hi}, got ${show(v)}` };

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: (iss) => `expected one of ${values.map((v) => show(v)).join(' | ')}, got ${show(iss.input)}` });

/** One hour: longer intervals are a typo for seconds-vs-milliseconds more often than intended. */
export const MAX_INTERVAL_MS = 3_600_000;

/** An inclusive range of HTTP status codes. */
import type { StatusRange } from './expect.js';
export type { StatusRange };

const STATUS_WHAT = 'an HTTP status 100-599, a range "lo-hi", or a list of those';

function parseStatus(v: unknown): StatusRange | { error: string } {
  if (typeof v === 'number') {
    return Number.isInteger(v) && v >= 100 && v <= 599 ? [v, v] : { error: `expected ${STATUS_WHAT}, got ${show(v)}` };
  }
  const m = typeof v === 'string' ? /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/.exec(v) : null;
  if (m) {
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo >= 100 && hi <= 599 && lo <= hi) return [lo, hi];
  }
  return { error: `expected ${STATUS_WHAT}, got ${show(v)}` };
}

/** `200`, `"200-399"`, `"204"`, `[200, "300-304"]` or `"200,204"`; normalised to inclusive ranges. */
const Expect = field<StatusRange[]>((v) => {
  const items = Array.isArray(v) ? v : typeof v === 'string' && v.includes(',') ? v.split(',') : [v];
  if (items.length === 0) return { error: `expected ${STATUS_WHAT}, got []` };
  const ranges: StatusRange[] = [];
  for (const item of items) {
    const r = parseStatus(item);
    if ('error' in r) return r;
    ranges.push(r);
  }
  return ranges;
});

/** An absolute request path; no spaces or control characters (it goes into the request line). */
const Path = field<string>((v) =>
  typeof v === 'string' && /^\/[\x21-\x7e]*$/.test(v) ? v : { error: `expected an absolute path like "/healthz" (no spaces), got ${show(v)}` },
);

export const HealthCheckSchema = z
  .strictObject({
    check: oneOf(['tcp', 'http', 'none']).default('none'),
    /** Milliseconds from the start of one probe to the start of the next. */
    interval: field((v) => int(v, 100, MAX_INTERVAL_MS, 'an interval in ms')).default(2000),
    /** Milliseconds a probe may take; below `interval`. */
    timeout: field((v) => int(v, 1, MAX_INTERVAL_MS, 'a timeout in ms')).default(1000),
    /** Consecutive successes that bring a down backend up. */
    rise: field((v) => int(v, 1, 10, 'a count')).default(2),
    /** Consecutive failures that take an up backend down. */
    fall: field((v) => int(v, 1, 10, 'a count')).default(3),
    /** Port to probe; absent means the backend's own port. */
    port: field((v) => int(v, 1, 65535, 'a port')).optional(),
    /** HTTP check only. */
    path: Path.default('/healthz'),
    /** HTTP check only: accepted status codes. */
    expect: Expect.default([[200, 200]]),
    /** State before the first verdict; see state.ts for why the default is up. */
    initial: oneOf(['up', 'down']).default('up'),
  })
  .check((ctx) => {
    const { interval, timeout } = ctx.value;
    if (typeof interval === 'number' && typeof timeout === 'number' && timeout >= interval) {
      ctx.issues.push({
        code: 'custom',
        message: `expected a timeout below interval (${interval} ms), got ${timeout}`,
        input: timeout,
        path: ['timeout'],
      });
    }
  });

/** The validated block, defaults applied and `expect` normalised to ranges. */
export type HealthCheckConfig = z.output<typeof HealthCheckSchema>;
/** What may be written in the configuration file. */
export type HealthCheckInput = z.input<typeof HealthCheckSchema>;

/** The block used when a destination has none: no probing, every backend up. */
export const DEFAULT_HEALTH_CHECK: HealthCheckConfig = HealthCheckSchema.parse({});

export { formatExpect, statusAccepted } from './expect.js';
