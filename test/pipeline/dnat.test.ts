/**
 * DNAT to the chosen backend: the exporter's source address and port are kept, the destination
 * (and port, when the backend names one) becomes the backend's, and the IPv4 header and UDP
 * checksums verify afterwards — by the product's verifiers and by an independent sum.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildMirrorFrame, buildMirrorFrame6, mirrorFrameLength, mirrorFrameLength6, type MirrorFrameSpec } from '../../src/gen/mirror.js';
import * as udp from '../../src/proto/udp/packet.js';
import { ipv6ToBytes } from '../../src/core/prefix-set.js';
import { assertBalanced, be16, be32, ip4, makePipeline, mirror, pseudoHeader4, pseudoHeader6, sumsToOnes, udp4, udp6, udpVerifies } from './helpers.js';

const port = fc.integer({ min: 1, max: 65535 });
/** A backend port, or 0: keep the packet's own destination port. */
const backendPort = fc.oneof(fc.constant(0), port);

function spec(innerSrc: string, innerDst: string, srcPort: number, dstPort: number, payload: Uint8Array): MirrorFrameSpec {
  return {
    outerSrc: '198.18.0.1',
    outerDst: '10.0.0.100',
    outerSrcPort: 50000,
    vni: 77,
    innerSrcMac: 0x0a0000000001,
    innerDstMac: 0x0a0000000002,
    innerSrc,
    innerDst,
    innerSrcPort: srcPort,
    innerDstPort: dstPort,
    payload,
  };
}

function pipelineTo(backend: string, mtu = 9000) {
  return makePipeline({ rules: [{ name: 'all', destination: 'd' }], destinations: { d: { backends: [backend], mtu } } });
}

describe('DNAT over IPv4', () => {
  test('source kept, destination rewritten, header and UDP checksums verify', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), port, port, fc.uint8Array({ maxLength: 1400 }), fc.ipV4(), backendPort, (src, dst, sport, dport, payload, backend, bport) => {
        const s = spec(src, dst, sport, dport, payload);
        const frame = Buffer.alloc(mirrorFrameLength(s));
        buildMirrorFrame(s, frame);
        const t = pipelineTo(bport ? `${backend}:${bport}` : backend);
        const [p, ...rest] = t.feed([frame]);
        assert.equal(rest.length, 0);
        assert.equal(be32(p, 12), ip4(src), 'source address kept');
        assert.equal(be16(p, 20), sport, 'source port kept');
        assert.equal(be32(p, 16), ip4(backend), 'destination is the backend');
        assert.equal(be16(p, 22), bport || dport, 'destination port is the backend port, or kept');
        assert.equal(p.length, 28 + payload.length);
        assert.deepEqual(Uint8Array.from(p.subarray(28)), payload, 'payload untouched');
        assert.ok(sumsToOnes(p, 0, 20), 'IPv4 header checksum (independent)');
        assert.notEqual(be16(p, 26), 0, 'a UDP checksum that was set stays set');
        assert.ok(udp.verify4(p, 20, p.length - 20, be32(p, 12), be32(p, 16)), 'UDP checksum (verify4)');
        assert.ok(udpVerifies(pseudoHeader4(ip4(src), ip4(backend), p.length - 20), p.subarray(20)), 'UDP checksum (independent)');
        assertBalanced(t.accounting());
      }),
      { numRuns: 300 },
    );
  });

  test('a zero UDP checksum ("none") stays zero', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.ipV4(), port, (src, backend, bport) => {
        const dg = udp4({ src, dst: ip4('10.1.2.3'), srcPort: 2055, dstPort: 2055, payload: Uint8Array.of(1, 2, 3), noChecksum: true });
        const t = pipelineTo(`${backend}:${bport}`);
        const [p] = t.feed([mirror(dg)]);
        assert.equal(be16(p, 26), 0);
        assert.equal(be32(p, 16), ip4(backend));
        assert.equal(be16(p, 22), bport);
        assert.ok(sumsToOnes(p, 0, 20));
      }),
      { numRuns: 100 },
    );
  });

  test('a rewrite whose checksum comes to zero is sent as 0xffff, never as "none"', () => {
    // Search payloads until the rewritten datagram's checksum computes to 0 (sent as 0xffff).
    const backend = '203.0.113.10';
    let found = 0;
    for (let w = 0; w < 0x10000 && found < 3; w++) {
      const payload = Uint8Array.of(w >>> 8, w & 0xff);
      const dg = udp4({ src: ip4('198.18.0.5'), dst: ip4('10.1.2.3'), srcPort: 1000, dstPort: 2000, payload });
      const expected = pseudoHeader4(ip4('198.18.0.5'), ip4(backend), 10);
      const seg = [0x03, 0xe8, 0x07, 0xd0, 0, 10, 0, 0, w >>> 8, w & 0xff];
      if (!sumsToOnes([...expected, ...seg])) continue; // checksum of the rewritten datagram ≠ 0
      found++;
      const t = pipelineTo(`${backend}:2000`);
      const [p] = t.feed([mirror(dg)]);
      assert.equal(be16(p, 26), 0xffff);
      assert.ok(udp.verify4(p, 20, 10, be32(p, 12), be32(p, 16)));
    }
    assert.ok(found > 0);
  });
});

