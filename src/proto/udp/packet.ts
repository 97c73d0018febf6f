/**
 * UDP header (RFC 768).
 *
 *   0      7 8     15 16    23 24    31
 *  +--------+--------+--------+--------+
 *  |   Source Port   |  Destination    |
 *  |                 |      Port       |
 *  +--------+--------+--------+--------+
 *  |     Length      |    Checksum     |
 *  +--------+--------+--------+--------+
 */
import { readU16, writeU16 } from '../bytes.js';
import { checksum, pseudoSum4, pseudoSum6, sum16, fold } from '../checksum.js';
import { Decode, type DecodeResult } from '../result.js';

export const HEADER_LENGTH = 8;
export const PROTOCOL = 17;
export const Field = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6 } as const;

export interface UdpHeader {
  srcPort: number;
  dstPort: number;
  length: number;
  checksum: number;
}

export function create(): UdpHeader {
  return { srcPort: 0, dstPort: 0, length: 0, checksum: 0 };
}

export function encodingLength(_h?: UdpHeader): number {
  return HEADER_LENGTH;
}

export function decode(buf: Uint8Array, off: number, end: number, out: UdpHeader): DecodeResult {
  if (end - off < HEADER_LENGTH) return Decode.TRUNCATED;
  const length = readU16(buf, off + 4);
  // RFC 768: length covers header and data. Zero is legal only for IPv6 jumbograms (RFC 2675),
  // which no mirror session carries.
  if (length < HEADER_LENGTH) return Decode.MALFORMED;
  out.srcPort = readU16(buf, off);
  out.dstPort = readU16(buf, off + 2);
  out.length = length;
  out.checksum = readU16(buf, off + 6);
  return Decode.OK;
}

/** Writes the header as given (checksum included); returns bytes written. */
export function encode(h: UdpHeader, buf: Uint8Array, off: number): number {
  if (buf.length - off < HEADER_LENGTH) throw new RangeError(`udp: need 8 bytes at offset ${off}`);
  writeU16(buf, off, h.srcPort);
  writeU16(buf, off + 2, h.dstPort);
  writeU16(buf, off + 4, h.length);
  writeU16(buf, off + 6, h.checksum);
  return HEADER_LENGTH;
}

/** RFC 768: a computed checksum of zero is sent as all ones; zero on the wire means "none". */
function onWire(sum: number): number {
  return sum === 0 ? 0xffff : sum;
}

/** Checksum for the UDP datagram at `udpOff` (checksum field treated as zero) inside IPv4. */
export function checksum4(buf: Uint8Array, udpOff: number, length: number, src: number, dst: number): number {
  const pseudo = pseudoSum4(src, dst, PROTOCOL, length);
  const head = sum16(buf, udpOff, 6, pseudo); // skip the checksum field itself
  return onWire(checksum(buf, udpOff + HEADER_LENGTH, length - HEADER_LENGTH, head));
}

/** Checksum for the UDP datagram at `udpOff` inside the IPv6 packet at `ipOff`. */
export function checksum6(buf: Uint8Array, ipOff: number, udpOff: number, length: number): number {
  const pseudo = pseudoSum6(buf, ipOff + 8, ipOff + 24, PROTOCOL, length);
  const head = sum16(buf, udpOff, 6, pseudo);
  return onWire(checksum(buf, udpOff + HEADER_LENGTH, length - HEADER_LENGTH, head));
}

/** True when the stored checksum verifies (or is zero, "none", which only IPv4 allows). */
export function verify4(buf: Uint8Array, udpOff: number, length: number, src: number, dst: number): boolean {
  if (readU16(buf, udpOff + 6) === 0) return true;
  return fold(sum16(buf, udpOff, length, pseudoSum4(src, dst, PROTOCOL, length))) === 0xffff;
}

export function verify6(buf: Uint8Array, ipOff: number, udpOff: number, length: number): boolean {
  return fold(sum16(buf, udpOff, length, pseudoSum6(buf, ipOff + 8, ipOff + 24, PROTOCOL, length))) === 0xffff;
}
