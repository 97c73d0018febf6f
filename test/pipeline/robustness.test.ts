/**
 * Whatever arrives, the pipeline never throws and every received packet is accounted for:
 * rx = forwarded + Σ drops + merged + waiting, after every batch and after timers run.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildMirrorFrame, buildMirrorFrame6, mirrorFrameLength, mirrorFrameLength6, type MirrorFrameSpec } from '../../src/gen/mirror.js';
import { assertBalanced, fragment4, ip4, makePipeline, mirror, udp4 } from './helpers.js';

/** Every balance mode, MTUs that fragment, IPv6, a tiny reassembly pool that evicts. */
const CONFIG = {
  reassembly: { maxDatagrams: 4, timeoutMs: 50 },
  rules: [
    { name: 'six', match: { dstCidr: '::/0' }, destination: 'd6' },
    { name: 'copies', match: { protocol: 'udp', dstPort: '5000-5999' }, destination: 'rep' },
    { name: 'rr', match: { dstPort: [6000, 6001] }, destination: 'rr' },
    { name: 'all', destination: 'd4' },
  ],
  destinations: {
    d4: { backends: ['203.0.113.10:2055', '203.0.113.11'], mtu: 576 },
    rep: { backends: ['203.0.113.20:1', '203.0.113.21:2', '203.0.113.22'], balance: 'replicate', mtu: 1000, df: 'keep' },
    rr: { backends: ['203.0.113.30:9', '203.0.113.31:9'], balance: 'round-robin' },
    d6: { backends: ['[2001:db8::10]:4739', '[2001:db8::11]'], mtu: 1280 },
  },
};

const spec = fc.record({
  six: fc.boolean(),
  tunnel: fc.constantFrom('vxlan' as const, 'geneve' as const),
  vlan: fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }),
  vni: fc.integer({ min: 0, max: 0xffffff }),
  src4: fc.ipV4(),
  dst4: fc.ipV4(),
  src6: fc.ipV6(),
  dst6: fc.ipV6(),
  srcPort: fc.integer({ min: 0, max: 65535 }),
  dstPort: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 5000, max: 5999 }), fc.constantFrom(6000, 2055)),
  payload: fc.uint8Array({ maxLength: 2000 }),
  df: fc.boolean(),
  ipId: fc.integer({ min: 0, max: 0xffff }),
});
type Spec = typeof spec extends fc.Arbitrary<infer T> ? T : never;

function build(s: Spec): Buffer {
  const m: MirrorFrameSpec = {
    outerSrc: '198.18.0.1',
    outerDst: '10.0.0.100',
    outerSrcPort: 49152,
    vni: s.vni,
    innerSrcMac: 0x0a0000000001,
    innerDstMac: 0x0a0000000002,
    vlan: s.vlan,
    innerSrc: s.six ? s.src6 : s.src4,
    innerDst: s.six ? s.dst6 : s.dst4,
    innerSrcPort: s.srcPort,
    innerDstPort: s.dstPort,
    payload: s.payload,
    df: s.df,
    ipId: s.ipId,
    tunnel: s.tunnel,
  };
  const out = Buffer.alloc(s.six ? mirrorFrameLength6(m) : mirrorFrameLength(m));
  const n = s.six ? buildMirrorFrame6(m, out) : buildMirrorFrame(m, out);
  assert.equal(n, out.length);
  return out;
}

/** Inner IPv4 fragments of one datagram, each wrapped: exercises reassembly with the rest. */
const fragments = fc
  .record({ payload: fc.uint8Array({ maxLength: 3000 }), size: fc.integer({ min: 1, max: 100 }), id: fc.integer({ min: 0, max: 0xffff }), keep: fc.array(fc.boolean(), { maxLength: 40 }) })
  .map(({ payload, size, id, keep }) => {
    const dg = udp4({ src: ip4('198.18.0.7'), dst: ip4('10.9.9.9'), srcPort: 3000, dstPort: 5100, payload, id });
    return fragment4(dg, size * 8)
      .filter((_, k) => keep[k] ?? true)
      .map((f) => Buffer.from(mirror(f)));
  });

const mutation = fc.record({
  flips: fc.array(fc.tuple(fc.oneof(fc.nat(130), fc.nat()), fc.integer({ min: 0, max: 7 })), { maxLength: 6 }),
  truncate: fc.option(fc.nat(), { nil: undefined }),
});

function mutate(frame: Buffer, m: { flips: [number, number][]; truncate: number | undefined }): Buffer {
  const out = Buffer.from(frame);
  if (out.length === 0) return out;
  for (const [at, bit] of m.flips) out[at % out.length] ^= 1 << bit;
  return m.truncate === undefined ? out : out.subarray(0, m.truncate % (out.length + 1));
}

