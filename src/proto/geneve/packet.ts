/**
 * GENEVE header (RFC 8926 §3.4); options are skipped by length, never interpreted.
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |        Virtual Network Identifier (VNI)       |    Reserved   |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                                                               |
 *  ~                    Variable-Length Options                    ~
 *  |                                                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
import { readU16, writeU16 } from '../bytes.js';
import { Decode, type DecodeResult } from '../result.js';

export const BASE_LENGTH = 8;
/** The 6-bit Opt Len field counts 4-byte words. */
export const MAX_OPTIONS_LENGTH = 0x3f * 4;
export const UDP_PORT = 6081;
/** Protocol Type for an Ethernet payload (Transparent Ethernet Bridging). */
export const PROTOCOL_ETHERNET = 0x6558;
/** Protocol Type for an IPv4 payload (what an AWS Gateway Load Balancer sends). */
export const PROTOCOL_IPV4 = 0x0800;
export const FLAG_OAM = 0x80;
export const FLAG_CRITICAL = 0x40;

export interface GeneveHeader {
  version: number;
  /** Options length in bytes (the wire field is in 4-byte words). */
  optionsLength: number;
  flags: number;
  protocolType: number;
  vni: number;
  /** Options bytes, for encode; decode only records their length. */
  options: Uint8Array | null;
}

export function create(): GeneveHeader {
  return { version: 0, optionsLength: 0, flags: 0, protocolType: PROTOCOL_ETHERNET, vni: 0, options: null };
}

export function encodingLength(h: GeneveHeader): number {
  return BASE_LENGTH + (h.options ? (h.options.length + 3) & ~3 : 0);
}

export function decode(buf: Uint8Array, off: number, end: number, out: GeneveHeader): DecodeResult {
  if (end - off < BASE_LENGTH) return Decode.TRUNCATED;
  const version = buf[off] >>> 6;
  if (version !== 0) return Decode.MALFORMED; // RFC 8926 §3.4: only version 0 is defined
  const optionsLength = (buf[off] & 0x3f) * 4;
  if (end - off < BASE_LENGTH + optionsLength) return Decode.TRUNCATED;
  out.version = version;
  out.optionsLength = optionsLength;
  out.flags = buf[off + 1] & (FLAG_OAM | FLAG_CRITICAL);
  out.protocolType = readU16(buf, off + 2);
  out.vni = (buf[off + 4] << 16) | (buf[off + 5] << 8) | buf[off + 6];
  return Decode.OK;
}

export function headerLength(h: GeneveHeader): number {
  return BASE_LENGTH + h.optionsLength;
}

export function encode(h: GeneveHeader, buf: Uint8Array, off: number): number {
  const len = encodingLength(h);
  // Longer options would spill into the version bits of the first byte.
  if (len - BASE_LENGTH > MAX_OPTIONS_LENGTH) throw new RangeError(`geneve: ${len - BASE_LENGTH} option bytes, at most ${MAX_OPTIONS_LENGTH}`);
  if (buf.length - off < len) throw new RangeError(`geneve: need ${len} bytes at offset ${off}`);
  buf[off] = ((h.version & 0x3) << 6) | ((len - BASE_LENGTH) >>> 2);
  buf[off + 1] = h.flags & (FLAG_OAM | FLAG_CRITICAL);
  writeU16(buf, off + 2, h.protocolType);
  buf[off + 4] = (h.vni >>> 16) & 0xff;
  buf[off + 5] = (h.vni >>> 8) & 0xff;
  buf[off + 6] = h.vni & 0xff;
  buf[off + 7] = 0;
  if (h.options) {
    buf.set(h.options, off + BASE_LENGTH);
    buf.fill(0, off + BASE_LENGTH + h.options.length, off + len);
  }
  return len;
}
