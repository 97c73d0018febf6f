/**
 * The offered traffic: one NetFlow v9 datagram per exporter, either wrapped as AWS Traffic
 * Mirroring delivers it (outer IPv4/UDP 4789 + VXLAN + the original Ethernet frame) or as the bare
 * inner IPv4 packet addressed to the collector (the "direct" ceiling).
 *
 * Each exporter's datagrams carry its own NetFlow v9 package sequence, one more per datagram, as
 * a router's would. Every datagram ends with a 24-byte marker that the generator rewrites per batch and the sink
 * reads back:
 *
 *   +0  magic "MGB1"   +4 step id   +8 exporter index   +12 reserved   +16 send time (ns, f64 BE)
 *
 * The inner UDP checksum stays valid: each template keeps the one's-complement sum of its
 * datagram with a zero step and time, and the generator adds the sum of the new words.
 */
import { buildMirrorFrame, parseIPv4 } from '../../src/gen/mirror.js';
import { ADDR, EXPORTERS, MAC, VNI } from './layout.js';

export const MARKER_LENGTH = 24;
export const MARKER_MAGIC = 0x4d474231; // "MGB1"
export const MARKER = { MAGIC: 0, STEP: 4, EXPORTER: 8, TIME: 16 } as const;

/** Offsets in a mirror frame without VLAN tag. */
const OUTER_ETH = 14;
const INNER_IP_IN_FRAME = 14 + 20 + 8 + 8 + 14;
const UDP_CHECKSUM_IN_IP = 20 + 6;

/** NetFlow v9 (RFC 3954) template 256: a common IPv4 flow record, 45 bytes. */
const TEMPLATE_ID = 256;
const RECORD_FIELDS: [type: number, length: number][] = [
  [8, 4], // IPV4_SRC_ADDR
  [12, 4], // IPV4_DST_ADDR
  [15, 4], // IPV4_NEXT_HOP
  [10, 2], // INPUT_SNMP
  [14, 2], // OUTPUT_SNMP
  [2, 4], // IN_PKTS
  [1, 4], // IN_BYTES
  [22, 4], // FIRST_SWITCHED
  [21, 4], // LAST_SWITCHED
  [7, 2], // L4_SRC_PORT
  [11, 2], // L4_DST_PORT
  [6, 1], // TCP_FLAGS
  [4, 1], // PROTOCOL
  [5, 1], // SRC_TOS
  [16, 2], // SRC_AS
  [17, 2], // DST_AS
  [9, 1], // SRC_MASK
  [13, 1], // DST_MASK
];
const RECORD_LENGTH = RECORD_FIELDS.reduce((a, [, l]) => a + l, 0);
const HEADER_LENGTH = 20;
const FLOWSET_HEADER = 4;

/** Smallest payload that holds a header, one record and the marker. */
export const MIN_PAYLOAD = HEADER_LENGTH + FLOWSET_HEADER + RECORD_LENGTH + MARKER_LENGTH;

/**
 * A NetFlow v9 export datagram of exactly `size` bytes: header, one data FlowSet of template 256
 * with as many 45-byte records as fit before the marker; the marker sits in the FlowSet's padding.
 */
export function netflow9Payload(size: number, exporter: number, sequence: number): Uint8Array {
  if (size < MIN_PAYLOAD || size > 8000) throw new RangeError(`payload size ${size}: expected ${MIN_PAYLOAD}..8000 bytes`);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  const records = Math.floor((size - HEADER_LENGTH - FLOWSET_HEADER - MARKER_LENGTH) / RECORD_LENGTH);
  dv.setUint16(0, 9); // version
  dv.setUint16(2, records); // count: records in this packet
  dv.setUint32(4, 3_600_000 + exporter); // sysUptime (ms)
  dv.setUint32(8, 1_700_000_000); // unix secs
  dv.setUint32(12, sequence); // package sequence
  dv.setUint32(16, exporter); // source id
  dv.setUint16(20, TEMPLATE_ID);
  dv.setUint16(22, size - HEADER_LENGTH); // FlowSet length includes the padding (and the marker)
  let p = HEADER_LENGTH + FLOWSET_HEADER;
  for (let r = 0; r < records; r++) {
    dv.setUint32(p, (0xc6120000 | ((exporter + r) & 0xffff)) >>> 0); // flows seen by the exporter
    dv.setUint32(p + 4, (0xcb007100 | (r & 0xff)) >>> 0); // 203.0.113.x
    dv.setUint32(p + 8, 0xc6120001);
    dv.setUint16(p + 12, 1 + (r % 8));
    dv.setUint16(p + 14, 9 + (r % 4));
    dv.setUint32(p + 16, 10 + r);
    dv.setUint32(p + 20, 1500 * (10 + r));
    dv.setUint32(p + 24, 3_590_000 + r);
    dv.setUint32(p + 28, 3_599_000 + r);
    dv.setUint16(p + 32, 1024 + r);
    dv.setUint16(p + 34, 443);
    out[p + 36] = 0x18;
    out[p + 37] = 6;
    out[p + 38] = 0;
    dv.setUint16(p + 39, 64500);
    dv.setUint16(p + 41, 64501);
    out[p + 43] = 24;
    out[p + 44] = 24;
    p += RECORD_LENGTH;
  }
  dv.setUint32(size - MARKER_LENGTH + MARKER.MAGIC, MARKER_MAGIC);
  dv.setUint32(size - MARKER_LENGTH + MARKER.EXPORTER, exporter);
  return out;
}

