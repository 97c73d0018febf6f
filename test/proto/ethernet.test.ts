import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as eth from '../../src/proto/ethernet/packet.js';
import { Decode } from '../../src/proto/result.js';
import { assertEncodesInPlace, assertTruncatedPrefixes, isVerdict } from './codec.js';
import { lazyGolden } from './scapy.js';

const mac = fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }).map(Number);
const notTag = fc.integer({ min: 0, max: 0xffff }).filter((t) => t !== eth.EtherType.VLAN && t !== eth.EtherType.QINQ);

const header = fc
  .record({
    dst: mac,
    src: mac,
    tagCount: fc.integer({ min: 0, max: eth.MAX_TAGS }),
    tpid: fc.tuple(fc.constantFrom(eth.EtherType.VLAN, eth.EtherType.QINQ), fc.constantFrom(eth.EtherType.VLAN, eth.EtherType.QINQ)),
    tci: fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff })),
    etherType: notTag,
  })
  .map((r): eth.EthernetHeader => ({ ...r, tpid: [...r.tpid], tci: [...r.tci] }));

function encoded(h: eth.EthernetHeader): Uint8Array {
  const buf = new Uint8Array(eth.encodingLength(h));
  eth.encode(h, buf, 0);
  return buf;
}

/** The meaningful fields only (tags beyond tagCount are leftovers of the reusable object). */
function fields(h: eth.EthernetHeader) {
  return {
    dst: h.dst,
    src: h.src,
    tags: h.tpid.slice(0, h.tagCount).map((tpid, k) => [tpid, h.tci[k]]),
    etherType: h.etherType,
  };
}

describe('ethernet codec', () => {
  test('encode → decode → encode round trip; length equals encodingLength', () => {
    fc.assert(
      fc.property(header, (h) => {
        const bytes = encoded(h);
        assert.equal(bytes.length, eth.encodingLength(h));
        assert.equal(bytes.length, eth.HEADER_LENGTH + h.tagCount * eth.TAG_LENGTH);
        const out = eth.create();
        assert.equal(eth.decode(bytes, 0, bytes.length, out), Decode.OK);
        assert.deepEqual(fields(out), fields(h));
        assert.equal(eth.headerLength(out), bytes.length);
        assert.deepEqual(encoded(out), bytes);
      }),
      { numRuns: 500 },
    );
  });

  test('decode reuses its output object without leaking the previous tags', () => {
    const out = eth.create();
    const tagged = encoded({ dst: 1, src: 2, tagCount: 2, tpid: [0x88a8, 0x8100], tci: [5, 7], etherType: 0x0800 });
    const plain = encoded({ dst: 1, src: 2, tagCount: 0, tpid: [0, 0], tci: [0, 0], etherType: 0x86dd });
    assert.equal(eth.decode(tagged, 0, tagged.length, out), Decode.OK);
    assert.equal(eth.decode(plain, 0, plain.length, out), Decode.OK);
    assert.equal(out.tagCount, 0);
    assert.equal(out.etherType, 0x86dd);
  });

  test('encoding at an offset leaves the surrounding bytes untouched', () => {
    fc.assert(
      fc.property(header, fc.nat(40), fc.nat(40), (h, before, after) => {
        assertEncodesInPlace((buf, off) => eth.encode(h, buf, off), encoded(h), before, after);
      }),
    );
  });

  test('decode at an offset reads the same header', () => {
    fc.assert(
      fc.property(header, fc.nat(40), fc.uint8Array({ maxLength: 30 }), (h, before, payload) => {
        const bytes = encoded(h);
        const buf = new Uint8Array(before + bytes.length + payload.length).fill(0xff);
        buf.set(bytes, before);
        buf.set(payload, before + bytes.length);
        const out = eth.create();
        assert.equal(eth.decode(buf, before, buf.length, out), Decode.OK);
        assert.deepEqual(fields(out), fields(h));
      }),
    );
  });

  test('encode refuses a buffer too small, with a RangeError', () => {
    const h = { dst: 1, src: 2, tagCount: 1, tpid: [0x8100, 0], tci: [3, 0], etherType: 0x0800 };
    assert.throws(() => eth.encode(h, new Uint8Array(17), 0), RangeError);
    assert.throws(() => eth.encode(h, new Uint8Array(30), 13), RangeError);
  });

  test('every truncated prefix is TRUNCATED (untagged, one tag, QinQ)', () => {
    fc.assert(
      fc.property(header, (h) => {
        const bytes = encoded(h);
        assertTruncatedPrefixes((b, o, e) => eth.decode(b, o, e, eth.create()), bytes, bytes.length);
      }),
      { numRuns: 200 },
    );
  });

  test('a third VLAN tag is MALFORMED', () => {
    for (const third of [eth.EtherType.VLAN, eth.EtherType.QINQ]) {
      const bytes = new Uint8Array(30);
      bytes.set([0x88, 0xa8, 0x00, 0x05, 0x81, 0x00, 0x00, 0x07, third >>> 8, third & 0xff, 0x00, 0x09, 0x08, 0x00], 12);
      assert.equal(eth.decode(bytes, 0, bytes.length, eth.create()), Decode.MALFORMED);
    }
  });

  test('random bytes never throw and give a verdict', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(40), (bytes, off) => {
        const r = eth.decode(bytes, Math.min(off, bytes.length), bytes.length, eth.create());
        assert.ok(isVerdict(r));
      }),
      { numRuns: 2000 },
    );
  });

  test('parseMac / formatMac round trip', () => {
    fc.assert(
      fc.property(mac, (m) => {
        const text = eth.formatMac(m);
        assert.match(text, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
        assert.equal(eth.parseMac(text), m);
        assert.equal(eth.parseMac(text.toUpperCase()), m);
      }),
    );
    assert.throws(() => eth.parseMac('00:11:22:33:44'), RangeError);
    assert.throws(() => eth.parseMac('00:11:22:33:44:5g'), RangeError);
    assert.equal(eth.vlanId(0xe005), 5);
  });
});

