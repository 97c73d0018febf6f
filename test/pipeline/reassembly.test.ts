/**
 * Inner IPv4 and IPv6 fragments (made here, sent in any order and across batches) come out of the
 * ip4-/ip6-reassembly nodes as the original datagram; the accounting counts the fragments merged
 * into it, and fragments of an incomplete datagram expire after timeoutMs. (The golden cases
 * check the same against scapy's own fragmentation.)
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { assertBalanced, fragment4, fragment6, ip4, makePipeline, mirror, naiveChecksum, udp4, udp6 } from './helpers.js';
import { ipv6ToBytes } from '../../src/core/prefix-set.js';

/** Recomputes the IPv4 header checksum of a 20-byte header after the test edits it. */
function reseal(b: Uint8Array): Uint8Array {
  b[10] = b[11] = 0;
  const c = naiveChecksum(b, 0, 20);
  b[10] = c >>> 8;
  b[11] = c & 0xff;
  return b;
}

const DST = '10.1.2.3';
const TIMEOUT = 500;

/** The backend is the datagram's own destination and names no port: DNAT changes nothing. */
function config(maxDatagrams = 16) {
  return {
    reassembly: { maxDatagrams, timeoutMs: TIMEOUT },
    rules: [{ name: 'all', destination: 'd' }],
    destinations: { d: { backends: [DST], mtu: 9000 } },
  };
}

const datagram = fc
  .record({
    size: fc.integer({ min: 0, max: 8000 }),
    fill: fc.integer({ min: 0, max: 255 }),
    id: fc.integer({ min: 0, max: 0xffff }),
    src: fc.integer({ min: 1, max: 0xffffffff }),
    srcPort: fc.integer({ min: 1, max: 65535 }),
    dstPort: fc.integer({ min: 1, max: 65535 }),
    noChecksum: fc.boolean(),
  })
  .map((d) =>
    udp4({
      src: d.src,
      dst: ip4(DST),
      srcPort: d.srcPort,
      dstPort: d.dstPort,
      id: d.id,
      noChecksum: d.noChecksum,
      payload: Uint8Array.from({ length: d.size }, (_, k) => (k * 13 + d.fill) & 0xff),
    }),
  );

/** A datagram, its fragments in a random order, and random cuts into batches. */
const scenario = datagram.chain((dg) =>
  fc.integer({ min: 1, max: 185 }).chain((blocks) => inAnyOrder(dg, fragment4(dg, blocks * 8))),
);

function batches<T>(list: T[], cuts: number[]): T[][] {
  const out: T[][] = [];
  let at = 0;
  for (let k = 0; at < list.length; k++) {
    const n = k < cuts.length ? cuts[k] : list.length;
    out.push(list.slice(at, at + n));
    at += n;
  }
  return out;
}

/** A datagram's fragments in a random order, with random cuts into batches. */
function inAnyOrder(dg: Uint8Array, frags: Uint8Array[]) {
  return fc.tuple(
    fc.constant(dg),
    fc.constant(frags.length),
    fc.shuffledSubarray(frags, { minLength: frags.length, maxLength: frags.length }),
    fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 5 }),
  );
}

/**
 * Feeds the fragments batch by batch: the accounting balances after each, exactly the original
 * datagram comes out, and `node`'s context is released after the batch.
 */
function assertReassembles(raw: unknown, node: string, [dg, count, shuffled, cuts]: [Uint8Array, number, Uint8Array[], number[]], reassembled: number): void {
  const t = makePipeline(raw);
  const sent: Buffer[] = [];
  let now = 1000;
  for (const batch of batches(shuffled, cuts)) {
    sent.push(...t.feed(batch.map((f) => mirror(f)), now));
    now += 10;
    assertBalanced(t.accounting());
  }
  assert.equal(sent.length, 1, 'one datagram out');
  assert.deepEqual(Uint8Array.from(sent[0]), dg);
  const a = t.accounting();
  assert.equal(a.rx, count);
  assert.equal(a.forwarded, 1);
  assert.equal(a.reassembly.merged, count - 1);
  assert.equal(a.reassembly.waiting, 0);
  assert.equal(a.reassembly.reassembled, reassembled);
  assert.deepEqual(a.drops, {});
  assert.equal(t.counter(`${node}.contexts`), 0, 'context released after the batch');
}

