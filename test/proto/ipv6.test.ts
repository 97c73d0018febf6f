import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as ip6 from '../../src/proto/ipv6/packet.js';
import { Decode } from '../../src/proto/result.js';
import { assertEncodesInPlace, assertTruncatedPrefixes, isVerdict } from './codec.js';
import { lazyGolden } from './scapy.js';

const NH = ip6.NextHeader;

const header = fc
  .record({
    trafficClass: fc.integer({ min: 0, max: 255 }),
    flowLabel: fc.integer({ min: 0, max: 0xfffff }),
    payloadLength: fc.integer({ min: 0, max: 0xffff }),
    nextHeader: fc.integer({ min: 0, max: 255 }),
    hopLimit: fc.integer({ min: 0, max: 255 }),
    src: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    dst: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  })
  .map((r): ip6.Ipv6Header => ({ ...r }));

function encoded(h: ip6.Ipv6Header): Uint8Array {
  const buf = new Uint8Array(ip6.encodingLength(h));
  assert.equal(ip6.encode(h, buf, 0), buf.length);
  return buf;
}

function decoded(bytes: Uint8Array, off = 0): ip6.Ipv6Header {
  const out = ip6.create();
  assert.equal(ip6.decode(bytes, off, bytes.length, out), Decode.OK);
  return out;
}

/** A fixed header followed by extension headers built by hand: [type, body length in bytes]. */
function chain(first: number, exts: { type: number; next: number; len?: number; frag?: { offset: number; more: boolean; id: number } }[], upper = 8): Uint8Array {
  const parts: number[] = [];
  for (const x of exts) {
    if (x.type === NH.FRAGMENT) {
      const f = x.frag ?? { offset: 0, more: true, id: 1 };
      const w = (f.offset << 3) | (f.more ? 1 : 0);
      parts.push(x.next, 0, w >>> 8, w & 0xff, f.id >>> 24, (f.id >>> 16) & 0xff, (f.id >>> 8) & 0xff, f.id & 0xff);
    } else {
      const len = x.len ?? 8;
      parts.push(x.next, len / 8 - 1, ...new Array<number>(len - 2).fill(0));
    }
  }
  const h = { ...ip6.create(), nextHeader: first, payloadLength: parts.length + upper };
  const out = new Uint8Array(40 + parts.length + upper);
  ip6.encode(h, out, 0);
  out.set(parts, 40);
  return out;
}

function walk(bytes: Uint8Array, end = bytes.length) {
  const up = ip6.createUpperLayer();
  const r = ip6.findUpperLayer(bytes, 0, end, up);
  return { r, up };
}

