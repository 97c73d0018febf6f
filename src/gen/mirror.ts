/**
 * Builds frames as an AWS VPC Traffic Mirroring target receives them: the mirrored packet's whole
 * original Ethernet frame, encapsulated in VXLAN (RFC 7348) over UDP port 4789 (or GENEVE,
 * RFC 8926, port 6081) over the target's IPv4 network.
 *
 *  outer Ethernet | outer IPv4 | outer UDP (csum 0) | VXLAN/GENEVE | inner Ethernet [802.1Q] |
 *  inner IPv4 or IPv6 | inner UDP (valid csum) | payload
 *
 * For tests and the generator: addresses are parsed from text here (allocation is fine).
 */
import { ipv4ToNumber as parseIPv4, ipv6ToBytes as parseIPv6 } from '../core/prefix-set.js';
import * as ethernet from '../proto/ethernet/packet.js';
import * as geneve from '../proto/geneve/packet.js';
import * as ipv4 from '../proto/ipv4/packet.js';
import * as ipv6 from '../proto/ipv6/packet.js';
import * as udp from '../proto/udp/packet.js';
import * as vxlan from '../proto/vxlan/packet.js';

/** Outer MACs (locally administered, like the 02:/06: addresses of VPC ENIs). */
export const OUTER_SRC_MAC = 0x06_00_5e_00_00_01;
export const OUTER_DST_MAC = 0x06_00_5e_00_00_02;
export const OUTER_TTL = 64;
export const INNER_TTL = 64;

export interface MirrorFrameSpec {
  /** Mirror source ENI address and mirror target address (dotted IPv4). */
  outerSrc: string;
  outerDst: string;
  /** AWS sets this to a hash of the inner flow. */
  outerSrcPort: number;
  /** 24-bit VXLAN/GENEVE network identifier (the mirror session's VNI). */
  vni: number;
  /** Inner (original) frame MACs as 48-bit numbers. */
  innerSrcMac: number;
  innerDstMac: number;
  /** 802.1Q VLAN ID for the inner frame; no tag when absent. */
  vlan?: number;
  /** Inner addresses: dotted IPv4 for buildMirrorFrame, IPv6 text for buildMirrorFrame6. */
  innerSrc: string;
  innerDst: string;
  innerSrcPort: number;
  innerDstPort: number;
  payload: Uint8Array;
  /** Inner IPv4 Don't Fragment flag (default false). */
  df?: boolean;
  /** Inner IPv4 Identification (default 0). */
  ipId?: number;
  /** Outer IPv4 Identification (default 0). */
  outerIpId?: number;
  /** Encapsulation (default 'vxlan'). */
  tunnel?: 'vxlan' | 'geneve';
}

// Address text ↔ numbers: the prefix-set module's, under the names the generator's callers use.
export { ipv4ToNumber as parseIPv4, numberToIpv4 as formatIPv4, ipv6ToBytes as parseIPv6 } from '../core/prefix-set.js';

const OUTER_OVERHEAD = ethernet.HEADER_LENGTH + ipv4.MIN_HEADER_LENGTH + udp.HEADER_LENGTH + vxlan.HEADER_LENGTH;

function innerEthernetLength(spec: MirrorFrameSpec): number {
  return ethernet.HEADER_LENGTH + (spec.vlan === undefined ? 0 : ethernet.TAG_LENGTH);
}

/** Bytes buildMirrorFrame writes for `spec`. */
export function mirrorFrameLength(spec: MirrorFrameSpec): number {
  return OUTER_OVERHEAD + innerEthernetLength(spec) + ipv4.MIN_HEADER_LENGTH + udp.HEADER_LENGTH + spec.payload.length;
}

/** Bytes buildMirrorFrame6 writes for `spec`. */
export function mirrorFrameLength6(spec: MirrorFrameSpec): number {
  return OUTER_OVERHEAD + innerEthernetLength(spec) + ipv6.HEADER_LENGTH + udp.HEADER_LENGTH + spec.payload.length;
}

// Scratch headers: building is synchronous, so one set serves every call.
const eth = ethernet.create();
const ip4 = ipv4.create();
const ip6 = ipv6.create();
const udpH = udp.create();
const vx = vxlan.create();
const gn = geneve.create();

