import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as udp from '../../src/proto/udp/packet.js';
import { Decode } from '../../src/proto/result.js';
import { assertEncodesInPlace, assertTruncatedPrefixes, isVerdict } from './codec.js';
import { be16, naiveUdpChecksum, onesSum, pseudoHeader4, pseudoHeader6, udpVerifies } from './naive.js';
import { lazyGolden } from './scapy.js';

const port = fc.integer({ min: 0, max: 0xffff });
const header = fc
  .record({
    srcPort: port,
    dstPort: port,
    length: fc.integer({ min: udp.HEADER_LENGTH, max: 0xffff }),
    checksum: port,
  })
  .map((r): udp.UdpHeader => ({ ...r }));

function encoded(h: udp.UdpHeader): Uint8Array {
  const buf = new Uint8Array(udp.encodingLength(h));
  assert.equal(udp.encode(h, buf, 0), buf.length);
  return buf;
}

describe('udp codec', () => {
  test('encode → decode → encode round trip; length equals encodingLength', () => {
    fc.assert(
      fc.property(header, (h) => {
        const bytes = encoded(h);
        assert.equal(bytes.length, udp.encodingLength(h));
        assert.equal(bytes.length, udp.HEADER_LENGTH);
        const out = udp.create();
        assert.equal(udp.decode(bytes, 0, bytes.length, out), Decode.OK);
        assert.deepEqual(out, h);
        assert.deepEqual(encoded(out), bytes);
      }),
      { numRuns: 500 },
    );
  });

  test('encoding at an offset leaves the surrounding bytes untouched', () => {
    fc.assert(
      fc.property(header, fc.nat(40), fc.nat(40), (h, before, after) => {
        assertEncodesInPlace((buf, off) => udp.encode(h, buf, off), encoded(h), before, after);
      }),
    );
    assert.throws(() => udp.encode(udp.create(), new Uint8Array(7), 0), RangeError);
    assert.throws(() => udp.encode(udp.create(), new Uint8Array(12), 5), RangeError);
  });

  test('every truncated prefix is TRUNCATED', () => {
    fc.assert(
      fc.property(header, (h) => {
        assertTruncatedPrefixes((b, o, e) => udp.decode(b, o, e, udp.create()), encoded(h), 8);
      }),
      { numRuns: 100 },
    );
  });

  test('a Length below 8 is MALFORMED', () => {
    for (let len = 0; len < 8; len++) {
      const b = encoded({ srcPort: 1, dstPort: 2, length: 8, checksum: 0 });
      b[4] = 0;
      b[5] = len;
      assert.equal(udp.decode(b, 0, b.length, udp.create()), Decode.MALFORMED, `length ${len}`);
    }
  });

  test('random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20 }), fc.nat(20), (bytes, off) => {
        assert.ok(isVerdict(udp.decode(bytes, Math.min(off, bytes.length), bytes.length, udp.create())));
      }),
      { numRuns: 1000 },
    );
  });
});

/** A UDP datagram at `udpOff` of a zeroed buffer, checksum field left zero. */
function datagram(payload: Uint8Array, udpOff: number, srcPort = 2055, dstPort = 9995): Buffer {
  const buf = Buffer.alloc(udpOff + 8 + payload.length + 3);
  udp.encode({ srcPort, dstPort, length: 8 + payload.length, checksum: 0 }, buf, udpOff);
  buf.set(payload, udpOff + 8);
  return buf;
}

const SRC6 = Uint8Array.from(Buffer.from('20010db8000000000000000000000001', 'hex'));
const DST6 = Uint8Array.from(Buffer.from('20010db8ffff000000000000c0a80001', 'hex'));