describe('ipv6 codec', () => {
  test('encode → decode → encode round trip; length equals encodingLength', () => {
    fc.assert(
      fc.property(header, (h) => {
        const bytes = encoded(h);
        assert.equal(bytes.length, ip6.encodingLength(h));
        assert.equal(bytes.length, ip6.HEADER_LENGTH);
        const out = decoded(bytes);
        assert.deepEqual(out, h);
        assert.deepEqual(encoded(out), bytes);
      }),
      { numRuns: 500 },
    );
  });

  test('encoding at an offset leaves the surrounding bytes untouched', () => {
    fc.assert(
      fc.property(header, fc.nat(40), fc.nat(40), (h, before, after) => {
        assertEncodesInPlace((buf, off) => ip6.encode(h, buf, off), encoded(h), before, after);
        const buf = new Uint8Array(before + 40 + after);
        ip6.encode(h, buf, before);
        assert.deepEqual(decoded(buf, before), h);
      }),
    );
  });

  test('encode refuses a buffer too small, with a RangeError', () => {
    assert.throws(() => ip6.encode(ip6.create(), new Uint8Array(39), 0), RangeError);
    assert.throws(() => ip6.encode(ip6.create(), new Uint8Array(50), 11), RangeError);
  });

  test('every truncated prefix of the fixed header is TRUNCATED', () => {
    fc.assert(
      fc.property(header, (h) => {
        assertTruncatedPrefixes((b, o, e) => ip6.decode(b, o, e, ip6.create()), encoded(h), 40);
      }),
      { numRuns: 100 },
    );
  });

  test('version other than 6 is MALFORMED', () => {
    for (const v of [0, 4, 5, 7, 15]) {
      const b = encoded(ip6.create());
      b[0] = (v << 4) | (b[0] & 0x0f);
      assert.equal(ip6.decode(b, 0, b.length, ip6.create()), Decode.MALFORMED, `version ${v}`);
    }
  });

  test('random bytes never throw (decode, and the extension walk after a good decode)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 160 }), fc.nat(40), (bytes, off) => {
        const o = Math.min(off, bytes.length);
        const h = ip6.create();
        const r = ip6.decode(bytes, o, bytes.length, h);
        assert.ok(isVerdict(r));
        if (bytes.length - o >= 40) {
          bytes[o] = 0x60;
          assert.ok(isVerdict(ip6.findUpperLayer(bytes, o, bytes.length, ip6.createUpperLayer())));
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('ipv6 extension-header walk', () => {
  test('hop-by-hop, routing, destination options and a first fragment lead to UDP', () => {
    const b = chain(NH.HOP_BY_HOP, [
      { type: NH.HOP_BY_HOP, next: NH.ROUTING, len: 8 },
      { type: NH.ROUTING, next: NH.DEST_OPTIONS, len: 24 },
      { type: NH.DEST_OPTIONS, next: NH.FRAGMENT, len: 16 },
      { type: NH.FRAGMENT, next: NH.UDP, frag: { offset: 0, more: true, id: 0xdeadbeef } },
    ]);
    const { r, up } = walk(b);
    assert.equal(r, Decode.OK);
    assert.equal(up.protocol, NH.UDP);
    assert.equal(up.offset, 40 + 8 + 24 + 16 + 8);
    assert.equal(up.fragmentHeader, 40 + 8 + 24 + 16);
    assert.equal(up.fragmentNextHeaderAt, 40 + 8 + 24);
    assert.equal(up.fragmentOffset, 0);
    assert.equal(up.more, true);
    assert.equal(up.id, 0xdeadbeef);
  });

  test('a non-first fragment stops at its fragment header', () => {
    const b = chain(NH.FRAGMENT, [{ type: NH.FRAGMENT, next: NH.UDP, frag: { offset: 185, more: false, id: 7 } }], 3);
    const { r, up } = walk(b);
    assert.equal(r, Decode.OK);
    assert.equal(up.protocol, NH.UDP);
    assert.equal(up.offset, 48);
    assert.equal(up.fragmentHeader, 40);
    assert.equal(up.fragmentNextHeaderAt, ip6.NEXT_HEADER_OFFSET);
    assert.equal(up.fragmentOffset, 185);
    assert.equal(up.more, false);
  });

  test('the walk resets fragment facts between packets', () => {
    const up = ip6.createUpperLayer();
    const frag = chain(NH.FRAGMENT, [{ type: NH.FRAGMENT, next: NH.UDP, frag: { offset: 1, more: true, id: 9 } }]);
    const plain = chain(NH.UDP, []);
    assert.equal(ip6.findUpperLayer(frag, 0, frag.length, up), Decode.OK);
    assert.equal(ip6.findUpperLayer(plain, 0, plain.length, up), Decode.OK);
    assert.deepEqual(up, { protocol: NH.UDP, offset: 40, fragmentHeader: -1, fragmentNextHeaderAt: -1, fragmentOffset: 0, more: false, id: 0 });
  });

  test('ESP and No Next Header end the walk where they are', () => {
    for (const t of [NH.ESP, NH.NO_NEXT, NH.ICMPV6, NH.TCP]) {
      const b = chain(NH.DEST_OPTIONS, [{ type: NH.DEST_OPTIONS, next: t }]);
      const { r, up } = walk(b);
      assert.equal(r, Decode.OK);
      assert.deepEqual([up.protocol, up.offset], [t, 48]);
    }
  });

  test('hop-by-hop anywhere but first is MALFORMED', () => {
    const afterRouting = chain(NH.ROUTING, [
      { type: NH.ROUTING, next: NH.HOP_BY_HOP },
      { type: NH.HOP_BY_HOP, next: NH.UDP },
    ]);
    assert.equal(walk(afterRouting).r, Decode.MALFORMED);
    const twice = chain(NH.HOP_BY_HOP, [
      { type: NH.HOP_BY_HOP, next: NH.HOP_BY_HOP },
      { type: NH.HOP_BY_HOP, next: NH.UDP },
    ]);
    assert.equal(walk(twice).r, Decode.MALFORMED);
  });

  test('two fragment headers are MALFORMED', () => {
    const b = chain(NH.FRAGMENT, [
      { type: NH.FRAGMENT, next: NH.FRAGMENT },
      { type: NH.FRAGMENT, next: NH.UDP },
    ]);
    assert.equal(walk(b).r, Decode.MALFORMED);
  });

  test('more extension headers than MAX_EXTENSION_HEADERS is MALFORMED; exactly that many is fine', () => {
    const n = ip6.MAX_EXTENSION_HEADERS;
    const build = (count: number) =>
      chain(
        NH.DEST_OPTIONS,
        Array.from({ length: count }, (_, k) => ({ type: NH.DEST_OPTIONS, next: k === count - 1 ? NH.UDP : NH.DEST_OPTIONS })),
      );
    assert.equal(walk(build(n)).r, Decode.OK);
    assert.equal(walk(build(n + 2)).r, Decode.MALFORMED);
  });

  test('every truncated prefix of the extension chain is TRUNCATED', () => {
    const b = chain(NH.HOP_BY_HOP, [
      { type: NH.HOP_BY_HOP, next: NH.ROUTING, len: 16 },
      { type: NH.ROUTING, next: NH.FRAGMENT, len: 8 },
      { type: NH.FRAGMENT, next: NH.DEST_OPTIONS },
      { type: NH.DEST_OPTIONS, next: NH.UDP, len: 24 },
    ]);
    const upper = 40 + 16 + 8 + 8 + 24;
    assert.equal(walk(b).r, Decode.OK);
    for (let end = 40; end < upper; end++) {
      assert.equal(walk(b, end).r, Decode.TRUNCATED, `chain cut at ${end}`);
      assert.equal(walk(b.slice(0, end)).r, Decode.TRUNCATED, `chain cut at ${end} (exact buffer)`);
    }
    assertTruncatedPrefixes((buf, o, e) => ip6.decode(buf, o, e, ip6.create()), b, 40);
  });

  test('encodeFragmentHeader writes the RFC 8200 §4.5 layout', () => {
    const out = new Uint8Array(10).fill(0xa5);
    assert.equal(ip6.encodeFragmentHeader(out, 1, NH.UDP, 0x1abc, true, 0x01020304), ip6.FRAGMENT_HEADER_LENGTH);
    assert.deepEqual([...out], [0xa5, 17, 0, 0xd5, 0xe1, 1, 2, 3, 4, 0xa5]);
  });
});

const golden = lazyGolden({
  plain: "IPv6(src='2001:db8::1', dst='2001:db8:0:1::ff', tc=0xb8, fl=0xabcde, hlim=17, nh=17, plen=1234)",
  exts: "IPv6(src='fe80::1', dst='ff02::1:3', nh=0)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/IPv6ExtHdrRouting(addresses=['2001:db8::5'])/IPv6ExtHdrDestOpt()/IPv6ExtHdrFragment(id=0x12345678, offset=0, m=1)/UDP(sport=5353, dport=2055)/Raw(b'x'*40)",
  later: "IPv6(src='2001:db8::a', dst='2001:db8::b')/IPv6ExtHdrFragment(id=0xfedcba98, offset=1000, m=0, nh=17)/Raw(b'y'*16)",
  fragHeader: "IPv6ExtHdrFragment(nh=17, offset=0x1abc, m=1, id=0x01020304)",
});

describe('ipv6 golden bytes (scapy)', () => {
  const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex.replace(/[:\s]/g, ''), 'hex'));

  test('fixed header: decode reads scapy fields, encode writes scapy bytes', () => {
    const wire = golden().plain;
    const h: ip6.Ipv6Header = {
      trafficClass: 0xb8,
      flowLabel: 0xabcde,
      payloadLength: 1234,
      nextHeader: 17,
      hopLimit: 17,
      src: bytes('20010db8000000000000000000000001'),
      dst: bytes('20010db8 00000001 00000000 000000ff'),
    };
    assert.deepEqual(decoded(wire), h);
    assert.deepEqual(encoded(h), new Uint8Array(wire.subarray(0, 40)));
  });

  test('hop-by-hop + routing + destination options + fragment header: the walk finds UDP', () => {
    const wire = golden().exts;
    const h = decoded(wire);
    assert.equal(h.nextHeader, NH.HOP_BY_HOP);
    assert.equal(h.payloadLength, wire.length - 40);
    const up = ip6.createUpperLayer();
    assert.equal(ip6.findUpperLayer(wire, 0, wire.length, up), Decode.OK);
    assert.equal(up.protocol, NH.UDP);
    // UDP sport 5353 sits where the walk says the upper layer starts
    assert.equal((wire[up.offset] << 8) | wire[up.offset + 1], 5353);
    assert.equal(up.offset, wire.length - 48);
    assert.equal(up.fragmentHeader, up.offset - 8);
    assert.equal(wire[up.fragmentNextHeaderAt], NH.FRAGMENT);
    assert.equal(up.id, 0x12345678);
    assert.equal(up.more, true);
    assert.equal(up.fragmentOffset, 0);
    for (let end = 40; end < up.offset; end++) assert.equal(ip6.findUpperLayer(wire, 0, end, up), Decode.TRUNCATED);
  });

  test('a later fragment: offset, M flag and identification as scapy wrote them', () => {
    const wire = golden().later;
    const up = ip6.createUpperLayer();
    assert.equal(ip6.findUpperLayer(wire, 0, wire.length, up), Decode.OK);
    assert.deepEqual(
      [up.protocol, up.offset, up.fragmentHeader, up.fragmentOffset, up.more, up.id],
      [NH.UDP, 48, 40, 1000, false, 0xfedcba98],
    );
  });

  test('encodeFragmentHeader writes the bytes scapy writes', () => {
    const out = new Uint8Array(8);
    ip6.encodeFragmentHeader(out, 0, NH.UDP, 0x1abc, true, 0x01020304);
    assert.deepEqual(out, new Uint8Array(golden().fragHeader));
  });
});
