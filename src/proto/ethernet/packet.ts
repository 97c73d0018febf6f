/**
 * Ethernet II with up to two 802.1Q / 802.1ad tags (QinQ).
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                  destination MAC (48)                         |
 *  +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                               |                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+      source MAC (48)          +
 *  |                                                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  | TPID 0x8100 / 0x88a8 (opt.)   | PCP |D|  VLAN ID (12)         |  IEEE 802.1Q, repeated for QinQ
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |          EtherType            |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * MAC addresses are carried as 48-bit numbers (exact in a double) so decoding allocates nothing.
 */
import { Decode, type DecodeResult } from '../result.js';

export const HEADER_LENGTH = 14;
export const TAG_LENGTH = 4;
export const MAX_TAGS = 2;

export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  QINQ: 0x88a8,
  IPV6: 0x86dd,
} as const;

export interface EthernetHeader {
  dst: number;
  src: number;
  /** Tags outermost first; only the first `tagCount` entries are meaningful. */
  tpid: number[];
  tci: number[];
  tagCount: number;
  etherType: number;
}

/** The six bytes of a MAC address written as text ("02:00:5e:00:00:01", as sysfs and iproute2 print it); null when it is not one. */
export function macFromText(text: string): Uint8Array | null {
  const parts = text.trim().split(':');
  if (parts.length !== 6 || parts.some((h) => !/^[0-9a-f]{1,2}$/i.test(h))) return null;
  return Uint8Array.from(parts, (h) => parseInt(h, 16));
}

export function create(): EthernetHeader {
  return { dst: 0, src: 0, tpid: [0, 0], tci: [0, 0], tagCount: 0, etherType: 0 };
}

export function encodingLength(h: EthernetHeader): number {
  return HEADER_LENGTH + h.tagCount * TAG_LENGTH;
}

function isTag(etherType: number): boolean {
  return etherType === EtherType.VLAN || etherType === EtherType.QINQ;
}

/**
 * Decodes the header at `off` into `out`. A third tag is malformed: neither AWS nor any sane
 * network stacks more than QinQ.
 */
export function decode(buf: Uint8Array, off: number, end: number, out: EthernetHeader): DecodeResult {
  if (end - off < HEADER_LENGTH) return Decode.TRUNCATED;
  out.dst = readU48(buf, off);
  out.src = readU48(buf, off + 6);
  let p = off + 12;
  let type = (buf[p] << 8) | buf[p + 1];
  let tags = 0;
  while (isTag(type)) {
    if (tags === MAX_TAGS) return Decode.MALFORMED;
    if (end - p < 2 + TAG_LENGTH) return Decode.TRUNCATED;
    out.tpid[tags] = type;
    out.tci[tags] = (buf[p + 2] << 8) | buf[p + 3];
    tags++;
    p += TAG_LENGTH;
    type = (buf[p] << 8) | buf[p + 1];
  }
  out.tagCount = tags;
  out.etherType = type;
  return Decode.OK;
}

/** Length of the header decoded into `h`: where the payload starts, relative to the frame. */
export function headerLength(h: EthernetHeader): number {
  return HEADER_LENGTH + h.tagCount * TAG_LENGTH;
}

export function encode(h: EthernetHeader, buf: Uint8Array, off: number): number {
  if (h.tagCount > MAX_TAGS) throw new RangeError(`ethernet: ${h.tagCount} VLAN tags, at most ${MAX_TAGS}`);
  const len = encodingLength(h);
  if (buf.length - off < len) throw new RangeError(`ethernet: need ${len} bytes at offset ${off}`);
  writeU48(buf, off, h.dst);
  writeU48(buf, off + 6, h.src);
  let p = off + 12;
  for (let t = 0; t < h.tagCount; t++) {
    buf[p] = h.tpid[t] >>> 8;
    buf[p + 1] = h.tpid[t] & 0xff;
    buf[p + 2] = h.tci[t] >>> 8;
    buf[p + 3] = h.tci[t] & 0xff;
    p += TAG_LENGTH;
  }
  buf[p] = h.etherType >>> 8;
  buf[p + 1] = h.etherType & 0xff;
  return len;
}

export function vlanId(tci: number): number {
  return tci & 0x0fff;
}

function readU48(buf: Uint8Array, off: number): number {
  return (
    ((buf[off] << 8) | buf[off + 1]) * 0x100000000 +
    (((buf[off + 2] << 24) | (buf[off + 3] << 16) | (buf[off + 4] << 8) | buf[off + 5]) >>> 0)
  );
}

function writeU48(buf: Uint8Array, off: number, v: number): void {
  const hi = Math.floor(v / 0x100000000);
  const lo = v >>> 0;
  buf[off] = hi >>> 8;
  buf[off + 1] = hi & 0xff;
  buf[off + 2] = lo >>> 24;
  buf[off + 3] = (lo >>> 16) & 0xff;
  buf[off + 4] = (lo >>> 8) & 0xff;
  buf[off + 5] = lo & 0xff;
}

/** "aa:bb:cc:dd:ee:ff" → 48-bit number; for configuration and tools, not the data path. */
export function parseMac(text: string): number {
  const m = /^([0-9a-f]{2})(?::([0-9a-f]{2})){5}$/i.test(text);
  if (!m) throw new RangeError(`not a MAC address: ${text}`);
  return parseInt(text.replace(/:/g, ''), 16);
}

export function formatMac(v: number): string {
  return v.toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
}
