import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePrefix, PrefixSet, type Prefix } from '../../src/core/prefix-set.js';

// ---- reference: a linear scan over the prefixes as written, in BigInt ----------------------------

function covers(p: Prefix, addr: bigint): boolean {
  const bits = p.family === 4 ? 32 : 128;
  const shift = BigInt(bits - p.length);
  return addr >> shift === p.address >> shift;
}

function naiveHas(prefixes: readonly Prefix[], family: 4 | 6, addr: bigint): boolean {
  return prefixes.some((p) => p.family === family && covers(p, addr));
}

function bytes16(v: bigint): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

const MAX4 = (1n << 32n) - 1n;
const MAX6 = (1n << 128n) - 1n;

function prefixOf(family: 4 | 6, address: bigint, length: number): Prefix {
  const bits = family === 4 ? 32 : 128;
  const host = (1n << BigInt(bits - length)) - 1n;
  return { family, address: address & ~host & (family === 4 ? MAX4 : MAX6), length };
}

/** First and last address of a prefix, and their neighbours: where range merging goes wrong. */
function edges(p: Prefix): bigint[] {
  const bits = p.family === 4 ? 32 : 128;
  const max = p.family === 4 ? MAX4 : MAX6;
  const last = p.address + (1n << BigInt(bits - p.length)) - 1n;
  return [p.address - 1n, p.address, p.address + 1n, last - 1n, last, last + 1n].filter((a) => a >= 0n && a <= max);
}

// ---- generators: random prefixes plus the cases that break range merging --------------------------

const length4 = fc.oneof(fc.integer({ min: 0, max: 32 }), fc.constantFrom(0, 1, 8, 24, 31, 32));
const length6 = fc.oneof(fc.integer({ min: 0, max: 128 }), fc.constantFrom(0, 1, 32, 48, 64, 127, 128));
const addr4 = fc.oneof(fc.bigInt({ min: 0n, max: MAX4 }), fc.constantFrom(0n, MAX4, 0x0a000000n, 0x7fffffffn, 0x80000000n));
const addr6 = fc.oneof(fc.bigInt({ min: 0n, max: MAX6 }), fc.constantFrom(0n, MAX6, 1n << 127n, (1n << 127n) - 1n));

function familyPrefixes(family: 4 | 6) {
  const addr = family === 4 ? addr4 : addr6;
  const len = family === 4 ? length4 : length6;
  const base = fc.tuple(addr, len).map(([a, l]) => prefixOf(family, a, l));
  const bits = family === 4 ? 32 : 128;
  // A prefix together with relatives: its sibling (adjacent), a sub-prefix (overlap), its parent.
  const family_ = fc.tuple(base, fc.nat(bits)).map(([p, d]) => {
    const out = [p];
    if (p.length > 0) {
      const step = 1n << BigInt(bits - p.length);
      out.push(prefixOf(family, p.address ^ step, p.length)); // sibling: adjacent range
      out.push(prefixOf(family, p.address, p.length - 1)); // parent: overlaps both
    }
    const sub = Math.min(bits, p.length + 1 + (d % 8));
    out.push(prefixOf(family, p.address + (1n << BigInt(bits - sub)), sub)); // inside p (or next to it)
    const next = p.address + (1n << BigInt(bits - p.length));
    if (next <= (family === 4 ? MAX4 : MAX6)) out.push(prefixOf(family, next, p.length)); // right after
    return out;
  });
  return fc.array(fc.oneof(base.map((p) => [p]), family_), { maxLength: 12 }).map((groups) => groups.flat());
}

const prefixes = fc.tuple(familyPrefixes(4), familyPrefixes(6)).chain(([v4, v6]) => fc.shuffledSubarray([...v4, ...v6], { minLength: v4.length + v6.length }));

