/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * Sums are carried as plain numbers and folded at the end; a 32-bit accumulator cannot overflow
 * for any IP packet (65535 / 2 words × 0xffff < 2^32).
 */

/** Ones'-complement sum of `len` bytes at `off`, added to `initial`; not folded, not inverted. */
export function sum16(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  const end = off + len;
  const even = off + (len & ~1);
  let i = off;
  for (; i < even; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8; // RFC 1071: pad an odd byte with zero
  return sum;
}

/**
 * Folds carries into 16 bits (end-around carry). Two rounds are enough below 2^32; a larger sum
 * (an `initial` carried over from several pieces) can leave a carry after the second round, so
 * fold until none is left: at most four rounds for any sum a double holds exactly.
 */
export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The checksum field value for `len` bytes at `off` (checksum field zeroed by the caller). */
export function checksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return ~fold(sum16(buf, off, len, initial)) & 0xffff;
}

/** RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for one 16-bit field changing from m to m'. */
export function update16(hc: number, oldWord: number, newWord: number): number {
  const sum = (~hc & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~fold(sum) & 0xffff;
}

/** RFC 1624 for a 32-bit field (an IPv4 address), as two 16-bit updates. */
export function update32(hc: number, oldValue: number, newValue: number): number {
  const sum =
    (~hc & 0xffff) +
    (~(oldValue >>> 16) & 0xffff) +
    (~oldValue & 0xffff) +
    ((newValue >>> 16) & 0xffff) +
    (newValue & 0xffff);
  return ~fold(sum) & 0xffff;
}

/** Sum of the IPv4 pseudo-header (RFC 768) for an upper-layer checksum. */
export function pseudoSum4(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

/** Sum of the IPv6 pseudo-header (RFC 8200 §8.1); addresses read from the packet itself. */
export function pseudoSum6(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  protocol: number,
  length: number,
): number {
  let sum = sum16(buf, srcOff, 16);
  sum = sum16(buf, dstOff, 16, sum);
  return sum + Math.floor(length / 0x10000) + (length & 0xffff) + protocol;
}
