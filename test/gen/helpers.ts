/** Test helpers: take a mirrored frame apart with the header codecs, check checksums independently. */
import assert from 'node:assert/strict';
import * as ethernet from '../../src/proto/ethernet/packet.js';
import * as geneve from '../../src/proto/geneve/packet.js';
import * as ipv4 from '../../src/proto/ipv4/packet.js';
import * as ipv6 from '../../src/proto/ipv6/packet.js';
import * as udp from '../../src/proto/udp/packet.js';
import * as vxlan from '../../src/proto/vxlan/packet.js';
import { Decode } from '../../src/proto/result.js';

export interface Dissected {
  outerEth: ethernet.EthernetHeader;
  outerIp: ipv4.Ipv4Header;
  outerUdp: udp.UdpHeader;
  vni: number;
  innerEth: ethernet.EthernetHeader;
  innerIp4: ipv4.Ipv4Header | null;
  innerIp6: ipv6.Ipv6Header | null;
  innerUdp: udp.UdpHeader;
  innerIpOff: number;
  innerUdpOff: number;
  payloadOff: number;
  payloadEnd: number;
}

/** RFC 1071 sum written out plainly, independent of src/proto/checksum.ts. */
export function onesSum(bytes: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i] << 8) + (i + 1 < bytes.length ? bytes[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

export function ipv4HeaderOk(frame: Uint8Array, off: number): boolean {
  return onesSum(frame.subarray(off, off + (frame[off] & 0x0f) * 4)) === 0xffff;
}

/** Verifies the inner UDP checksum from raw bytes and a hand-built pseudo-header. */
export function udpChecksumOk(frame: Uint8Array, d: Dissected): boolean {
  const len = d.innerUdp.length;
  const pseudo: number[] = [];
  if (d.innerIp4) {
    pseudo.push(...frame.subarray(d.innerIpOff + 12, d.innerIpOff + 20), 0, 17, len >>> 8, len & 0xff);
  } else {
    pseudo.push(...frame.subarray(d.innerIpOff + 8, d.innerIpOff + 40), 0, 0, len >>> 8, len & 0xff, 0, 0, 0, 17);
  }
  const all = Uint8Array.from([...pseudo, ...frame.subarray(d.innerUdpOff, d.innerUdpOff + len)]);
  return d.innerUdp.checksum !== 0 && onesSum(all) === 0xffff;
}

export function dissect(frame: Uint8Array, off = 0, end = frame.length): Dissected {
  const outerEth = ethernet.create();
  assert.equal(ethernet.decode(frame, off, end, outerEth), Decode.OK);
  assert.equal(outerEth.etherType, ethernet.EtherType.IPV4);
  let p = off + ethernet.headerLength(outerEth);
  const outerIp = ipv4.create();
  assert.equal(ipv4.decode(frame, p, end, outerIp), Decode.OK);
  assert.equal(outerIp.totalLength, end - p, 'outer IPv4 total length');
  assert.ok(ipv4HeaderOk(frame, p), 'outer IPv4 header checksum');
  p += outerIp.headerLength;
  const outerUdp = udp.create();
  assert.equal(udp.decode(frame, p, end, outerUdp), Decode.OK);
  assert.equal(outerUdp.length, end - p, 'outer UDP length');
  p += udp.HEADER_LENGTH;
  let vni: number;
  if (outerUdp.dstPort === geneve.UDP_PORT) {
    const g = geneve.create();
    assert.equal(geneve.decode(frame, p, end, g), Decode.OK);
    assert.equal(g.protocolType, geneve.PROTOCOL_ETHERNET);
    vni = g.vni;
    p += geneve.headerLength(g);
  } else {
    assert.equal(outerUdp.dstPort, vxlan.UDP_PORT);
    const v = vxlan.create();
    assert.equal(vxlan.decode(frame, p, end, v), Decode.OK);
    assert.equal(v.flags, vxlan.FLAG_I);
    vni = v.vni;
    p += vxlan.HEADER_LENGTH;
  }
  const innerEth = ethernet.create();
  assert.equal(ethernet.decode(frame, p, end, innerEth), Decode.OK);
  p += ethernet.headerLength(innerEth);
  const innerIpOff = p;
  let innerIp4: ipv4.Ipv4Header | null = null;
  let innerIp6: ipv6.Ipv6Header | null = null;
  if (innerEth.etherType === ethernet.EtherType.IPV4) {
    innerIp4 = ipv4.create();
    assert.equal(ipv4.decode(frame, p, end, innerIp4), Decode.OK);
    assert.equal(innerIp4.totalLength, end - p, 'inner IPv4 total length');
    assert.equal(innerIp4.protocol, 17);
    p += innerIp4.headerLength;
  } else {
    assert.equal(innerEth.etherType, ethernet.EtherType.IPV6);
    innerIp6 = ipv6.create();
    assert.equal(ipv6.decode(frame, p, end, innerIp6), Decode.OK);
    assert.equal(innerIp6.payloadLength, end - p - 40, 'inner IPv6 payload length');
    assert.equal(innerIp6.nextHeader, 17);
    p += ipv6.HEADER_LENGTH;
  }
  const innerUdpOff = p;
  const innerUdp = udp.create();
  assert.equal(udp.decode(frame, p, end, innerUdp), Decode.OK);
  assert.equal(innerUdp.length, end - p, 'inner UDP length');
  return {
    outerEth,
    outerIp,
    outerUdp,
    vni,
    innerEth,
    innerIp4,
    innerIp6,
    innerUdp,
    innerIpOff,
    innerUdpOff,
    payloadOff: p + udp.HEADER_LENGTH,
    payloadEnd: end,
  };
}