describe('ip4-reassembly', () => {
  test('fragments in any order, across batches, give back the original datagram; merged = fragments - 1', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        // a datagram that fit one fragment is not a fragment
        assertReassembles(config(), 'ip4-reassembly', sc, sc[1] > 1 ? 1 : 0);
      }),
      { numRuns: 200 },
    );
  });

  test('several datagrams interleaved, each reassembled', () => {
    fc.assert(
      fc.property(fc.array(datagram, { minLength: 2, maxLength: 6 }), fc.integer({ min: 1, max: 60 }), fc.nat(), (dgs, blocks, seed) => {
        // distinct IDs so the datagrams are distinct reassembly keys
        const uniq = dgs.map((d, k) => {
          const c = Uint8Array.from(d);
          c[4] = k;
          c[5] = 0x5a;
          return reseal(c);
        });
        const all = uniq.flatMap((d) => fragment4(d, blocks * 8));
        // a seeded shuffle (Fisher-Yates)
        let s = seed >>> 0;
        for (let i = all.length - 1; i > 0; i--) {
          s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
          const j = s % (i + 1);
          [all[i], all[j]] = [all[j], all[i]];
        }
        const t = makePipeline(config(8), { batchSize: 16 });
        const sent = t.feed(all.map((f) => mirror(f)), 1000);
        const key = (b: Uint8Array) => b[4];
        assert.deepEqual(
          sent.map((b) => Uint8Array.from(b)).sort((a, b) => key(a) - key(b)),
          uniq,
        );
        const a = t.accounting();
        assertBalanced(a);
        assert.equal(a.reassembly.merged, all.length - uniq.length);
      }),
      { numRuns: 100 },
    );
  });

  test('an incomplete datagram expires after timeoutMs as reassembly_timeout; waiting returns to 0', () => {
    fc.assert(
      fc.property(scenario, fc.nat(), ([, count, shuffled], missing) => {
        fc.pre(count > 1);
        const t = makePipeline(config());
        const held = shuffled.filter((_, k) => k !== missing % count);
        const start = 5000;
        assert.deepEqual(t.feed(held.map((f) => mirror(f)), start), []);
        let a = t.accounting();
        assertBalanced(a);
        assert.equal(a.reassembly.waiting, held.length);
        t.pipeline.tick(start + TIMEOUT);
        a = t.accounting();
        assert.equal(a.reassembly.waiting, held.length, 'not expired at exactly timeoutMs');
        t.pipeline.tick(start + TIMEOUT + 1);
        a = t.accounting();
        assertBalanced(a);
        assert.equal(a.reassembly.waiting, 0);
        assert.deepEqual(a.drops, { reassembly_timeout: held.length });
        assert.equal(t.counter('ip4-reassembly.contexts'), 0);
        // The late fragment starts a new datagram of its own, which waits.
        assert.deepEqual(t.feed([mirror(shuffled[missing % count])], start + TIMEOUT + 2), []);
        assert.equal(t.accounting().reassembly.waiting, 1);
      }),
      { numRuns: 100 },
    );
  });

  test('a full pool evicts the oldest datagram, counted as reassembly_evicted', () => {
    const t = makePipeline(config(2));
    const dgs = [1, 2, 3].map((id) => udp4({ src: ip4('198.18.0.9'), dst: ip4(DST), srcPort: 1, dstPort: 2, id, payload: new Uint8Array(100) }));
    const first = dgs.map((d) => fragment4(d, 64)[0]);
    t.feed([mirror(first[0])], 1);
    t.feed([mirror(first[1])], 2);
    t.feed([mirror(first[2])], 3);
    const a = t.accounting();
    assertBalanced(a);
    assert.deepEqual(a.drops, { reassembly_evicted: 1 });
    assert.equal(a.reassembly.waiting, 2);
    // datagram 3 completes; datagram 1 was evicted, so its last fragment now waits alone
    const out = t.feed([mirror(fragment4(dgs[2], 64)[1])], 4);
    assert.deepEqual(out.map((b) => Uint8Array.from(b)), [dgs[2]]);
    assert.deepEqual(t.feed([mirror(fragment4(dgs[0], 64)[1])], 5), []);
    const after = t.accounting();
    assertBalanced(after);
    assert.deepEqual(after.drops, { reassembly_evicted: 1 });
    assert.equal(after.reassembly.waiting, 2);
  });

  test('overlapping, duplicate and inconsistent fragments are dropped with a reason', () => {
    const t = makePipeline(config());
    const dg = udp4({ src: ip4('198.18.0.9'), dst: ip4(DST), srcPort: 1, dstPort: 2, id: 7, payload: new Uint8Array(200).fill(1) });
    const [a, b, c] = fragment4(dg, 80);
    t.feed([mirror(a), mirror(a)], 1);
    assert.equal(t.accounting().drops.frag_overlap, 1);
    // a second "last" fragment ending elsewhere
    const badLast = Uint8Array.from(c.subarray(0, c.length - 8));
    badLast[2] = badLast.length >>> 8;
    badLast[3] = badLast.length & 0xff;
    reseal(badLast);
    t.feed([mirror(c), mirror(badLast)], 2);
    assert.equal(t.accounting().drops.frag_malformed, 1);
    const out = t.feed([mirror(b)], 3);
    assert.deepEqual(out.map((x) => Uint8Array.from(x)), [dg]);
    assertBalanced(t.accounting());
  });
});