describe('DNAT over IPv6', () => {
  test('source kept, destination rewritten, UDP checksum verifies', () => {
    fc.assert(
      fc.property(fc.ipV6(), fc.ipV6(), port, port, fc.uint8Array({ maxLength: 1400 }), fc.ipV6(), backendPort, (src, dst, sport, dport, payload, backend, bport) => {
        const s = spec(src, dst, sport, dport, payload);
        const frame = Buffer.alloc(mirrorFrameLength6(s));
        buildMirrorFrame6(s, frame);
        const t = makePipeline({
          rules: [{ name: 'all', match: { dstCidr: '::/0' }, destination: 'd' }],
          destinations: { d: { backends: [bport ? `[${backend}]:${bport}` : `[${backend}]`], mtu: 9000 } },
        });
        const [p, ...rest] = t.feed([frame]);
        assert.equal(rest.length, 0);
        const srcBytes = ipv6ToBytes(src);
        const backendBytes = ipv6ToBytes(backend);
        assert.deepEqual(Uint8Array.from(p.subarray(8, 24)), srcBytes, 'source address kept');
        assert.deepEqual(Uint8Array.from(p.subarray(24, 40)), backendBytes, 'destination is the backend');
        assert.equal(be16(p, 40), sport);
        assert.equal(be16(p, 42), bport || dport);
        assert.deepEqual(Uint8Array.from(p.subarray(48)), payload);
        assert.notEqual(be16(p, 46), 0);
        assert.ok(udp.verify6(p, 0, 40, p.length - 40));
        assert.ok(udpVerifies(pseudoHeader6(srcBytes, backendBytes, p.length - 40), p.subarray(40)));
        assertBalanced(t.accounting());
      }),
      { numRuns: 300 },
    );
  });

  test('a zero UDP checksum (not allowed over IPv6) leaves with a valid one', () => {
    const src = ipv6ToBytes('2001:db8::5');
    const dg = udp6({ src, dst: ipv6ToBytes('2001:db8::1'), srcPort: 7, dstPort: 9, payload: Uint8Array.of(1, 2, 3, 4, 5), noChecksum: true });
    const t = makePipeline({
      rules: [{ name: 'all', match: { dstCidr: '::/0' }, destination: 'd' }],
      destinations: { d: { backends: ['[2001:db8::99]:4739'] } },
    });
    const [p] = t.feed([mirror(dg)]);
    assert.notEqual(be16(p, 46), 0);
    assert.ok(udpVerifies(pseudoHeader6(src, ipv6ToBytes('2001:db8::99'), 13), p.subarray(40)));
    assert.equal(be16(p, 42), 4739);
  });
});

describe('DNAT and balancing', () => {
  test('hash keeps an exporter on one backend; replicate sends one copy per backend, each verified', () => {
    const t = makePipeline({
      rules: [
        { name: 'copies', match: { dstPort: 6343 }, destination: 'rep' },
        { name: 'hashed', destination: 'hash' },
      ],
      destinations: {
        hash: { backends: ['203.0.113.1:2055', '203.0.113.2:2055', '203.0.113.3:2055'] },
        rep: { backends: ['203.0.113.10:6343', '203.0.113.11:6344', '203.0.113.12'], balance: 'replicate' },
      },
    });
    const exporters = Array.from({ length: 50 }, (_, k) => ip4(`198.18.0.${k + 1}`));
    const frames = exporters.map((src, k) => mirror(udp4({ src, dst: ip4('10.0.0.1'), srcPort: 1000 + k, dstPort: 2055, payload: Uint8Array.of(k) })));
    const first = t.feed(frames);
    const again = t.feed(frames);
    assert.deepEqual(
      again.map((p) => be32(p, 16)),
      first.map((p) => be32(p, 16)),
      'same exporter, same backend',
    );
    assert.ok(new Set(first.map((p) => be32(p, 16))).size > 1, 'exporters spread over backends');
    const copies = t.feed([mirror(udp4({ src: ip4('198.18.0.1'), dst: ip4('10.0.0.1'), srcPort: 5, dstPort: 6343, payload: Uint8Array.of(9) }))]);
    assert.deepEqual(
      copies.map((p) => [be32(p, 16), be16(p, 22)]).sort(),
      [
        [ip4('203.0.113.10'), 6343],
        [ip4('203.0.113.11'), 6344],
        [ip4('203.0.113.12'), 6343],
      ],
    );
    for (const p of copies) {
      assert.ok(sumsToOnes(p, 0, 20));
      assert.ok(udp.verify4(p, 20, p.length - 20, be32(p, 12), be32(p, 16)));
    }
    const a = t.accounting();
    assertBalanced(a);
    assert.equal(a.forwarded, 101);
    assert.equal(a.tx, 103);
  });
});
