import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as eth from '../../src/proto/ethernet/packet.js';
import * as ip4 from '../../src/proto/ipv4/packet.js';
import * as udp from '../../src/proto/udp/packet.js';
import * as vxlan from '../../src/proto/vxlan/packet.js';
import { Decode } from '../../src/proto/result.js';
import { assertEncodesInPlace, assertTruncatedPrefixes, isVerdict } from './codec.js';
import { lazyGolden } from './scapy.js';

const header = fc
  .record({
    flags: fc.integer({ min: 0, max: 255 }).map((f) => f | vxlan.FLAG_I),
    vni: fc.integer({ min: 0, max: 0xffffff }),
  })
  .map((r): vxlan.VxlanHeader => ({ ...r }));

function encoded(h: vxlan.VxlanHeader): Uint8Array {
  const buf = new Uint8Array(vxlan.encodingLength(h));
  assert.equal(vxlan.encode(h, buf, 0), buf.length);
  return buf;
}

describe('vxlan codec', () => {
  test('encode → decode → encode round trip; length equals encodingLength; reserved bytes zero', () => {
    fc.assert(
      fc.property(header, (h) => {
        const bytes = encoded(h);
        assert.equal(bytes.length, vxlan.encodingLength(h));
        assert.equal(bytes.length, vxlan.HEADER_LENGTH);
        assert.deepEqual([bytes[1], bytes[2], bytes[3], bytes[7]], [0, 0, 0, 0]);
        const out = vxlan.create();
        assert.equal(vxlan.decode(bytes, 0, bytes.length, out), Decode.OK);
        assert.deepEqual(out, h);
        assert.deepEqual(encoded(out), bytes);
      }),
      { numRuns: 500 },
    );
  });

  test('encoding at an offset leaves the surrounding bytes untouched', () => {
    fc.assert(
      fc.property(header, fc.nat(40), fc.nat(40), (h, before, after) => {
        assertEncodesInPlace((buf, off) => vxlan.encode(h, buf, off), encoded(h), before, after);
      }),
    );
    assert.throws(() => vxlan.encode(vxlan.create(), new Uint8Array(7), 0), RangeError);
  });

  test('reserved bytes are ignored on decode', () => {
    const b = Uint8Array.of(0x08, 0xff, 0xff, 0xff, 0x12, 0x34, 0x56, 0xff);
    const out = vxlan.create();
    assert.equal(vxlan.decode(b, 0, b.length, out), Decode.OK);
    assert.equal(out.vni, 0x123456);
  });

  test('every truncated prefix is TRUNCATED', () => {
    fc.assert(
      fc.property(header, (h) => assertTruncatedPrefixes((b, o, e) => vxlan.decode(b, o, e, vxlan.create()), encoded(h), 8)),
      { numRuns: 100 },
    );
  });

  test('a header without the I flag is MALFORMED', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xffffff }), (flags, vni) => {
        const b = encoded({ flags: flags & ~vxlan.FLAG_I, vni });
        assert.equal(vxlan.decode(b, 0, b.length, vxlan.create()), Decode.MALFORMED);
      }),
    );
  });

  test('random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20 }), fc.nat(20), (bytes, off) => {
        assert.ok(isVerdict(vxlan.decode(bytes, Math.min(off, bytes.length), bytes.length, vxlan.create())));
      }),
      { numRuns: 1000 },
    );
  });
});

const golden = lazyGolden({
  vni: 'VXLAN(vni=0xabcdef)',
  zero: 'VXLAN(vni=0)',
  inFrame:
    "Ether(dst='02:00:00:00:00:01', src='02:00:00:00:00:02')/Dot1Q(vlan=5)/Dot1Q(vlan=7)/IP(src='10.0.0.1', dst='10.0.0.2')/UDP(sport=49152, dport=4789)/VXLAN(vni=123)/Ether(dst='0a:00:00:00:00:01', src='0a:00:00:00:00:02')/IP(src='198.18.0.1', dst='203.0.113.10')/UDP(sport=2055, dport=2055)/Raw(b'flow')",
});

describe('vxlan golden bytes (scapy)', () => {
  test('decode reads scapy fields, encode writes scapy bytes', () => {
    for (const [name, vni] of [['vni', 0xabcdef], ['zero', 0]] as const) {
      const wire = golden()[name];
      const out = vxlan.create();
      assert.equal(vxlan.decode(wire, 0, wire.length, out), Decode.OK);
      assert.deepEqual(out, { flags: vxlan.FLAG_I, vni });
      assert.deepEqual(encoded({ flags: vxlan.FLAG_I, vni }), new Uint8Array(wire));
    }
  });

  test('a QinQ-tagged VXLAN frame decodes layer by layer: Ethernet, IPv4, UDP, VXLAN', () => {
    const wire = golden().inFrame;
    const e = eth.create();
    assert.equal(eth.decode(wire, 0, wire.length, e), Decode.OK);
    assert.deepEqual([e.tagCount, eth.vlanId(e.tci[0]), eth.vlanId(e.tci[1]), e.etherType], [2, 5, 7, eth.EtherType.IPV4]);
    const ipAt = eth.headerLength(e);
    const ip = ip4.create();
    assert.equal(ip4.decode(wire, ipAt, wire.length, ip), Decode.OK);
    assert.deepEqual([ip.src, ip.dst, ip.protocol, ip.totalLength], [0x0a000001, 0x0a000002, 17, wire.length - ipAt]);
    assert.ok(ip4.checksumValid(wire, ipAt, ip.headerLength));
    const u = udp.create();
    assert.equal(udp.decode(wire, ipAt + ip.headerLength, wire.length, u), Decode.OK);
    assert.deepEqual([u.srcPort, u.dstPort, u.length], [49152, vxlan.UDP_PORT, ip.totalLength - ip.headerLength]);
    assert.ok(udp.verify4(wire, ipAt + ip.headerLength, u.length, ip.src, ip.dst));
    const at = ipAt + ip.headerLength + udp.HEADER_LENGTH;
    assert.equal(at, 14 + 8 + 20 + 8);
    const out = vxlan.create();
    assert.equal(vxlan.decode(wire, at, wire.length, out), Decode.OK);
    assert.equal(out.vni, 123);
    // scapy marks an Ethernet payload the VXLAN-GPE way (P flag, Next Protocol 3 in a byte RFC
    // 7348 reserves); decode accepts it since the I flag is set, and reserved bits are ignored.
    assert.ok(out.flags & vxlan.FLAG_I);
    const inner = at + vxlan.HEADER_LENGTH;
    assert.equal((wire[inner + 12] << 8) | wire[inner + 13], 0x0800);
  });
});
