/** Expected HTTP status ranges of a health check; apart from the schema so probes need no zod. */

export type StatusRange = readonly [lo: number, hi: number];

/** True when `status` falls in one of the accepted ranges. */
export function statusAccepted(status: number, expect: readonly StatusRange[]): boolean {
  return expect.some(([lo, hi]) => status >= lo && status <= hi);
}

/** `200`, `200-399`, `200, 204` — for probe details and status output. */
export function formatExpect(expect: readonly StatusRange[]): string {
  return expect.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}-${hi}`)).join(', ');
}
