import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as ip4 from '../../src/proto/ipv4/packet.js';
import { Decode } from '../../src/proto/result.js';
import { assertEncodesInPlace, assertTruncatedPrefixes, isVerdict } from './codec.js';
import { be16, naiveChecksum, sumsToOnes } from './naive.js';
import { lazyGolden } from './scapy.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });

/** Headers with 0-40 option bytes (padded to 4 by encode) and a consistent Total Length. */
const header = fc
  .record({
    tos: fc.integer({ min: 0, max: 255 }),
    extraLength: fc.integer({ min: 0, max: 65535 }),
    id: fc.integer({ min: 0, max: 0xffff }),
    flags: fc.constantFrom(0, ip4.FLAG_DF, ip4.FLAG_MF, ip4.FLAG_DF | ip4.FLAG_MF),
    fragmentOffset: fc.integer({ min: 0, max: ip4.OFFSET_MASK }),
    ttl: fc.integer({ min: 0, max: 255 }),
    protocol: fc.integer({ min: 0, max: 255 }),
    src: u32,
    dst: u32,
    options: fc.option(fc.uint8Array({ minLength: 0, maxLength: 40 }), { nil: null }),
  })
  .map(({ extraLength, ...r }): ip4.Ipv4Header => {
    const headerLength = ip4.MIN_HEADER_LENGTH + (((r.options?.length ?? 0) + 3) & ~3);
    return { ...r, headerLength, totalLength: Math.min(65535, headerLength + extraLength), checksum: 0 };
  });

function encoded(h: ip4.Ipv4Header): Uint8Array {
  const buf = new Uint8Array(ip4.encodingLength(h));
  assert.equal(ip4.encode(h, buf, 0), buf.length);
  return buf;
}

const FIELDS = ['headerLength', 'tos', 'totalLength', 'id', 'flags', 'fragmentOffset', 'ttl', 'protocol', 'src', 'dst'] as const;
function fields(h: ip4.Ipv4Header): Record<string, number> {
  return Object.fromEntries(FIELDS.map((k) => [k, h[k]]));
}

function decoded(bytes: Uint8Array, off = 0): ip4.Ipv4Header {
  const out = ip4.create();
  assert.equal(ip4.decode(bytes, off, bytes.length, out), Decode.OK);
  return out;
}

