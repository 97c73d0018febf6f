/** Checks every header codec shares: in-place encoding, truncation verdicts, garbage tolerance. */
import assert from 'node:assert/strict';
import { Decode, type DecodeResult } from '../../src/proto/result.js';

/** Bytes used around an encoding to see that nothing outside it is written. */
export const SENTINEL = 0xa5;

/**
 * Encodes at `before` inside a sentinel-filled buffer with `after` spare bytes and checks that
 * exactly `expected` lands there and nothing else changes; returns the bytes written.
 */
export function assertEncodesInPlace(
  encode: (buf: Uint8Array, off: number) => number,
  expected: Uint8Array,
  before: number,
  after: number,
): void {
  const buf = new Uint8Array(before + expected.length + after).fill(SENTINEL);
  const n = encode(buf, before);
  assert.equal(n, expected.length, 'bytes written at an offset');
  assert.deepEqual(buf.subarray(before, before + n), expected);
  for (let i = 0; i < before; i++) assert.equal(buf[i], SENTINEL, `byte ${i} before the header changed`);
  for (let i = before + n; i < buf.length; i++) assert.equal(buf[i], SENTINEL, `byte ${i} after the header changed`);
}

/**
 * Every prefix shorter than `needed` bytes is TRUNCATED, whether the end is given by `end` inside
 * a larger buffer or by the buffer itself, and decoding never throws.
 */
export function assertTruncatedPrefixes(
  decode: (buf: Uint8Array, off: number, end: number) => DecodeResult,
  bytes: Uint8Array,
  needed: number,
): void {
  const pad = 5;
  const big = new Uint8Array(pad + bytes.length + pad).fill(SENTINEL);
  big.set(bytes, pad);
  for (let n = 0; n < needed; n++) {
    assert.equal(decode(big, pad, pad + n), Decode.TRUNCATED, `prefix of ${n} bytes (end inside a larger buffer)`);
    assert.equal(decode(bytes.slice(0, n), 0, n), Decode.TRUNCATED, `prefix of ${n} bytes (exact buffer)`);
  }
}

export function isVerdict(r: unknown): boolean {
  return r === Decode.OK || r === Decode.TRUNCATED || r === Decode.MALFORMED;
}
