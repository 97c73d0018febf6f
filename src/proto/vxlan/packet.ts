/**
 * VXLAN header (RFC 7348 §5).
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |R|R|R|R|I|R|R|R|            Reserved                           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                VXLAN Network Identifier (VNI) |   Reserved    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
import { Decode, type DecodeResult } from '../result.js';

export const HEADER_LENGTH = 8;
export const UDP_PORT = 4789;
/** RFC 7348: the I flag must be 1 for a valid VNI. */
export const FLAG_I = 0x08;

export interface VxlanHeader {
  flags: number;
  vni: number;
}

export function create(): VxlanHeader {
  return { flags: FLAG_I, vni: 0 };
}

export function encodingLength(_h?: VxlanHeader): number {
  return HEADER_LENGTH;
}

/** A header without the I flag carries no VNI we could trust: malformed (RFC 7348 §5). */
export function decode(buf: Uint8Array, off: number, end: number, out: VxlanHeader): DecodeResult {
  if (end - off < HEADER_LENGTH) return Decode.TRUNCATED;
  const flags = buf[off];
  if ((flags & FLAG_I) === 0) return Decode.MALFORMED;
  out.flags = flags;
  out.vni = (buf[off + 4] << 16) | (buf[off + 5] << 8) | buf[off + 6];
  return Decode.OK;
}

export function encode(h: VxlanHeader, buf: Uint8Array, off: number): number {
  if (buf.length - off < HEADER_LENGTH) throw new RangeError(`vxlan: need 8 bytes at offset ${off}`);
  buf[off] = h.flags;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = (h.vni >>> 16) & 0xff;
  buf[off + 5] = (h.vni >>> 8) & 0xff;
  buf[off + 6] = h.vni & 0xff;
  buf[off + 7] = 0;
  return HEADER_LENGTH;
}