describe('PrefixSet lookups agree with a linear scan', () => {
  test('has4 over random prefix sets (overlaps, /0, /32, adjacent ranges)', () => {
    fc.assert(
      fc.property(prefixes, fc.array(addr4, { maxLength: 30 }), (ps, probes) => {
        const set = new PrefixSet(ps);
        const all = [...probes, ...ps.filter((p) => p.family === 4).flatMap(edges)];
        for (const a of all) assert.equal(set.has4(Number(a)), naiveHas(ps, 4, a), `address ${a}`);
      }),
      { numRuns: 500 },
    );
  });

  test('has6 over random prefix sets (overlaps, /0, /128, adjacent ranges), read at an offset', () => {
    fc.assert(
      fc.property(prefixes, fc.array(addr6, { maxLength: 30 }), fc.nat(9), (ps, probes, off) => {
        const set = new PrefixSet(ps);
        const all = [...probes, ...ps.filter((p) => p.family === 6).flatMap(edges)];
        const buf = new Uint8Array(off + 16 + 3).fill(0xee);
        for (const a of all) {
          buf.set(bytes16(a), off);
          assert.equal(set.has6(buf, off), naiveHas(ps, 6, a), `address ${a.toString(16)}`);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('the families do not leak into each other', () => {
    const set = PrefixSet.parse(['0.0.0.0/0']);
    assert.equal(set.has4(0xffffffff), true);
    assert.equal(set.has6(new Uint8Array(16), 0), false);
    const set6 = PrefixSet.parse(['::/0']);
    assert.equal(set6.has4(0), false);
    assert.equal(set6.has6(new Uint8Array(16).fill(0xff), 0), true);
  });

  test('edge cases: empty set, /0, the top address, adjacent ranges merged', () => {
    const empty = new PrefixSet([]);
    assert.equal(empty.empty, true);
    assert.equal(empty.has4(0), false);
    assert.equal(empty.has6(new Uint8Array(16), 0), false);
    const top = PrefixSet.parse(['255.255.255.255/32', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128']);
    assert.equal(top.has4(0xffffffff), true);
    assert.equal(top.has4(0xfffffffe), false);
    assert.equal(top.has6(new Uint8Array(16).fill(0xff), 0), true);
    const adjacent = PrefixSet.parse(['10.0.0.0/25', '10.0.0.128/25', '10.0.1.0/24', '2001:db8::/33', '2001:db8:8000::/33']);
    assert.deepEqual(adjacent.ranges, { v4: 1, v6: 1 });
    assert.equal(adjacent.size, 5);
    assert.equal(adjacent.has4(0x0a0001ff), true);
    assert.equal(adjacent.has4(0x0a000200), false);
  });
});

describe('parsePrefix', () => {
  test('addresses, CIDRs, host bits cleared', () => {
    assert.deepEqual(parsePrefix('10.1.2.3/8'), { family: 4, address: 0x0a000000n, length: 8 });
    assert.deepEqual(parsePrefix('10.1.2.3'), { family: 4, address: 0x0a010203n, length: 32 });
    assert.deepEqual(parsePrefix('0.0.0.0/0'), { family: 4, address: 0n, length: 0 });
    assert.deepEqual(parsePrefix('2001:db8::1/32'), { family: 6, address: 0x20010db8n << 96n, length: 32 });
    assert.deepEqual(parsePrefix('::ffff:192.0.2.1'), { family: 6, address: (0xffffn << 32n) | 0xc0000201n, length: 128 });
    assert.deepEqual(parsePrefix('::/0'), { family: 6, address: 0n, length: 0 });
    assert.deepEqual(parsePrefix('1::'), { family: 6, address: 1n << 112n, length: 128 });
  });

  test('a zone index does not change the address bits', () => {
    assert.deepEqual(parsePrefix('::ffff:192.0.2.1%1'), { family: 6, address: (0xffffn << 32n) | 0xc0000201n, length: 128 });
    assert.deepEqual(parsePrefix('fe80::1%eth0'), { family: 6, address: (0xfe80n << 112n) | 1n, length: 128 });
    assert.deepEqual(parsePrefix('fe80::%eth0/64'), { family: 6, address: 0xfe80n << 112n, length: 64 });
  });

  test('errors say what was expected and what came', () => {
    const cases: [string, string][] = [
      ['10.0.0.0/33', 'expected a prefix length 0-32, got "10.0.0.0/33"'],
      ['::/129', 'expected a prefix length 0-128, got "::/129"'],
      ['10.0.0.0/', 'expected a prefix length 0-32, got "10.0.0.0/"'],
      ['10.0.0.0/-1', 'expected a prefix length 0-32, got "10.0.0.0/-1"'],
      ['10.0.0.0/8.5', 'expected a prefix length 0-32, got "10.0.0.0/8.5"'],
      ['10.0.0.0/ 8', 'expected a prefix length 0-32, got "10.0.0.0/ 8"'],
      ['10.0.0.0/8/8', 'expected a prefix length 0-32, got "10.0.0.0/8/8"'],
      ['::/0x10', 'expected a prefix length 0-128, got "::/0x10"'],
      ['10.0.0', 'expected an IPv4/IPv6 address or CIDR, got "10.0.0"'],
      ['10.0.0.256', 'expected an IPv4/IPv6 address or CIDR, got "10.0.0.256"'],
      ['banana/8', 'expected an IPv4/IPv6 address or CIDR, got "banana/8"'],
      ['', 'expected an IPv4/IPv6 address or CIDR, got ""'],
      ['/8', 'expected an IPv4/IPv6 address or CIDR, got "/8"'],
      ['1:2:3:4:5:6:7:8:9', 'expected an IPv4/IPv6 address or CIDR, got "1:2:3:4:5:6:7:8:9"'],
      [' 10.0.0.1', 'expected an IPv4/IPv6 address or CIDR, got " 10.0.0.1"'],
    ];
    for (const [text, message] of cases) assert.equal(parsePrefix(text), message, text);
  });

  test('PrefixSet.parse throws a RangeError naming the bad entry', () => {
    assert.throws(() => PrefixSet.parse(['10.0.0.0/8', '10.0.0.0/40']), { name: 'RangeError', message: /10\.0\.0\.0\/40/ });
  });
});

describe('PrefixSet at scale', () => {
  test('100k prefixes build, then 1M lookups (timing printed, not asserted)', () => {
    let seed = 0x12345678;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    const ps: Prefix[] = [];
    for (let k = 0; k < 100_000; k++) {
      // /16../32 IPv4 and /24../64 IPv6: some nesting and merging, most address space uncovered
      if (k % 4 === 3) ps.push(prefixOf(6, (BigInt(rand()) << 96n) | (BigInt(rand()) << 64n), 24 + (rand() % 41)));
      else ps.push(prefixOf(4, BigInt(rand()), 16 + (rand() % 17)));
    }
    const t0 = performance.now();
    const set = new PrefixSet(ps);
    const t1 = performance.now();
    const buf = new Uint8Array(16);
    let hits = 0;
    for (let k = 0; k < 1_000_000; k++) {
      if (k & 1) {
        for (let w = 0; w < 8; w += 4) {
          const r = rand();
          buf[w] = r >>> 24;
          buf[w + 1] = (r >>> 16) & 0xff;
          buf[w + 2] = (r >>> 8) & 0xff;
          buf[w + 3] = r & 0xff;
        }
        if (set.has6(buf, 0)) hits++;
      } else if (set.has4(rand())) hits++;
    }
    const t2 = performance.now();
    console.log(
      `prefix-set: built ${ps.length} prefixes (${set.ranges.v4} + ${set.ranges.v6} ranges) in ${(t1 - t0).toFixed(0)} ms; ` +
        `1M lookups in ${(t2 - t1).toFixed(0)} ms (${hits} hits)`,
    );
    assert.equal(set.size, 100_000);
    assert.ok(hits > 0 && hits < 1_000_000);
    // spot-check a sample against the linear scan
    for (let k = 0; k < 200; k++) {
      const a = BigInt(rand());
      assert.equal(set.has4(Number(a)), naiveHas(ps, 4, a));
      const b = (BigInt(rand()) << 96n) | (BigInt(rand()) << 64n);
      assert.equal(set.has6(bytes16(b), 0), naiveHas(ps, 6, b));
    }
  });
});
