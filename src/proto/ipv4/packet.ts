/**
 * IPv4 header (RFC 791).
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |Version|  IHL  |Type of Service|          Total Length         |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |         Identification        |Flags|      Fragment Offset    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  Time to Live |    Protocol   |         Header Checksum       |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                       Source Address                          |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                    Destination Address                        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                    Options                    |    Padding    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Options are carried opaquely: decode notes where they are, encode copies them from a buffer.
 */
import { readI32, writeU16, writeU32 } from '../bytes.js';
import { checksum } from '../checksum.js';
import { Decode, type DecodeResult } from '../result.js';

export const MIN_HEADER_LENGTH = 20;
export const MAX_HEADER_LENGTH = 60;
/** Flags field bits, as they sit in the 16-bit flags+offset word. */
export const FLAG_DF = 0x4000;
export const FLAG_MF = 0x2000;
export const OFFSET_MASK = 0x1fff;

/** Byte offsets of the fields that nodes rewrite in place. */
export const Field = {
  TOTAL_LENGTH: 2,
  ID: 4,
  FLAGS_OFFSET: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SRC: 12,
  DST: 16,
} as const;

export interface Ipv4Header {
  headerLength: number;
  tos: number;
  totalLength: number;
  id: number;
  /** DF and MF in their wire positions (FLAG_DF, FLAG_MF). */
  flags: number;
  /** Fragment offset in 8-byte units, as on the wire (RFC 791). */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  src: number;
  dst: number;
  /** Options bytes, for encode; decode leaves it alone (options stay in the packet). */
  options: Uint8Array | null;
}

export function create(): Ipv4Header {
  return {
    headerLength: MIN_HEADER_LENGTH,
    tos: 0,
    totalLength: 0,
    id: 0,
    flags: 0,
    fragmentOffset: 0,
    ttl: 64,
    protocol: 0,
    checksum: 0,
    src: 0,
    dst: 0,
    options: null,
  };
}

export function encodingLength(h: Ipv4Header): number {
  const optionLength = h.options ? h.options.length : 0;
  return MIN_HEADER_LENGTH + ((optionLength + 3) & ~3);
}

/**
 * Decodes the header at `off`. Checks only what the header itself says; whether the packet holds
 * `totalLength` bytes (truncation by the mirror) is the caller's question.
 */
export function decode(buf: Uint8Array, off: number, end: number, out: Ipv4Header): DecodeResult {
  if (end - off < MIN_HEADER_LENGTH) return Decode.TRUNCATED;
  const vihl = buf[off];
  if (vihl >>> 4 !== 4) return Decode.MALFORMED;
  const headerLength = (vihl & 0x0f) * 4;
  if (headerLength < MIN_HEADER_LENGTH) return Decode.MALFORMED;
  const totalLength = (buf[off + 2] << 8) | buf[off + 3];
  if (totalLength < headerLength) return Decode.MALFORMED;
  if (end - off < headerLength) return Decode.TRUNCATED;
  const flagsOffset = (buf[off + 6] << 8) | buf[off + 7];
  if (flagsOffset & 0x8000) return Decode.MALFORMED; // RFC 791: bit 0 reserved, must be zero
  out.headerLength = headerLength;
  out.tos = buf[off + 1];
  out.totalLength = totalLength;
  out.id = (buf[off + 4] << 8) | buf[off + 5];
  out.flags = flagsOffset & (FLAG_DF | FLAG_MF);
  out.fragmentOffset = flagsOffset & OFFSET_MASK;
  out.ttl = buf[off + 8];
  out.protocol = buf[off + 9];
  out.checksum = (buf[off + 10] << 8) | buf[off + 11];
  out.src = readI32(buf, off + 12) >>> 0;
  out.dst = readI32(buf, off + 16) >>> 0;
  return Decode.OK;
}

/** Writes the header with a freshly computed checksum; returns bytes written. */
export function encode(h: Ipv4Header, buf: Uint8Array, off: number): number {
  const len = encodingLength(h);
  // IHL is 4 bits of 32-bit words: more than 40 option bytes would spill into the version nibble.
  if (len > MAX_HEADER_LENGTH) throw new RangeError(`ipv4: ${len - MIN_HEADER_LENGTH} option bytes, at most ${MAX_HEADER_LENGTH - MIN_HEADER_LENGTH}`);
  if (buf.length - off < len) throw new RangeError(`ipv4: need ${len} bytes at offset ${off}`);
  buf[off] = 0x40 | (len >>> 2);
  buf[off + 1] = h.tos;
  writeU16(buf, off + 2, h.totalLength);
  writeU16(buf, off + 4, h.id);
  writeU16(buf, off + 6, (h.flags & (FLAG_DF | FLAG_MF)) | (h.fragmentOffset & OFFSET_MASK));
  buf[off + 8] = h.ttl;
  buf[off + 9] = h.protocol;
  writeU16(buf, off + 10, 0);
  writeU32(buf, off + 12, h.src);
  writeU32(buf, off + 16, h.dst);
  if (h.options) {
    buf.set(h.options, off + MIN_HEADER_LENGTH);
    buf.fill(0, off + MIN_HEADER_LENGTH + h.options.length, off + len); // RFC 791 padding
  }
  writeU16(buf, off + 10, checksum(buf, off, len));
  return len;
}

/** True when the header checksum over `headerLength` bytes verifies. */
export function checksumValid(buf: Uint8Array, off: number, headerLength: number): boolean {
  return checksum(buf, off, headerLength) === 0;
}

export function isFragment(h: Ipv4Header): boolean {
  return (h.flags & FLAG_MF) !== 0 || h.fragmentOffset !== 0;
}

/**
 * Copies the options a fragment other than the first must carry (RFC 791: options whose
 * copied flag is set) from `src` to `dst`, padded to 4 bytes; returns bytes written.
 */
export function copyFragmentOptions(
  buf: Uint8Array,
  optionsOff: number,
  optionsEnd: number,
  dst: Uint8Array,
  dstOff: number,
): number {
  let p = optionsOff;
  let q = dstOff;
  while (p < optionsEnd) {
    const type = buf[p];
    if (type === 0) break; // end of option list
    if (type === 1) {
      p++; // no-operation: not copied
      continue;
    }
    if (p + 1 >= optionsEnd) break;
    const len = buf[p + 1];
    if (len < 2 || p + len > optionsEnd) break; // malformed tail: copy nothing more
    if (type & 0x80) {
      for (let i = 0; i < len; i++) dst[q + i] = buf[p + i];
      q += len;
    }
    p += len;
  }
  while ((q - dstOff) & 3) dst[q++] = 0;
  return q - dstOff;
}