const DST6 = '2001:db8:51::10';

function config6(maxDatagrams = 16) {
  return {
    reassembly: { maxDatagrams, timeoutMs: TIMEOUT },
    rules: [{ name: 'all', destination: 'd' }],
    destinations: { d: { backends: [`[${DST6}]`], mtu: 9000 } },
  };
}

const datagram6 = fc
  .record({
    size: fc.integer({ min: 0, max: 8000 }),
    fill: fc.integer({ min: 0, max: 255 }),
    host: fc.integer({ min: 1, max: 0xffff }),
    srcPort: fc.integer({ min: 1, max: 65535 }),
    dstPort: fc.integer({ min: 1, max: 65535 }),
  })
  .map((d) =>
    udp6({
      src: ipv6ToBytes(`2001:db8:100::${d.host.toString(16)}`),
      dst: ipv6ToBytes(DST6),
      srcPort: d.srcPort,
      dstPort: d.dstPort,
      payload: Uint8Array.from({ length: d.size }, (_, k) => (k * 13 + d.fill) & 0xff),
    }),
  );

describe('ip6-reassembly', () => {
  test('fragments in any order, across batches, give back the original datagram without its Fragment header', () => {
    const scenario6 = datagram6.chain((dg) =>
      fc
        .tuple(fc.integer({ min: 1, max: 185 }), fc.integer({ min: 0, max: 0xffffffff }))
        .chain(([blocks, id]) => inAnyOrder(dg, fragment6(dg, blocks * 8, id))),
    );
    fc.assert(
      fc.property(scenario6, (sc) => {
        // an atomic fragment is reassembled alone
        assertReassembles(config6(), 'ip6-reassembly', sc, 1);
      }),
      { numRuns: 200 },
    );
  });

  test('a duplicate is dropped alone; a partial overlap drops the whole datagram (RFC 5722)', () => {
    const t = makePipeline(config6());
    const dg = udp6({ src: ipv6ToBytes('2001:db8:100::9'), dst: ipv6ToBytes(DST6), srcPort: 1, dstPort: 2, payload: new Uint8Array(200).fill(1) });
    const [a, b, c] = fragment6(dg, 80, 7);
    t.feed([mirror(a), mirror(a)], 1);
    assert.deepEqual(t.accounting().drops, { frag6_duplicate: 1 });
    assert.deepEqual(t.feed([mirror(c), mirror(b)], 2).map((x) => Uint8Array.from(x)), [dg]);
    // Now the same datagram again, with the second fragment moved back 8 bytes over the first.
    const [a2, b2] = fragment6(dg, 80, 8);
    const shifted = Uint8Array.from(b2);
    const word = (((80 - 8) / 8) << 3) | 1; // offset 72 bytes, M set
    shifted[42] = word >>> 8;
    shifted[43] = word & 0xff;
    t.feed([mirror(a2), mirror(shifted)], 3);
    const after = t.accounting();
    assertBalanced(after);
    assert.deepEqual(after.drops, { frag6_duplicate: 1, frag6_overlap: 2 });
    assert.equal(after.reassembly.waiting, 0);
    assert.equal(t.counter('ip6-reassembly.contexts'), 0);
  });

  test('an incomplete datagram expires after timeoutMs as reassembly6_timeout', () => {
    const t = makePipeline(config6());
    const dg = udp6({ src: ipv6ToBytes('2001:db8:100::9'), dst: ipv6ToBytes(DST6), srcPort: 1, dstPort: 2, payload: new Uint8Array(300) });
    const frags = fragment6(dg, 96, 9);
    assert.deepEqual(t.feed(frags.slice(1).map((f) => mirror(f)), 100), []);
    assert.equal(t.accounting().reassembly.waiting, frags.length - 1);
    t.pipeline.tick(100 + TIMEOUT + 1);
    const a = t.accounting();
    assertBalanced(a);
    assert.deepEqual(a.drops, { reassembly6_timeout: frags.length - 1 });
    assert.equal(a.reassembly.waiting, 0);
  });

  test('IPv4 and IPv6 datagrams with the same identification are kept apart', () => {
    const t = makePipeline({
      reassembly: { maxDatagrams: 4, timeoutMs: TIMEOUT },
      rules: [
        { name: 'v4', match: { dstCidr: `${DST}/32` }, destination: 'd4' },
        { name: 'v6', match: { dstCidr: `${DST6}/128` }, destination: 'd6' },
      ],
      destinations: { d4: { backends: [DST], mtu: 9000 }, d6: { backends: [`[${DST6}]`], mtu: 9000 } },
    });
    const d4 = udp4({ src: ip4('198.18.0.9'), dst: ip4(DST), srcPort: 1, dstPort: 2, id: 5, payload: new Uint8Array(160).fill(4) });
    const d6 = udp6({ src: ipv6ToBytes('2001:db8:100::9'), dst: ipv6ToBytes(DST6), srcPort: 1, dstPort: 2, payload: new Uint8Array(160).fill(6) });
    const interleaved = [...fragment4(d4, 64), ...fragment6(d6, 64, 5)].sort((x, y) => x.length - y.length);
    const out = t.feed(interleaved.map((f) => mirror(f)), 1).map((b) => Uint8Array.from(b));
    assert.deepEqual(out.sort((x, y) => x[0] - y[0]), [d4, d6]);
    const a = t.accounting();
    assertBalanced(a);
    assert.equal(a.reassembly.reassembled, 2);
  });
});

