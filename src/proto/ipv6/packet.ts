/**
 * IPv6 fixed header (RFC 8200 §3) and the extension-header walk needed to find the upper layer
 * and the fragment header (RFC 8200 §4).
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |Version| Traffic Class |           Flow Label                  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |         Payload Length        |  Next Header  |   Hop Limit   |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                    Source Address (128)                       |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                 Destination Address (128)                     |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Fragment header (RFC 8200 §4.5):
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                         Identification                        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
import { readU16, readU32, writeU16, writeU32 } from '../bytes.js';
import { Decode, type DecodeResult } from '../result.js';

export const HEADER_LENGTH = 40;
export const FRAGMENT_HEADER_LENGTH = 8;
export const SRC_OFFSET = 8;
export const DST_OFFSET = 24;
export const PAYLOAD_LENGTH_OFFSET = 4;
export const NEXT_HEADER_OFFSET = 6;

export const NextHeader = {
  HOP_BY_HOP: 0,
  TCP: 6,
  UDP: 17,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  NO_NEXT: 59,
  DEST_OPTIONS: 60,
} as const;

/** More extension headers than this is an attack or garbage, not a telemetry packet. */
export const MAX_EXTENSION_HEADERS = 8;

export interface Ipv6Header {
  trafficClass: number;
  flowLabel: number;
  payloadLength: number;
  nextHeader: number;
  hopLimit: number;
  src: Uint8Array;
  dst: Uint8Array;
}

export function create(): Ipv6Header {
  return {
    trafficClass: 0,
    flowLabel: 0,
    payloadLength: 0,
    nextHeader: 0,
    hopLimit: 64,
    src: new Uint8Array(16),
    dst: new Uint8Array(16),
  };
}

export function encodingLength(_h?: Ipv6Header): number {
  return HEADER_LENGTH;
}

export function decode(buf: Uint8Array, off: number, end: number, out: Ipv6Header): DecodeResult {
  if (end - off < HEADER_LENGTH) return Decode.TRUNCATED;
  const word = readU32(buf, off);
  if (word >>> 28 !== 6) return Decode.MALFORMED;
  out.trafficClass = (word >>> 20) & 0xff;
  out.flowLabel = word & 0xfffff;
  out.payloadLength = readU16(buf, off + 4);
  out.nextHeader = buf[off + 6];
  out.hopLimit = buf[off + 7];
  for (let i = 0; i < 16; i++) {
    out.src[i] = buf[off + SRC_OFFSET + i];
    out.dst[i] = buf[off + DST_OFFSET + i];
  }
  return Decode.OK;
}

export function encode(h: Ipv6Header, buf: Uint8Array, off: number): number {
  if (buf.length - off < HEADER_LENGTH) throw new RangeError(`ipv6: need 40 bytes at offset ${off}`);
  writeU32(buf, off, ((6 << 28) | ((h.trafficClass & 0xff) << 20) | (h.flowLabel & 0xfffff)) >>> 0);
  writeU16(buf, off + 4, h.payloadLength);
  buf[off + 6] = h.nextHeader;
  buf[off + 7] = h.hopLimit;
  buf.set(h.src, off + SRC_OFFSET);
  buf.set(h.dst, off + DST_OFFSET);
  return HEADER_LENGTH;
}

/** Where the extension-header walk ended. */
export interface UpperLayer {
  /** Upper-layer protocol (17 for UDP), or the header the walk stopped at (ESP, NO_NEXT). */
  protocol: number;
  /** Offset of the upper-layer header. */
  offset: number;
  /** Offset of the fragment header, or -1. */
  fragmentHeader: number;
  /** Offset of the Next Header byte that names the fragment header (to splice it out). */
  fragmentNextHeaderAt: number;
  /** Fragment offset in 8-byte units, M flag and identification, when fragmented. */
  fragmentOffset: number;
  more: boolean;
  id: number;
}

export function createUpperLayer(): UpperLayer {
  return { protocol: 0, offset: 0, fragmentHeader: -1, fragmentNextHeaderAt: -1, fragmentOffset: 0, more: false, id: 0 };
}

/**
 * Walks the extension-header chain of the packet whose fixed header is at `off`, stopping at the
 * first header that is not hop-by-hop, routing, fragment or destination options. A non-first
 * fragment stops at its fragment header: what follows is payload, not a header.
 */
export function findUpperLayer(buf: Uint8Array, off: number, end: number, out: UpperLayer): DecodeResult {
  let next = buf[off + NEXT_HEADER_OFFSET];
  let nextAt = off + NEXT_HEADER_OFFSET;
  let p = off + HEADER_LENGTH;
  out.fragmentHeader = -1;
  out.fragmentNextHeaderAt = -1;
  out.fragmentOffset = 0;
  out.more = false;
  out.id = 0;
  for (let count = 0; ; count++) {
    if (count > MAX_EXTENSION_HEADERS) return Decode.MALFORMED;
    // RFC 8200 §4.3: hop-by-hop options may only follow the fixed header.
    if (next === NextHeader.HOP_BY_HOP && count !== 0) return Decode.MALFORMED;
    switch (next) {
      case NextHeader.HOP_BY_HOP:
      case NextHeader.ROUTING:
      case NextHeader.DEST_OPTIONS: {
        if (end - p < 8) return Decode.TRUNCATED;
        const len = (buf[p + 1] + 1) * 8;
        if (end - p < len) return Decode.TRUNCATED;
        nextAt = p;
        next = buf[p];
        p += len;
        continue;
      }
      case NextHeader.FRAGMENT: {
        if (out.fragmentHeader !== -1) return Decode.MALFORMED;
        if (end - p < FRAGMENT_HEADER_LENGTH) return Decode.TRUNCATED;
        const word = readU16(buf, p + 2);
        out.fragmentHeader = p;
        out.fragmentNextHeaderAt = nextAt;
        out.fragmentOffset = word >>> 3;
        out.more = (word & 1) !== 0;
        out.id = readU32(buf, p + 4);
        nextAt = p;
        next = buf[p];
        p += FRAGMENT_HEADER_LENGTH;
        if (out.fragmentOffset !== 0) {
          out.protocol = next;
          out.offset = p;
          return Decode.OK;
        }
        continue;
      }
      default:
        out.protocol = next;
        out.offset = p;
        return Decode.OK;
    }
  }
}

/** Writes a fragment header; returns bytes written. */
export function encodeFragmentHeader(
  buf: Uint8Array,
  off: number,
  nextHeader: number,
  fragmentOffset: number,
  more: boolean,
  id: number,
): number {
  buf[off] = nextHeader;
  buf[off + 1] = 0;
  writeU16(buf, off + 2, ((fragmentOffset & 0x1fff) << 3) | (more ? 1 : 0));
  writeU32(buf, off + 4, id);
  return FRAGMENT_HEADER_LENGTH;
}