const golden = lazyGolden({
  qinq: "Ether(dst='02:00:00:00:00:01', src='06:5e:00:aa:bb:cc')/Dot1AD(vlan=5, prio=3)/Dot1Q(vlan=7, prio=1, id=1)/IP(src='10.0.0.1', dst='10.0.0.2')",
  dot1q: "Ether(dst='ff:ff:ff:ff:ff:ff', src='00:00:5e:00:53:01')/Dot1Q(vlan=4094)/IPv6()",
  plain: "Ether(dst='0a:0b:0c:0d:0e:0f', src='fe:dc:ba:98:76:54', type=0x0806)",
});

describe('ethernet golden bytes (scapy)', () => {
  const cases: { name: 'qinq' | 'dot1q' | 'plain'; header: eth.EthernetHeader }[] = [
    {
      name: 'qinq',
      header: { dst: 0x020000000001, src: 0x065e00aabbcc, tagCount: 2, tpid: [0x88a8, 0x8100], tci: [(3 << 13) | 5, (1 << 13) | (1 << 12) | 7], etherType: 0x0800 },
    },
    { name: 'dot1q', header: { dst: 0xffffffffffff, src: 0x00005e005301, tagCount: 1, tpid: [0x8100, 0], tci: [4094, 0], etherType: 0x86dd } },
    { name: 'plain', header: { dst: 0x0a0b0c0d0e0f, src: 0xfedcba987654, tagCount: 0, tpid: [0, 0], tci: [0, 0], etherType: 0x0806 } },
  ];
  for (const c of cases) {
    test(`${c.name}: decode reads scapy's fields, encode writes scapy's bytes`, () => {
      const wire = golden()[c.name];
      const out = eth.create();
      assert.equal(eth.decode(wire, 0, wire.length, out), Decode.OK);
      assert.deepEqual(fields(out), fields(c.header));
      const len = eth.encodingLength(c.header);
      assert.deepEqual(encoded(c.header), new Uint8Array(wire.subarray(0, len)));
    });
  }
});

describe('MAC addresses in text form', () => {
  test('as sysfs and iproute2 print them, and nothing else', () => {
    assert.deepEqual(eth.macFromText('02:00:5e:0a:FF:1\n'), Uint8Array.from([2, 0, 0x5e, 0x0a, 0xff, 1]));
    for (const bad of ['', '02:00:5e:0a:ff', '02:00:5e:0a:ff:01:02', '02:00:5e:0a:ff:zz', '0200.5e0a.ff01', '02:00:5e:0a:ff:100']) {
      assert.equal(eth.macFromText(bad), null, bad);
    }
  });
});
