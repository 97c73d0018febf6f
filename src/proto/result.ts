/**
 * Verdicts shared by every header codec. "Truncated" (fewer bytes than the header needs or claims)
 * is kept apart from "malformed" (a field that cannot be right): AWS mirroring truncates on
 * purpose, so the first is an operational fact and the second is bad input.
 */
export const Decode = {
  OK: 0,
  TRUNCATED: 1,
  MALFORMED: 2,
} as const;
export type DecodeResult = (typeof Decode)[keyof typeof Decode];