describe('reassembled datagrams are checked as unfragmented ones would be', () => {
  const src6 = ipv6ToBytes('2001:db8:100::9');
  const cases = [
    { family: 4, what: 'a UDP length that disagrees', reason: 'reassembled_udp_malformed' },
    { family: 4, what: 'a TCP datagram shorter than its header', reason: 'reassembled_truncated' },
    { family: 6, what: 'a UDP length that disagrees', reason: 'reassembled6_udp_malformed' },
    { family: 6, what: 'a TCP datagram shorter than its header', reason: 'reassembled6_truncated' },
  ] as const;
  for (const c of cases) {
    test(`IPv${c.family}: ${c.what} is dropped as ${c.reason}`, () => {
      const tcp = c.reason.endsWith('truncated');
      const payload = new Uint8Array(tcp ? 8 : 32);
      let frags: Uint8Array[];
      if (c.family === 4) {
        const dg = udp4({ src: ip4('198.18.0.9'), dst: ip4(DST), srcPort: 1, dstPort: 2, id: 3, payload });
        if (tcp) {
          dg[9] = 6; // 16 bytes of "TCP": fewer than its 20-byte header
          reseal(dg);
        } else {
          dg[25] += 8; // the UDP length's low byte
        }
        frags = fragment4(dg, 8);
      } else {
        const dg = udp6({ src: src6, dst: ipv6ToBytes(DST6), srcPort: 1, dstPort: 2, payload });
        if (tcp) dg[6] = 6;
        else dg[45] += 8; // the UDP length's low byte
        frags = fragment6(dg, 8, 3);
      }
      const t = makePipeline(c.family === 4 ? config() : config6());
      assert.deepEqual(t.feed(frags.map((f) => mirror(f)), 1), []);
      const a = t.accounting();
      assertBalanced(a);
      assert.deepEqual(a.drops, { [c.reason]: 1 });
      assert.equal(a.reassembly.merged, frags.length - 1);
    });
  }
});
