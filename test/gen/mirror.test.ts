import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  type MirrorFrameSpec,
  OUTER_DST_MAC,
  OUTER_SRC_MAC,
  buildMirrorFrame,
  buildMirrorFrame6,
  formatIPv4,
  mirrorFrameLength,
  mirrorFrameLength6,
  parseIPv4,
  parseIPv6,
} from '../../src/gen/mirror.js';
import * as ipv4 from '../../src/proto/ipv4/packet.js';
import * as udp from '../../src/proto/udp/packet.js';
import { dissect, ipv4HeaderOk, udpChecksumOk } from './helpers.js';

const payload = Uint8Array.from({ length: 101 }, (_, i) => i * 7);
const spec: MirrorFrameSpec = {
  outerSrc: '198.18.1.5',
  outerDst: '198.18.255.1',
  outerSrcPort: 51234,
  vni: 0xabcdef,
  innerSrcMac: 0x02_42_c6_12_00_01,
  innerDstMac: 0x02_42_c6_12_ff_fe,
  innerSrc: '198.18.0.11',
  innerDst: '203.0.113.10',
  innerSrcPort: 50000,
  innerDstPort: 2055,
  payload,
  df: true,
  ipId: 0x1234,
};

test('mirror: parseIPv4 / formatIPv4 / parseIPv6', () => {
  assert.equal(parseIPv4('203.0.113.10'), 0xcb00710a);
  assert.equal(formatIPv4(0xcb00710a), '203.0.113.10');
  assert.throws(() => parseIPv4('203.0.113'), RangeError);
  assert.throws(() => parseIPv4('2001:db8::1'), RangeError);
  const hex = (s: string) => Buffer.from(parseIPv6(s)).toString('hex');
  assert.equal(hex('2001:db8::1'), '20010db8000000000000000000000001');
  assert.equal(hex('::'), '0'.repeat(32));
  assert.equal(hex('::1'), '0'.repeat(31) + '1');
  assert.equal(hex('fe80::'), 'fe80' + '0'.repeat(28));
  assert.equal(hex('2001:db8:1:2:3:4:5:6'), '20010db8000100020003000400050006');
  assert.equal(hex('::ffff:192.0.2.1'), '00000000000000000000ffffc0000201');
  assert.equal(hex('64:ff9b::198.51.100.7'), '0064ff9b0000000000000000c6336407');
  assert.equal(hex('1:2:3:4:5:6:192.0.2.1'), '000100020003000400050006c0000201');
  assert.throws(() => parseIPv6('2001:db8::1::2'), RangeError);
  assert.throws(() => parseIPv6('192.0.2.1'), RangeError);
});

test('mirror: VXLAN frame, inner IPv4/UDP, at an offset', () => {
  const len = mirrorFrameLength(spec);
  assert.equal(len, 14 + 20 + 8 + 8 + 14 + 20 + 8 + payload.length);
  const off = 17;
  const buf = Buffer.alloc(off + len + 9, 0xee);
  assert.equal(buildMirrorFrame(spec, buf, off), len);
  assert.equal(buf[off + len], 0xee, 'nothing written past the frame');
  assert.equal(buf[off - 1], 0xee);
  const d = dissect(buf, off, off + len);
  assert.equal(d.outerEth.src, OUTER_SRC_MAC);
  assert.equal(d.outerEth.dst, OUTER_DST_MAC);
  assert.equal(formatIPv4(d.outerIp.src), spec.outerSrc);
  assert.equal(formatIPv4(d.outerIp.dst), spec.outerDst);
  assert.equal(d.outerUdp.srcPort, 51234);
  assert.equal(d.outerUdp.dstPort, 4789);
  assert.equal(d.outerUdp.checksum, 0, 'AWS sends the outer UDP checksum as zero');
  assert.equal(d.vni, 0xabcdef);
  assert.equal(d.innerEth.src, spec.innerSrcMac);
  assert.equal(d.innerEth.dst, spec.innerDstMac);
  assert.equal(d.innerEth.tagCount, 0);
  const ip = d.innerIp4!;
  assert.equal(formatIPv4(ip.src), spec.innerSrc);
  assert.equal(formatIPv4(ip.dst), spec.innerDst);
  assert.equal(ip.flags, ipv4.FLAG_DF);
  assert.equal(ip.id, 0x1234);
  assert.ok(ipv4HeaderOk(buf, d.innerIpOff), 'inner IPv4 header checksum');
  assert.equal(d.innerUdp.srcPort, 50000);
  assert.equal(d.innerUdp.dstPort, 2055);
  assert.ok(udpChecksumOk(buf, d), 'inner UDP checksum (independent)');
  assert.ok(udp.verify4(buf, d.innerUdpOff, d.innerUdp.length, ip.src, ip.dst), 'inner UDP checksum (codec)');
  assert.deepEqual([...buf.subarray(d.payloadOff, d.payloadEnd)], [...payload]);
});