describe('udp checksums against an independent implementation', () => {
  test('checksum4 equals the naive pseudo-header checksum; verify4 accepts it and rejects a change', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(9), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), (payload, udpOff, src, dst) => {
        const buf = datagram(payload, udpOff);
        const len = 8 + payload.length;
        const c = udp.checksum4(buf, udpOff, len, src, dst);
        const seg = buf.subarray(udpOff, udpOff + len);
        assert.equal(c, naiveUdpChecksum(pseudoHeader4(src, dst, len), seg));
        assert.notEqual(c, 0, 'zero is never sent as a computed checksum');
        buf.writeUInt16BE(c, udpOff + 6);
        assert.ok(udp.verify4(buf, udpOff, len, src, dst));
        assert.ok(udpVerifies(pseudoHeader4(src, dst, len), seg));
        if (payload.length > 0) {
          buf[udpOff + 8 + (payload.length >>> 1)] ^= 0x10;
          assert.equal(udp.verify4(buf, udpOff, len, src, dst), false);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('checksum6 equals the naive pseudo-header checksum; verify6 accepts it and rejects a change', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat(5), (payload, addrs, pad) => {
        const ipOff = pad;
        const udpOff = ipOff + 40;
        const buf = datagram(payload, udpOff);
        buf.set(addrs, ipOff + 8);
        const len = 8 + payload.length;
        const c = udp.checksum6(buf, ipOff, udpOff, len);
        const pseudo = pseudoHeader6(addrs.subarray(0, 16), addrs.subarray(16), len);
        assert.equal(c, naiveUdpChecksum(pseudo, buf.subarray(udpOff, udpOff + len)));
        buf.writeUInt16BE(c, udpOff + 6);
        assert.ok(udp.verify6(buf, ipOff, udpOff, len));
        if (payload.length > 0) {
          buf[udpOff + 8] ^= 0x01;
          assert.equal(udp.verify6(buf, ipOff, udpOff, len), false);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('a zero checksum means "none" over IPv4 but is wrong over IPv6', () => {
    const buf = datagram(Uint8Array.of(1, 2, 3), 0);
    assert.equal(udp.verify4(buf, 0, 11, 0x0a000001, 0x0a000002), true);
    const six = datagram(Uint8Array.of(1, 2, 3), 40);
    six.set(SRC6, 8);
    six.set(DST6, 24);
    assert.equal(udp.verify6(six, 0, 40, 11), false);
  });
});

// Payloads of odd and even lengths, and one whose checksum computes to zero (sent as 0xffff).
const LENGTHS = [0, 1, 2, 3, 7, 64, 255, 1001] as const;
const payloadOf = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff);
const SRC4 = 0xc0000201; // 192.0.2.1
const DST4 = 0xc6336407; // 198.51.100.7

/** Two payload bytes chosen so the IPv4 UDP checksum computes to zero (RFC 768: sent as 0xffff). */
function zeroSumPayload(): Uint8Array {
  const payload = Uint8Array.of(0x42, 0x17, 0, 0);
  const seg = datagram(payload, 0, 1111, 2222);
  const s = onesSum([...pseudoHeader4(SRC4, DST4, seg.length - 3), ...seg.subarray(0, seg.length - 3)]);
  const w = 0xffff - s;
  payload[2] = w >>> 8;
  payload[3] = w & 0xff;
  return payload;
}
const ZERO_SUM = zeroSumPayload();

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const exprs: Record<string, string> = {};
for (const n of LENGTHS) {
  const p = hex(payloadOf(n));
  exprs[`v4_${n}`] = `IP(src='192.0.2.1', dst='198.51.100.7')/UDP(sport=2055, dport=9995)/Raw(bytes.fromhex('${p}'))`;
  exprs[`v6_${n}`] = `IPv6(src='2001:db8::1', dst='2001:db8:ffff::c0a8:1')/UDP(sport=2055, dport=9995)/Raw(bytes.fromhex('${p}'))`;
}
exprs.v4_zero = `IP(src='192.0.2.1', dst='198.51.100.7')/UDP(sport=1111, dport=2222)/Raw(bytes.fromhex('${hex(ZERO_SUM)}'))`;
const golden = lazyGolden(exprs);

describe('udp checksums against scapy', () => {
  for (const n of LENGTHS) {
    test(`IPv4, ${n}-byte payload: checksum4 and verify4 agree with scapy`, () => {
      const wire = golden()[`v4_${n}`];
      const udpOff = 20;
      const len = be16(wire, udpOff + 4);
      assert.equal(len, 8 + n);
      const expected = be16(wire, udpOff + 6);
      assert.equal(udp.checksum4(wire, udpOff, len, SRC4, DST4), expected);
      assert.ok(udp.verify4(wire, udpOff, len, SRC4, DST4));
      const h = udp.create();
      assert.equal(udp.decode(wire, udpOff, wire.length, h), Decode.OK);
      assert.deepEqual(h, { srcPort: 2055, dstPort: 9995, length: 8 + n, checksum: expected });
      assert.deepEqual(encoded(h), new Uint8Array(wire.subarray(udpOff, udpOff + 8)));
    });

    test(`IPv6, ${n}-byte payload: checksum6 and verify6 agree with scapy`, () => {
      const wire = golden()[`v6_${n}`];
      const len = be16(wire, 40 + 4);
      assert.deepEqual(new Uint8Array(wire.subarray(8, 24)), SRC6);
      assert.deepEqual(new Uint8Array(wire.subarray(24, 40)), DST6);
      assert.equal(udp.checksum6(wire, 0, 40, len), be16(wire, 46));
      assert.ok(udp.verify6(wire, 0, 40, len));
    });
  }

  test('a checksum that computes to zero is sent as 0xffff, as scapy does', () => {
    const wire = golden().v4_zero;
    assert.equal(be16(wire, 26), 0xffff);
    assert.equal(udp.checksum4(wire, 20, 12, SRC4, DST4), 0xffff);
    assert.ok(udp.verify4(wire, 20, 12, SRC4, DST4));
  });
});