/** Writes outer Ethernet/IPv4/UDP/tunnel and the inner Ethernet header; returns the next offset. */
function writeOuter(spec: MirrorFrameSpec, innerIpLength: number, innerEtherType: number, out: Uint8Array, off: number): number {
  const tunnel = spec.tunnel ?? 'vxlan';
  if (spec.vni < 0 || spec.vni > 0xffffff || !Number.isInteger(spec.vni)) throw new RangeError(`VNI ${spec.vni} is not 24-bit`);
  const innerFrameLength = innerEthernetLength(spec) + innerIpLength;
  const outerUdpLength = udp.HEADER_LENGTH + vxlan.HEADER_LENGTH + innerFrameLength;
  const outerIpLength = ipv4.MIN_HEADER_LENGTH + outerUdpLength;
  if (outerIpLength > 0xffff) throw new RangeError(`mirror frame: outer IPv4 packet of ${outerIpLength} bytes`);
  let p = off;

  eth.dst = OUTER_DST_MAC;
  eth.src = OUTER_SRC_MAC;
  eth.tagCount = 0;
  eth.etherType = ethernet.EtherType.IPV4;
  p += ethernet.encode(eth, out, p);

  ip4.tos = 0;
  ip4.totalLength = outerIpLength;
  ip4.id = spec.outerIpId ?? 0;
  ip4.flags = 0;
  ip4.fragmentOffset = 0;
  ip4.ttl = OUTER_TTL;
  ip4.protocol = udp.PROTOCOL;
  ip4.src = parseIPv4(spec.outerSrc);
  ip4.dst = parseIPv4(spec.outerDst);
  ip4.options = null;
  p += ipv4.encode(ip4, out, p);

  udpH.srcPort = spec.outerSrcPort;
  udpH.dstPort = tunnel === 'geneve' ? geneve.UDP_PORT : vxlan.UDP_PORT;
  udpH.length = outerUdpLength;
  udpH.checksum = 0; // as AWS sends it; RFC 768 allows zero over IPv4
  p += udp.encode(udpH, out, p);

  if (tunnel === 'geneve') {
    gn.version = 0;
    gn.flags = 0;
    gn.protocolType = geneve.PROTOCOL_ETHERNET;
    gn.vni = spec.vni;
    gn.options = null;
    p += geneve.encode(gn, out, p);
  } else {
    vx.flags = vxlan.FLAG_I;
    vx.vni = spec.vni;
    p += vxlan.encode(vx, out, p);
  }

  eth.dst = spec.innerDstMac;
  eth.src = spec.innerSrcMac;
  if (spec.vlan === undefined) {
    eth.tagCount = 0;
  } else {
    if (spec.vlan < 0 || spec.vlan > 0xfff) throw new RangeError(`VLAN ${spec.vlan} is not 12-bit`);
    eth.tagCount = 1;
    eth.tpid[0] = ethernet.EtherType.VLAN;
    eth.tci[0] = spec.vlan;
  }
  eth.etherType = innerEtherType;
  p += ethernet.encode(eth, out, p);
  return p;
}

function writeUdp(spec: MirrorFrameSpec, out: Uint8Array, p: number): number {
  udpH.srcPort = spec.innerSrcPort;
  udpH.dstPort = spec.innerDstPort;
  udpH.length = udp.HEADER_LENGTH + spec.payload.length;
  udpH.checksum = 0;
  udp.encode(udpH, out, p);
  out.set(spec.payload, p + udp.HEADER_LENGTH);
  return udpH.length;
}

function checkRoom(out: Uint8Array, off: number, len: number): void {
  if (out.length - off < len) throw new RangeError(`mirror frame: need ${len} bytes at offset ${off}`);
}

/** Writes a mirrored frame carrying an inner IPv4/UDP datagram; returns bytes written. */
export function buildMirrorFrame(spec: MirrorFrameSpec, out: Buffer, off = 0): number {
  const len = mirrorFrameLength(spec);
  checkRoom(out, off, len);
  const innerIpLength = ipv4.MIN_HEADER_LENGTH + udp.HEADER_LENGTH + spec.payload.length;
  if (innerIpLength > 0xffff) throw new RangeError(`mirror frame: inner IPv4 packet of ${innerIpLength} bytes`);
  let p = writeOuter(spec, innerIpLength, ethernet.EtherType.IPV4, out, off);

  ip4.tos = 0;
  ip4.totalLength = innerIpLength;
  ip4.id = spec.ipId ?? 0;
  ip4.flags = spec.df ? ipv4.FLAG_DF : 0;
  ip4.fragmentOffset = 0;
  ip4.ttl = INNER_TTL;
  ip4.protocol = udp.PROTOCOL;
  ip4.src = parseIPv4(spec.innerSrc);
  ip4.dst = parseIPv4(spec.innerDst);
  ip4.options = null;
  p += ipv4.encode(ip4, out, p);

  const udpLength = writeUdp(spec, out, p);
  const sum = udp.checksum4(out, p, udpLength, ip4.src, ip4.dst);
  out[p + udp.Field.CHECKSUM] = sum >>> 8;
  out[p + udp.Field.CHECKSUM + 1] = sum & 0xff;
  return p + udpLength - off;
}

/** Writes a mirrored frame carrying an inner IPv6/UDP datagram (outer IPv4); returns bytes written. */
export function buildMirrorFrame6(spec: MirrorFrameSpec, out: Buffer, off = 0): number {
  const len = mirrorFrameLength6(spec);
  checkRoom(out, off, len);
  const udpLength = udp.HEADER_LENGTH + spec.payload.length;
  if (udpLength > 0xffff) throw new RangeError(`mirror frame: inner UDP datagram of ${udpLength} bytes`);
  const ipOff = writeOuter(spec, ipv6.HEADER_LENGTH + udpLength, ethernet.EtherType.IPV6, out, off);

  ip6.trafficClass = 0;
  ip6.flowLabel = 0;
  ip6.payloadLength = udpLength;
  ip6.nextHeader = udp.PROTOCOL;
  ip6.hopLimit = INNER_TTL;
  ip6.src.set(parseIPv6(spec.innerSrc));
  ip6.dst.set(parseIPv6(spec.innerDst));
  const p = ipOff + ipv6.encode(ip6, out, ipOff);

  writeUdp(spec, out, p);
  const sum = udp.checksum6(out, ipOff, p, udpLength);
  out[p + udp.Field.CHECKSUM] = sum >>> 8;
  out[p + udp.Field.CHECKSUM + 1] = sum & 0xff;
  return p + udpLength - off;
}