describe('ipv4 codec', () => {
  test('encode → decode → encode round trip; length equals encodingLength; checksum verifies', () => {
    fc.assert(
      fc.property(header, (h) => {
        const bytes = encoded(h);
        assert.equal(bytes.length, ip4.encodingLength(h));
        assert.equal(bytes.length, h.headerLength);
        const out = decoded(bytes);
        assert.deepEqual(fields(out), fields(h));
        assert.equal(out.checksum, be16(bytes, 10));
        assert.ok(ip4.checksumValid(bytes, 0, out.headerLength));
        assert.ok(sumsToOnes(bytes), 'independent checksum check');
        const zeroed = bytes.slice();
        zeroed[10] = zeroed[11] = 0;
        assert.equal(out.checksum, naiveChecksum(zeroed));
        // Options are carried opaquely: re-encoding takes them from the packet.
        out.options = bytes.subarray(ip4.MIN_HEADER_LENGTH, out.headerLength);
        assert.deepEqual(encoded(out), bytes);
        assert.equal(ip4.isFragment(out), (h.flags & ip4.FLAG_MF) !== 0 || h.fragmentOffset !== 0);
      }),
      { numRuns: 500 },
    );
  });

  test('options are padded with zeros to a 4-byte boundary', () => {
    const h = { ...ip4.create(), totalLength: 28, options: Uint8Array.of(0x94, 0x04, 0x00, 0x00, 0x01) };
    const bytes = encoded(h);
    assert.equal(bytes.length, 28);
    assert.equal(bytes[0], 0x47);
    assert.deepEqual([...bytes.subarray(20)], [0x94, 0x04, 0x00, 0x00, 0x01, 0, 0, 0]);
  });

  test('encoding at an offset leaves the surrounding bytes untouched', () => {
    fc.assert(
      fc.property(header, fc.nat(40), fc.nat(40), (h, before, after) => {
        assertEncodesInPlace((buf, off) => ip4.encode(h, buf, off), encoded(h), before, after);
        const buf = new Uint8Array(before + h.headerLength + after);
        ip4.encode(h, buf, before);
        assert.deepEqual(fields(decoded(buf, before)), fields(h));
        assert.ok(ip4.checksumValid(buf, before, h.headerLength));
      }),
    );
  });

  test('encode refuses a buffer too small, with a RangeError', () => {
    assert.throws(() => ip4.encode(ip4.create(), new Uint8Array(19), 0), RangeError);
    assert.throws(() => ip4.encode({ ...ip4.create(), options: new Uint8Array(4) }, new Uint8Array(30), 7), RangeError);
  });

  test('encode refuses options that do not fit the 4-bit IHL (more than 40 bytes)', () => {
    // 44 option bytes would need IHL 16: written unchecked it spills into the version nibble.
    const h = { ...ip4.create(), totalLength: 64, options: new Uint8Array(41) };
    assert.throws(() => ip4.encode(h, new Uint8Array(100), 0), RangeError);
  });

  test('every truncated prefix of the header (options included) is TRUNCATED', () => {
    fc.assert(
      fc.property(header, (h) => {
        assertTruncatedPrefixes((b, o, e) => ip4.decode(b, o, e, ip4.create()), encoded(h), h.headerLength);
      }),
      { numRuns: 200 },
    );
  });

  describe('malformed fields are MALFORMED', () => {
    const valid = () => encoded({ ...ip4.create(), totalLength: 40, protocol: 17, src: 0x0a000001, dst: 0x0a000002 });
    const verdict = (b: Uint8Array) => ip4.decode(b, 0, b.length, ip4.create());

    test('version other than 4', () => {
      for (const v of [0, 1, 5, 6, 15]) {
        const b = valid();
        b[0] = (v << 4) | 5;
        assert.equal(verdict(b), Decode.MALFORMED, `version ${v}`);
      }
    });

    test('IHL below 5', () => {
      for (const ihl of [0, 1, 4]) {
        const b = valid();
        b[0] = 0x40 | ihl;
        assert.equal(verdict(b), Decode.MALFORMED, `IHL ${ihl}`);
      }
    });

    test('Total Length shorter than the header', () => {
      const b = valid();
      b[2] = 0;
      b[3] = 19;
      assert.equal(verdict(b), Decode.MALFORMED);
      const withOptions = encoded({ ...ip4.create(), totalLength: 24, options: new Uint8Array(4) });
      withOptions[3] = 23;
      assert.equal(verdict(withOptions), Decode.MALFORMED);
    });

    test('reserved flag bit set', () => {
      const b = valid();
      b[6] |= 0x80;
      assert.equal(verdict(b), Decode.MALFORMED);
    });

    test('a malformed field is reported even when the options are cut short', () => {
      const b = valid();
      b[0] = 0x35;
      assert.equal(ip4.decode(b, 0, 20, ip4.create()), Decode.MALFORMED);
    });
  });

  test('random bytes never throw and give a verdict', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(80), (bytes, off) => {
        assert.ok(isVerdict(ip4.decode(bytes, Math.min(off, bytes.length), bytes.length, ip4.create())));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 80 }), (bytes) => {
        bytes[0] = 0x40 | (bytes[0] & 0x0f); // version 4, so the later checks run
        assert.ok(isVerdict(ip4.decode(bytes, 0, bytes.length, ip4.create())));
      }),
      { numRuns: 2000 },
    );
  });

  test('copyFragmentOptions keeps only options with the copied flag, padded to 4 bytes', () => {
    // LSRR (0x83, copied) len 7, NOP, RR (0x07, not copied) len 7, Router Alert (0x94, copied) len 4, EOL
    const opts = Uint8Array.of(0x83, 7, 4, 1, 2, 3, 4, 0x01, 0x07, 7, 4, 0, 0, 0, 0, 0x94, 4, 0, 0, 0x00);
    const out = new Uint8Array(40).fill(0xee);
    const n = ip4.copyFragmentOptions(opts, 0, opts.length, out, 0);
    assert.equal(n, 12);
    assert.deepEqual([...out.subarray(0, 12)], [0x83, 7, 4, 1, 2, 3, 4, 0x94, 4, 0, 0, 0]);
    assert.equal(out[12], 0xee);
    // A malformed tail (length running past the end) copies nothing more, and never throws.
    const bad = Uint8Array.of(0x94, 4, 0, 0, 0x83, 40, 1);
    assert.equal(ip4.copyFragmentOptions(bad, 0, bad.length, out, 0), 4);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (o) => {
        const n2 = ip4.copyFragmentOptions(o, 0, o.length, new Uint8Array(80), 0);
        assert.ok(n2 % 4 === 0 && n2 <= ((o.length + 3) & ~3));
      }),
    );
  });
});

const golden = lazyGolden({
  plain: "IP(src='192.0.2.1', dst='198.51.100.7', id=0xbeef, ttl=33, tos=0xb8, flags='DF', proto=17, len=1500)",
  fragment: "IP(src='10.1.2.3', dst='10.3.2.1', id=4242, flags='MF', frag=185, proto=17, len=1028)",
  options: "IP(src='172.16.0.1', dst='172.16.0.2', id=1, ttl=1, proto=2, len=32, options=[IPOption_Router_Alert(), IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_NOP()])",
});

describe('ipv4 golden bytes (scapy)', () => {
  const cases: { name: 'plain' | 'fragment' | 'options'; header: Omit<ip4.Ipv4Header, 'headerLength' | 'checksum' | 'options'>; hl: number }[] = [
    { name: 'plain', hl: 20, header: { tos: 0xb8, totalLength: 1500, id: 0xbeef, flags: ip4.FLAG_DF, fragmentOffset: 0, ttl: 33, protocol: 17, src: 0xc0000201, dst: 0xc6336407 } },
    { name: 'fragment', hl: 20, header: { tos: 0, totalLength: 1028, id: 4242, flags: ip4.FLAG_MF, fragmentOffset: 185, ttl: 64, protocol: 17, src: 0x0a010203, dst: 0x0a030201 } },
    { name: 'options', hl: 28, header: { tos: 0, totalLength: 32, id: 1, flags: 0, fragmentOffset: 0, ttl: 1, protocol: 2, src: 0xac100001, dst: 0xac100002 } },
  ];
  for (const c of cases) {
    test(`${c.name}: decode reads scapy's fields, encode writes scapy's bytes`, () => {
      const wire = golden()[c.name];
      const out = decoded(wire);
      assert.deepEqual(fields(out), { headerLength: c.hl, ...c.header });
      assert.equal(out.checksum, be16(wire, 10));
      assert.ok(ip4.checksumValid(wire, 0, c.hl));
      const h: ip4.Ipv4Header = { ...c.header, headerLength: c.hl, checksum: 0, options: c.hl > 20 ? wire.subarray(20, c.hl) : null };
      assert.deepEqual(encoded(h), new Uint8Array(wire.subarray(0, c.hl)));
    });
  }
});