export function exporterAddress(i: number): number {
  return (parseIPv4(ADDR.exporterBase) + i) >>> 0;
}

export function exporterPort(i: number): number {
  return ADDR.exporterPortBase + i;
}

/** AWS derives the outer source port from the inner flow: a stable hash per exporter flow. */
function outerSourcePort(i: number): number {
  let h = Math.imul(i + 0x9e37, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return 49152 + (h % 16384);
}

/** A set of preallocated packets, each an IP packet (IP_HDRINCL) at offsets[i] in arena. */
export interface PacketSet {
  readonly arena: Buffer;
  readonly count: number;
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  /** Routing destination of each packet (host order), the IP header's own destination. */
  readonly dst: Uint32Array;
  /** Arena offset of each packet's marker. */
  readonly marker: Uint32Array;
  /** Arena offset of each packet's inner UDP checksum. */
  readonly checksum: Uint32Array;
  /** Arena offset of each datagram's NetFlow v9 package sequence (written per packet, from 0 in baseSum). */
  readonly sequence: Uint32Array;
  /** One's-complement sum of each datagram (pseudo-header included) with zero step, time and sequence. */
  readonly baseSum: Uint32Array;
  /** Bytes of the IP packet handed to the kernel. */
  readonly ipLength: number;
  /** Bytes of the inner IP packet the collector receives. */
  readonly innerIpLength: number;
}

const SLOT = 2048;

/**
 * Mirror mode: packet i is exporter i's datagram in AWS mirror format from mirror source
 * i % 4, outer destination the gateway. Direct mode: the same inner packet but addressed to the
 * collector, as the gateway would deliver it.
 */
export function buildPacketSet(mode: 'mirror' | 'direct', payloadSize: number): PacketSet {
  const count = EXPORTERS;
  const arena = Buffer.alloc(count * SLOT);
  const offsets = new Uint32Array(count);
  const lengths = new Uint32Array(count);
  const dst = new Uint32Array(count);
  const marker = new Uint32Array(count);
  const checksum = new Uint32Array(count);
  const sequence = new Uint32Array(count);
  const baseSum = new Uint32Array(count);
  const scratch = Buffer.alloc(SLOT);
  let ipLength = 0;
  let innerIpLength = 0;
  for (let i = 0; i < count; i++) {
    const payload = netflow9Payload(payloadSize, i, 0);
    const frameLength = buildMirrorFrame(
      {
        outerSrc: ADDR.mirrorSources[i % ADDR.mirrorSources.length],
        outerDst: ADDR.gwOuter,
        outerSrcPort: outerSourcePort(i),
        vni: VNI,
        innerSrcMac: MAC.innerSrc,
        innerDstMac: MAC.monitored,
        innerSrc: formatIp(exporterAddress(i)),
        innerDst: mode === 'mirror' ? ADDR.monitored : ADDR.collector,
        innerSrcPort: exporterPort(i),
        innerDstPort: ADDR.monitoredPort,
        payload,
        ipId: (i * 7919) & 0xffff || 1,
        outerIpId: (i * 104729) & 0xffff || 1,
      },
      scratch,
      0,
    );
    const start = mode === 'mirror' ? OUTER_ETH : INNER_IP_IN_FRAME;
    const len = frameLength - start;
    const off = i * SLOT;
    scratch.copy(arena, off, start, frameLength);
    offsets[i] = off;
    lengths[i] = len;
    dst[i] = mode === 'mirror' ? parseIPv4(ADDR.gwOuter) : parseIPv4(ADDR.collector);
    marker[i] = off + len - MARKER_LENGTH;
    const innerIp = off + (INNER_IP_IN_FRAME - start);
    checksum[i] = innerIp + UDP_CHECKSUM_IN_IP;
    sequence[i] = innerIp + 20 + 8 + 12;
    const c = arena.readUInt16BE(checksum[i]);
    baseSum[i] = ~c & 0xffff;
    ipLength = len;
    innerIpLength = frameLength - INNER_IP_IN_FRAME;
  }
  return { arena, count, offsets, lengths, dst, marker, checksum, sequence, baseSum, ipLength, innerIpLength };
}

function formatIp(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Folds a 32-bit one's-complement accumulator to 16 bits. */
export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Sum of the 16-bit words the marker's step and time fields contribute. */
export function markerWordSum(step: number, timeBytes: Uint8Array): number {
  let s = (step >>> 16) + (step & 0xffff);
  for (let k = 0; k < 8; k += 2) s += (timeBytes[k] << 8) | timeBytes[k + 1];
  return s;
}