test('mirror: 802.1Q tag, GENEVE, DF clear', () => {
  const s = { ...spec, vlan: 42, tunnel: 'geneve' as const, df: false, ipId: undefined };
  const len = mirrorFrameLength(s);
  const buf = Buffer.alloc(len);
  assert.equal(buildMirrorFrame(s, buf), len);
  const d = dissect(buf);
  assert.equal(d.outerUdp.dstPort, 6081);
  assert.equal(d.vni, 0xabcdef);
  assert.equal(d.innerEth.tagCount, 1);
  assert.equal(d.innerEth.tpid[0], 0x8100);
  assert.equal(d.innerEth.tci[0] & 0xfff, 42);
  assert.equal(d.innerIp4!.flags, 0);
  assert.equal(d.innerIp4!.id, 0);
  assert.ok(udpChecksumOk(buf, d));
});

test('mirror: inner IPv6/UDP over outer IPv4', () => {
  const s = { ...spec, innerSrc: '2001:db8::11', innerDst: '2001:db8:ffff::10', vlan: 7 };
  const len = mirrorFrameLength6(s);
  assert.equal(len, 14 + 20 + 8 + 8 + 18 + 40 + 8 + payload.length);
  const buf = Buffer.alloc(len + 3);
  assert.equal(buildMirrorFrame6(s, buf, 3), len);
  const d = dissect(buf, 3, 3 + len);
  const ip = d.innerIp6!;
  assert.equal(Buffer.from(ip.src).toString('hex'), '20010db8000000000000000000000011');
  assert.equal(Buffer.from(ip.dst).toString('hex'), '20010db8ffff00000000000000000010');
  assert.equal(ip.hopLimit, 64);
  assert.ok(udpChecksumOk(buf, d), 'inner UDP checksum over the IPv6 pseudo-header (independent)');
  assert.ok(udp.verify6(buf, d.innerIpOff, d.innerUdpOff, d.innerUdp.length));
});

test('mirror: refuses what it cannot build', () => {
  assert.throws(() => buildMirrorFrame(spec, Buffer.alloc(mirrorFrameLength(spec) - 1)), RangeError);
  assert.throws(() => buildMirrorFrame({ ...spec, vni: 1 << 24 }, Buffer.alloc(500)), RangeError);
  assert.throws(() => buildMirrorFrame({ ...spec, vlan: 4096 }, Buffer.alloc(500)), RangeError);
  assert.throws(() => buildMirrorFrame({ ...spec, innerSrc: '2001:db8::1' }, Buffer.alloc(500)), RangeError);
  assert.throws(() => buildMirrorFrame6(spec, Buffer.alloc(500)), RangeError);
  const big = { ...spec, payload: new Uint8Array(65_500) };
  assert.throws(() => buildMirrorFrame(big, Buffer.alloc(70_000)), RangeError);
});

test('mirror: property: any payload and addresses give valid checksums', () => {
  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 1500 }),
      v4,
      v4,
      fc.nat({ max: 0xffff }),
      fc.nat({ max: 0xffff }),
      fc.option(fc.nat({ max: 4095 }), { nil: undefined }),
      fc.boolean(),
      (bytes, src, dst, sport, dport, vlan, v6) => {
        const s: MirrorFrameSpec = { ...spec, payload: bytes, innerSrc: src, innerDst: dst, innerSrcPort: sport, innerDstPort: dport, vlan };
        if (v6) {
          s.innerSrc = `2001:db8::${sport.toString(16)}`;
          s.innerDst = `::ffff:${dst}`;
        }
        const len = v6 ? mirrorFrameLength6(s) : mirrorFrameLength(s);
        const buf = Buffer.alloc(len);
        assert.equal(v6 ? buildMirrorFrame6(s, buf) : buildMirrorFrame(s, buf), len);
        const d = dissect(buf);
        assert.ok(udpChecksumOk(buf, d));
        if (!v6) assert.ok(ipv4HeaderOk(buf, d.innerIpOff));
        assert.deepEqual([...buf.subarray(d.payloadOff)], [...bytes]);
      },
    ),
    { numRuns: 300 },
  );
});
