/**
 * Reference implementations for tests, written the plain way and sharing no code with src/: the
 * Internet checksum one 16-bit word at a time with the carry wrapped around at every addition
 * (RFC 1071 §4.1, the textbook loop), and UDP checksums over an explicitly built pseudo-header.
 */

/** Ones'-complement sum of bytes [start, end), odd byte padded with zero, added to `initial`. */
export function onesSum(bytes: ArrayLike<number>, start = 0, end = bytes.length, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) {
    const word = bytes[i] * 256 + (i + 1 < end ? bytes[i + 1] : 0);
    sum += word;
    if (sum > 0xffff) sum -= 0xffff; // end-around carry
  }
  return sum;
}

/** The checksum field value for bytes [start, end). */
export function naiveChecksum(bytes: ArrayLike<number>, start = 0, end = bytes.length, initial = 0): number {
  return 0xffff - onesSum(bytes, start, end, initial);
}

/** True when a header or datagram that includes its checksum field sums to all ones. */
export function sumsToOnes(bytes: ArrayLike<number>, start = 0, end = bytes.length): boolean {
  return onesSum(bytes, start, end) === 0xffff;
}

function u32(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

/** RFC 768 pseudo-header for UDP over IPv4. */
export function pseudoHeader4(src: number, dst: number, udpLength: number): number[] {
  return [...u32(src), ...u32(dst), 0, 17, (udpLength >>> 8) & 0xff, udpLength & 0xff];
}

/** RFC 8200 §8.1 pseudo-header for UDP over IPv6. */
export function pseudoHeader6(src: ArrayLike<number>, dst: ArrayLike<number>, udpLength: number): number[] {
  return [...Array.from(src), ...Array.from(dst), ...u32(udpLength), 0, 0, 0, 17];
}

/** The UDP checksum as sent: computed with the field zeroed, 0 sent as 0xffff (RFC 768). */
export function naiveUdpChecksum(pseudo: number[], udp: ArrayLike<number>): number {
  const bytes = [...pseudo, ...Array.from(udp)];
  bytes[pseudo.length + 6] = 0;
  bytes[pseudo.length + 7] = 0;
  const c = naiveChecksum(bytes);
  return c === 0 ? 0xffff : c;
}

/** True when the UDP datagram's stored checksum verifies over the given pseudo-header. */
export function udpVerifies(pseudo: number[], udp: ArrayLike<number>): boolean {
  return sumsToOnes([...pseudo, ...Array.from(udp)]);
}

/** Big-endian reads for assertions, independent of src/proto/bytes.ts. */
export function be16(b: ArrayLike<number>, off: number): number {
  return b[off] * 256 + b[off + 1];
}

export function be32(b: ArrayLike<number>, off: number): number {
  return ((b[off] * 256 + b[off + 1]) * 256 + b[off + 2]) * 256 + b[off + 3];
}