const frames = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: fc.tuple(spec, mutation).map(([s, m]) => [mutate(build(s), m)]) },
      { weight: 2, arbitrary: spec.map((s) => [build(s)]) },
      { weight: 2, arbitrary: fc.tuple(fragments, mutation).map(([fs, m]) => fs.map((f, k) => (k === 0 ? mutate(f, m) : f))) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => [Buffer.from(b)]) },
    ),
    { minLength: 1, maxLength: 30 },
  )
  .map((groups) => groups.flat());

describe('pipeline robustness', () => {
  test('random and mutated frames never throw; accounting stays balanced', () => {
    fc.assert(
      fc.property(frames, fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 4 }), (list, clock) => {
        const t = makePipeline(CONFIG, { batchSize: 8 });
        let now = 1000;
        const chunk = Math.ceil(list.length / clock.length);
        clock.forEach((step, k) => {
          t.feed(list.slice(k * chunk, (k + 1) * chunk), now);
          assertBalanced(t.accounting(), `after batch ${k}`);
          now += step;
          if (step > 20) {
            t.pipeline.tick(now);
            assertBalanced(t.accounting(), `after tick at ${now}`);
          }
        });
        t.pipeline.tick(now + 1000);
        const a = t.accounting();
        assertBalanced(a, 'after expiry');
        assert.equal(a.reassembly.waiting, 0, 'expiry leaves nothing waiting');
        assert.equal(a.rx, list.length);
      }),
      { numRuns: 150 },
    );
  });

  test('truncation at every length of a valid mirror frame: never throws, never forwarded, dropped as truncated', () => {
    const base: Spec = {
      six: false,
      tunnel: 'vxlan',
      vlan: undefined,
      vni: 123,
      src4: '198.18.0.5',
      dst4: '10.1.2.3',
      src6: '2001:db8::5',
      dst6: '2001:db8:1::1',
      srcPort: 2055,
      dstPort: 2055,
      payload: Uint8Array.from({ length: 700 }, (_, k) => k & 0xff),
      df: true,
      ipId: 42,
    };
    const variants: [string, Buffer][] = [
      ['IPv4 in VXLAN', build(base)],
      ['IPv6 in GENEVE, VLAN-tagged', build({ ...base, six: true, tunnel: 'geneve', vlan: 7 })],
      ['IPv4 non-first fragment', Buffer.from(mirror(fragment4(udp4({ src: 1, dst: 2, srcPort: 1, dstPort: 2, payload: new Uint8Array(100) }), 64)[1]))],
    ];
    for (const [name, frame] of variants) {
      const t = makePipeline(CONFIG, { batchSize: 64 });
      const all: Buffer[] = [];
      for (let len = 0; len <= frame.length; len++) all.push(frame.subarray(0, len));
      for (let at = 0; at < all.length - 1; at += 64) {
        const batch = all.slice(at, Math.min(at + 64, all.length - 1));
        const sent = t.feed(batch);
        assert.deepEqual(sent, [], `${name}: a truncated copy was transmitted`);
        const a = t.accounting();
        assertBalanced(a, name);
        assert.equal(a.forwarded, 0, `${name}: a truncated copy was forwarded`);
        for (const reason of Object.keys(a.drops)) assert.match(reason, /truncated/, `${name}: truncation dropped as ${reason}`);
      }
      const before = t.accounting();
      assert.equal(before.rx, frame.length);
      t.feed([frame]);
      const after = t.accounting();
      assertBalanced(after, `${name}, whole`);
      const whole = after.forwarded - before.forwarded + after.reassembly.waiting - before.reassembly.waiting;
      assert.equal(whole, 1, `${name}: the whole frame is forwarded (or held for reassembly)`);
    }
  });

  test('the same frames entered at the outer IPv4 header (no Ethernet) behave the same', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(spec, mutation), { minLength: 1, maxLength: 20 }), (list) => {
        const eth = makePipeline(CONFIG, { batchSize: 8 });
        const ip = makePipeline(CONFIG, { batchSize: 8 });
        // flips only past the outer Ethernet header, which the second pipeline never sees
        const withEth = list.map(([s, m]) => {
          const f = build(s);
          return mutate(f, { flips: m.flips.map(([at, bit]) => [14 + (at % (f.length - 14)), bit]), truncate: undefined });
        });
        const a = eth.feed(withEth);
        const b = ip.feed(
          withEth.map((f) => f.subarray(14)),
          0,
          'ip4',
        );
        assertBalanced(ip.accounting());
        assert.equal(a.length, b.length);
        assert.deepEqual(ip.accounting().forwarded, eth.accounting().forwarded);
      }),
      { numRuns: 50 },
    );
  });
});
