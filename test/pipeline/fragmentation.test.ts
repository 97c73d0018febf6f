/**
 * Egress fragmentation: a datagram larger than the destination MTU leaves as fragments that each
 * fit, share one non-zero ID, and reassemble (by an independent reassembler) into exactly the
 * datagram DNAT made, with valid checksums.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildMirrorFrame, mirrorFrameLength, type MirrorFrameSpec } from '../../src/gen/mirror.js';
import * as udp from '../../src/proto/udp/packet.js';
import {
  assertBalanced,
  be16,
  be32,
  dnatExpected4,
  fragment4,
  ip4,
  makePipeline,
  mirror,
  pseudoHeader4,
  pseudoHeader6,
  reassemble4,
  sumsToOnes,
  udp4,
  udp6,
  udpVerifies,
} from './helpers.js';

const BACKEND = '203.0.113.10';
const BACKEND_PORT = 2055;

function config(mtu: number, df: 'clear' | 'keep' = 'clear') {
  return { rules: [{ name: 'all', destination: 'd' }], destinations: { d: { backends: [`${BACKEND}:${BACKEND_PORT}`], mtu, df } } };
}

function frame(payload: Uint8Array, ipId: number, df: boolean): Buffer {
  const spec: MirrorFrameSpec = {
    outerSrc: '198.18.0.1',
    outerDst: '10.0.0.100',
    outerSrcPort: 40000,
    vni: 123,
    innerSrcMac: 0x0a0000000001,
    innerDstMac: 0x0a0000000002,
    innerSrc: '198.18.0.5',
    innerDst: '10.1.2.3',
    innerSrcPort: 9999,
    innerDstPort: 9995,
    payload,
    df,
    ipId,
  };
  const out = Buffer.alloc(mirrorFrameLength(spec));
  buildMirrorFrame(spec, out);
  return out;
}

/** The inner IPv4 datagram of a frame built by buildMirrorFrame (no VLAN). */
const inner = (f: Buffer) => f.subarray(14 + 20 + 8 + 8 + 14);

describe('IPv4 fragmentation to the destination MTU', () => {
  test('fragments fit the MTU, share a non-zero ID and reassemble into the DNATed datagram', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 8000 }),
        fc.integer({ min: 576, max: 1500 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 255 }),
        (size, mtu, ipId, fill) => {
          const t = makePipeline(config(mtu));
          const payload = Uint8Array.from({ length: size }, (_, k) => (k * 31 + fill) & 0xff);
          const f = frame(payload, ipId, true);
          const original = inner(f);
          const sent = t.feed([f]);
          const needed = original.length > mtu;
          assert.equal(sent.length, needed ? Math.ceil((original.length - 20) / ((mtu - 20) & ~7)) : 1);
          for (const p of sent) assert.ok(p.length <= mtu, `a ${p.length}-byte packet for MTU ${mtu}`);
          const id = be16(sent[0], 4);
          if (needed) assert.notEqual(id, 0, 'fragments carry a non-zero ID');
          if (ipId !== 0) assert.equal(id, ipId, 'an existing ID is kept');
          const whole = reassemble4(sent); // checks same ID, offsets, MF, header checksums
          const expected = dnatExpected4(original, ip4(BACKEND), BACKEND_PORT, { id, clearDf: true });
          assert.deepEqual(whole, expected);
          // checksums by the product's verifier and the independent one
          assert.ok(sumsToOnes(whole, 0, 20));
          assert.ok(udp.verify4(whole, 20, whole.length - 20, be32(whole, 12), be32(whole, 16)));
          assert.ok(udpVerifies(pseudoHeader4(be32(whole, 12), be32(whole, 16), whole.length - 20), whole.subarray(20)));
          const a = t.accounting();
          assertBalanced(a);
          assert.equal(a.forwarded, 1);
          assert.equal(a.tx, sent.length);
          assert.equal(t.counter('mtu.fragmented'), needed ? 1 : 0);
          assert.equal(t.counter('mtu.fragments'), needed ? sent.length : 0);
          assert.equal(t.counter('mtu.df_cleared'), 1);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('DF kept: a packet over the MTU is dropped as df_too_big, one within it passes with DF', () => {
    const t = makePipeline(config(576, 'keep'));
    assert.deepEqual(t.feed([frame(new Uint8Array(1000), 5, true)]), []);
    assert.equal(t.accounting().drops.df_too_big, 1);
    const [p] = t.feed([frame(new Uint8Array(500), 5, true)]);
    assert.equal(be16(p, 6), 0x4000);
    const [q] = t.feed([frame(new Uint8Array(1000), 6, false)]).slice(0, 1);
    assert.equal(be16(q, 6), 0x2000, 'no DF: fragmented');
    assertBalanced(t.accounting());
  });

  test('with IP options: later fragments carry only the copied options (RFC 791) and it all reassembles', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1500, max: 6000 }), fc.integer({ min: 576, max: 1500 }), (size, mtu) => {
        const t = makePipeline(config(mtu));
        const plain = udp4({ src: ip4('198.18.0.5'), dst: ip4('10.1.2.3'), srcPort: 1, dstPort: 2, payload: Uint8Array.from({ length: size }, (_, k) => k & 0xff), id: 77 });
        // Router Alert (copied), Record Route (not copied, 7 bytes), End of List
        const options = [0x94, 0x04, 0x00, 0x00, 0x07, 0x07, 0x04, 0, 0, 0, 0, 0x00];
        const dg = new Uint8Array(plain.length + options.length);
        dg.set(plain.subarray(0, 20), 0);
        dg.set(options, 20);
        dg.set(plain.subarray(20), 32);
        dg[0] = 0x48;
        dg[2] = dg.length >>> 8;
        dg[3] = dg.length & 0xff;
        const sealed = dnatExpected4(dg, ip4('10.1.2.3'), 0); // only reseals the header checksum
        const sent = t.feed([mirror(sealed)]);
        assert.ok(sent.length > 1);
        assert.deepEqual([...sent[0].subarray(20, 32)], options, 'the first fragment keeps every option');
        for (const p of sent.slice(1)) {
          assert.equal(p[0] & 0x0f, 6, 'later fragments: 24-byte header');
          assert.deepEqual([...p.subarray(20, 24)], [0x94, 0x04, 0x00, 0x00]);
          assert.ok(p.length <= mtu);
        }
        assert.deepEqual(reassemble4(sent), dnatExpected4(sealed, ip4(BACKEND), BACKEND_PORT));
      }),
      { numRuns: 100 },
    );
  });

  test('inner fragments larger than the MTU: reassembled first, then cut to the MTU', () => {
    const t = makePipeline(config(576));
    const dg = udp4({ src: ip4('198.18.0.5'), dst: ip4('10.1.2.3'), srcPort: 1, dstPort: 2, payload: Uint8Array.from({ length: 3000 }, (_, k) => k & 0xff), id: 4321 });
    const sent = t.feed(fragment4(dg, 1600).map((f) => mirror(f)));
    assert.ok(sent.every((p) => p.length <= 576));
    assert.deepEqual(reassemble4(sent), dnatExpected4(dg, ip4(BACKEND), BACKEND_PORT));
    assertBalanced(t.accounting());
  });

  test('a reassembled datagram larger than a vector slot, to the largest MTU, is cut into whole fragments', () => {
    // Reassembled datagrams live outside the vector's 9344-byte slots; later fragments are
    // written into slots, so the largest MTU a destination accepts (9216) must fit one.
    const t = makePipeline(config(9216));
    const dg = udp4({ src: ip4('198.18.0.5'), dst: ip4('10.1.2.3'), srcPort: 1, dstPort: 2, payload: Uint8Array.from({ length: 30000 }, (_, k) => (k * 7) & 0xff), id: 99 });
    const sent = t.feed(fragment4(dg, 8000).map((f) => mirror(f)));
    for (const p of sent) assert.equal(be16(p, 2), p.length, 'IP Total Length matches the bytes sent');
    assert.deepEqual(reassemble4(sent), dnatExpected4(dg, ip4(BACKEND), BACKEND_PORT));
  });
});

