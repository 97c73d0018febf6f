import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as geneve from '../../src/proto/geneve/packet.js';
import { Decode } from '../../src/proto/result.js';
import { assertEncodesInPlace, assertTruncatedPrefixes, isVerdict } from './codec.js';
import { lazyGolden } from './scapy.js';

/** The 6-bit Opt Len field counts 4-byte words: at most 252 option bytes. */
const MAX_OPTIONS = 0x3f * 4;

const header = fc.record({
  version: fc.constant(0),
  flags: fc.constantFrom(0, geneve.FLAG_OAM, geneve.FLAG_CRITICAL, geneve.FLAG_OAM | geneve.FLAG_CRITICAL),
  protocolType: fc.integer({ min: 0, max: 0xffff }),
  vni: fc.integer({ min: 0, max: 0xffffff }),
  options: fc.option(fc.uint8Array({ maxLength: MAX_OPTIONS }), { nil: null }),
}).map((r): geneve.GeneveHeader => ({ ...r, optionsLength: r.options ? (r.options.length + 3) & ~3 : 0 }));

function encoded(h: geneve.GeneveHeader): Uint8Array {
  const buf = new Uint8Array(geneve.encodingLength(h));
  assert.equal(geneve.encode(h, buf, 0), buf.length);
  return buf;
}

const fields = (h: geneve.GeneveHeader) => ({
  version: h.version,
  optionsLength: h.optionsLength,
  flags: h.flags,
  protocolType: h.protocolType,
  vni: h.vni,
});

describe('geneve codec', () => {
  test('encode → decode → encode round trip; length equals encodingLength', () => {
    fc.assert(
      fc.property(header, (h) => {
        const bytes = encoded(h);
        assert.equal(bytes.length, geneve.encodingLength(h));
        assert.equal(bytes.length, geneve.BASE_LENGTH + h.optionsLength);
        const out = geneve.create();
        assert.equal(geneve.decode(bytes, 0, bytes.length, out), Decode.OK);
        assert.deepEqual(fields(out), fields(h));
        assert.equal(geneve.headerLength(out), bytes.length);
        if (h.options) assert.deepEqual(bytes.subarray(8, 8 + h.options.length), h.options);
        out.options = bytes.subarray(geneve.BASE_LENGTH, geneve.headerLength(out));
        assert.deepEqual(encoded(out), bytes);
      }),
      { numRuns: 500 },
    );
  });

  test('encoding at an offset leaves the surrounding bytes untouched', () => {
    fc.assert(
      fc.property(header, fc.nat(40), fc.nat(40), (h, before, after) => {
        assertEncodesInPlace((buf, off) => geneve.encode(h, buf, off), encoded(h), before, after);
      }),
    );
    assert.throws(() => geneve.encode({ ...geneve.create(), options: new Uint8Array(4) }, new Uint8Array(11), 0), RangeError);
  });

  test('encode refuses more options than the 6-bit Opt Len can say', () => {
    // 256 option bytes would be Opt Len 64: written unchecked it spills into the version bits.
    const h = { ...geneve.create(), options: new Uint8Array(MAX_OPTIONS + 4) };
    assert.throws(() => geneve.encode(h, new Uint8Array(400), 0), RangeError);
    const max = { ...geneve.create(), options: new Uint8Array(MAX_OPTIONS) };
    assert.equal(geneve.encode(max, new Uint8Array(400), 0), 8 + MAX_OPTIONS);
  });

  test('every truncated prefix (options included) is TRUNCATED', () => {
    fc.assert(
      fc.property(header, (h) => {
        const bytes = encoded(h);
        assertTruncatedPrefixes((b, o, e) => geneve.decode(b, o, e, geneve.create()), bytes, bytes.length);
      }),
      { numRuns: 100 },
    );
  });

  test('a version other than 0 is MALFORMED, even when the options are cut short', () => {
    for (const v of [1, 2, 3]) {
      const b = encoded({ ...geneve.create(), vni: 5, options: new Uint8Array(8), optionsLength: 8 });
      b[0] = (v << 6) | (b[0] & 0x3f);
      assert.equal(geneve.decode(b, 0, b.length, geneve.create()), Decode.MALFORMED, `version ${v}`);
      assert.equal(geneve.decode(b, 0, 8, geneve.create()), Decode.MALFORMED, `version ${v}, options cut`);
    }
  });

  test('random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(20), (bytes, off) => {
        assert.ok(isVerdict(geneve.decode(bytes, Math.min(off, bytes.length), bytes.length, geneve.create())));
      }),
      { numRuns: 1000 },
    );
  });
});

const golden = lazyGolden({
  options:
    "GENEVE(vni=0x123456, proto=0x6558, options=[GeneveOptions(classid=0x0102, type=0x80, data=b'abcd'), GeneveOptions(classid=0xffff, type=0x01, data=b'\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07')])",
  oam: 'GENEVE(vni=7, proto=0x0800, oam=1, critical=1)',
  inFrame:
    "Ether()/IP(src='10.0.0.1', dst='10.0.0.2')/UDP(sport=50000, dport=6081)/GENEVE(vni=99, proto=0x6558, options=[GeneveOptions(classid=0x0108, type=0x01, data=b'\\x11\\x22\\x33\\x44')])/Ether()/IP()/UDP()",
});

describe('geneve golden bytes (scapy)', () => {
  test('options: decode reads scapy fields, encode writes scapy bytes', () => {
    const wire = golden().options;
    const out = geneve.create();
    assert.equal(geneve.decode(wire, 0, wire.length, out), Decode.OK);
    assert.deepEqual(fields(out), { version: 0, optionsLength: 8 + 12, flags: 0, protocolType: 0x6558, vni: 0x123456 });
    assert.equal(geneve.headerLength(out), wire.length);
    const h = { ...out, options: wire.subarray(8) };
    assert.deepEqual(encoded(h), new Uint8Array(wire));
  });

  test('O and C flags', () => {
    const wire = golden().oam;
    const out = geneve.create();
    assert.equal(geneve.decode(wire, 0, wire.length, out), Decode.OK);
    assert.deepEqual(fields(out), { version: 0, optionsLength: 0, flags: geneve.FLAG_OAM | geneve.FLAG_CRITICAL, protocolType: 0x0800, vni: 7 });
    assert.deepEqual(encoded({ ...out, options: null }), new Uint8Array(wire));
  });

  test('in a frame: the inner Ethernet starts after the options', () => {
    const wire = golden().inFrame;
    const at = 14 + 20 + 8;
    assert.equal((wire[at - 6] << 8) | wire[at - 5], geneve.UDP_PORT);
    const out = geneve.create();
    assert.equal(geneve.decode(wire, at, wire.length, out), Decode.OK);
    assert.equal(out.vni, 99);
    assert.equal(geneve.headerLength(out), 16);
    // inner Ethernet type IPv4 at the end of the inner MACs
    const inner = at + geneve.headerLength(out);
    assert.equal((wire[inner + 12] << 8) | wire[inner + 13], 0x0800);
  });
});