describe('IPv6 fragmentation to the destination MTU', () => {
  const SRC = Uint8Array.from(Buffer.from('20010db8000000000000000000000005', 'hex'));
  const DST = Uint8Array.from(Buffer.from('20010db8000000010000000000000001', 'hex'));
  const BACKEND6 = Uint8Array.from(Buffer.from('20010db8000000ff0000000000000010', 'hex'));

  /** Independent IPv6 reassembly: fixed header + fragment header only (what the node writes). */
  function reassemble6(fragments: Buffer[]): Uint8Array {
    const parts = fragments.map((f) => {
      assert.equal(f[6], 44, 'next header: fragment');
      const word = be16(f, 42);
      return { offset: (word >>> 3) * 8, more: (word & 1) === 1, id: be32(f, 44), next: f[40], data: f.subarray(48), f };
    });
    parts.sort((a, b) => a.offset - b.offset);
    let at = 0;
    parts.forEach((p, k) => {
      assert.equal(p.offset, at);
      assert.equal(p.more, k < parts.length - 1);
      assert.equal(p.id, parts[0].id);
      assert.equal(be16(p.f, 4), p.f.length - 40, 'payload length');
      at += p.data.length;
    });
    const out = new Uint8Array(40 + at);
    out.set(parts[0].f.subarray(0, 40), 0);
    out[6] = parts[0].next;
    out[4] = at >>> 8;
    out[5] = at & 0xff;
    let p = 40;
    for (const part of parts) {
      out.set(part.data, p);
      p += part.data.length;
    }
    return out;
  }

  test('fragments fit the MTU and reassemble into the DNATed datagram', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 8000 }), fc.integer({ min: 1280, max: 1500 }), (size, mtu) => {
        const t = makePipeline({ rules: [{ name: 'all', destination: 'd' }], destinations: { d: { backends: ['[2001:db8:0:ff::10]:4739'], mtu } } });
        const dg = udp6({ src: SRC, dst: DST, srcPort: 7777, dstPort: 2055, payload: Uint8Array.from({ length: size }, (_, k) => k & 0xff) });
        const sent = t.feed([mirror(dg)]);
        for (const p of sent) assert.ok(p.length <= mtu);
        const whole = Uint8Array.from(dg.length > mtu ? reassemble6(sent) : sent[0]);
        assert.deepEqual(whole.subarray(8, 24), SRC);
        assert.deepEqual(whole.subarray(24, 40), BACKEND6);
        assert.equal(be16(whole, 40), 7777);
        assert.equal(be16(whole, 42), 4739);
        assert.deepEqual(whole.subarray(48), dg.subarray(48), 'payload unchanged');
        assert.ok(udpVerifies(pseudoHeader6(SRC, BACKEND6, whole.length - 40), whole.subarray(40)));
        assert.ok(udp.verify6(whole, 0, 40, whole.length - 40));
        assertBalanced(t.accounting());
      }),
      { numRuns: 150 },
    );
  });
});
