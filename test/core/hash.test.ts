import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { combine, hash16, mix32, rendezvousTable, stringId, TABLE_SIZE } from '../../src/core/hash.js';

/** A large table for share measurements: ±5% is about four standard deviations at 10 backends. */
const BIG = 1 << 16;
const TOLERANCE = 0.05;

const names = (n: number, base = 1) => Array.from({ length: n }, (_, k) => `203.0.113.${base + k}:2055`);
const ids = (texts: readonly string[]) => texts.map(stringId);
const ones = (n: number) => new Array<number>(n).fill(1);
const all = (n: number) => new Array<boolean>(n).fill(true);

function shares(table: Int16Array, n: number): number[] {
  const c = new Array<number>(n).fill(0);
  for (const b of table) c[b]++;
  return c;
}

function assertNear(actual: number, expected: number, tolerance: number, what: string): void {
  const dev = Math.abs(actual / expected - 1);
  assert.ok(dev <= tolerance, `${what}: ${actual}, expected ${expected.toFixed(1)} ±${(tolerance * 100).toFixed(1)}% (off by ${(dev * 100).toFixed(2)}%)`);
}

describe('rendezvousTable distribution', () => {
  test('even within a few percent over 2..10 backends (65536 buckets)', () => {
    for (let n = 2; n <= 10; n++) {
      for (const idSet of [ids(names(n)), ids(Array.from({ length: n }, (_, k) => `[2001:db8::${k + 1}]:4739`)), Array.from({ length: n }, (_, k) => k + 1)]) {
        const table = rendezvousTable(idSet, ones(n), all(n), BIG);
        shares(table, n).forEach((c, j) => assertNear(c, BIG / n, TOLERANCE, `${n} backends, backend ${j}`));
      }
    }
  });

  test('even within sampling error at the default table size', () => {
    const report: string[] = [];
    for (let n = 2; n <= 10; n++) {
      const table = rendezvousTable(ids(names(n)), ones(n), all(n));
      assert.equal(table.length, TABLE_SIZE);
      const p = 1 / n;
      // four binomial standard deviations of a bucket count
      const tolerance = (4 * Math.sqrt(TABLE_SIZE * p * (1 - p))) / (TABLE_SIZE * p);
      const c = shares(table, n);
      c.forEach((x, j) => assertNear(x, TABLE_SIZE / n, tolerance, `${n} backends, backend ${j}`));
      report.push(`${n}: ±${(Math.max(...c.map((x) => Math.abs(x / (TABLE_SIZE / n) - 1))) * 100).toFixed(1)}%`);
    }
    console.log(`hash: worst share deviation at ${TABLE_SIZE} buckets by backend count: ${report.join(', ')}`);
  });

  test('weights give proportional shares', () => {
    for (const weights of [[1, 2, 3], [1, 1, 4], [10, 1], [1, 1, 1, 1, 4], [0.5, 1.5]]) {
      const n = weights.length;
      const total = weights.reduce((a, b) => a + b, 0);
      const table = rendezvousTable(ids(names(n)), weights, all(n), BIG);
      shares(table, n).forEach((c, j) => assertNear(c, (BIG * weights[j]) / total, TOLERANCE, `weights ${weights.join(':')}, backend ${j}`));
    }
  });

  test('no eligible backend: every bucket is -1; one eligible: it owns every bucket', () => {
    assert.ok(rendezvousTable(ids(names(3)), ones(3), [false, false, false], 64).every((b) => b === -1));
    assert.ok(rendezvousTable([], [], [], 64).every((b) => b === -1));
    assert.ok(rendezvousTable(ids(names(3)), ones(3), [false, true, false], 64).every((b) => b === 1));
  });

  test('ownership depends on ids, not on the order backends are listed in', () => {
    const texts = names(6);
    const a = rendezvousTable(ids(texts), ones(6), all(6), BIG);
    const order = [3, 0, 5, 1, 4, 2];
    const b = rendezvousTable(ids(order.map((k) => texts[k])), ones(6), all(6), BIG);
    for (let k = 0; k < BIG; k++) assert.equal(order[b[k]], a[k]);
  });
});

describe('rendezvousTable minimal movement', () => {
  test('removing a backend moves only its buckets, spread evenly over the rest', () => {
    for (let n = 2; n <= 10; n++) {
      const idSet = ids(names(n));
      const before = rendezvousTable(idSet, ones(n), all(n), BIG);
      for (let gone = 0; gone < n; gone++) {
        const eligible = all(n);
        eligible[gone] = false;
        const after = rendezvousTable(idSet, ones(n), eligible, BIG);
        // The same, with the backend deleted from the list rather than marked ineligible.
        const keep = idSet.map((_, j) => j).filter((j) => j !== gone);
        const deleted = rendezvousTable(keep.map((j) => idSet[j]), ones(n - 1), all(n - 1), BIG);
        const gained = new Array<number>(n).fill(0);
        let orphans = 0;
        for (let k = 0; k < BIG; k++) {
          assert.equal(keep[deleted[k]], after[k], 'deleting and disabling agree');
          if (before[k] !== gone) assert.equal(after[k], before[k], `bucket ${k} moved between remaining backends`);
          else {
            assert.notEqual(after[k], gone);
            gained[after[k]]++;
            orphans++;
          }
        }
        if (n > 2) {
          // each remaining backend takes about 1/(n-1) of the orphans (a smaller sample: wider band)
          const p = 1 / (n - 1);
          const tol = (4 * Math.sqrt(orphans * p * (1 - p))) / (orphans * p);
          keep.forEach((j) => assertNear(gained[j], orphans / (n - 1), tol, `${n} backends minus ${gone}: share of orphans for ${j}`));
        }
      }
    }
  });

  test('adding a backend takes about 1/(n+1) of the buckets, evenly from each, and moves nothing else', () => {
    for (let n = 1; n <= 9; n++) {
      const texts = names(n + 1);
      const oldIds = ids(texts.slice(0, n));
      const before = rendezvousTable(oldIds, ones(n), all(n), BIG);
      const after = rendezvousTable(ids(texts), ones(n + 1), all(n + 1), BIG);
      const lost = new Array<number>(n).fill(0);
      let taken = 0;
      for (let k = 0; k < BIG; k++) {
        if (after[k] === before[k]) continue;
        assert.equal(after[k], n, `bucket ${k} moved between old backends (${before[k]} → ${after[k]})`);
        lost[before[k]]++;
        taken++;
      }
      assertNear(taken, BIG / (n + 1), TOLERANCE, `${n} → ${n + 1} backends: buckets taken by the new one`);
      if (n > 1) {
        const p = 1 / n;
        const tol = (4 * Math.sqrt(taken * p * (1 - p))) / (taken * p);
        lost.forEach((x, j) => assertNear(x, taken / n, tol, `${n} → ${n + 1}: taken from backend ${j}`));
      }
    }
  });

  test("raising one backend's weight moves buckets only to it", () => {
    const idSet = ids(names(5));
    const before = rendezvousTable(idSet, ones(5), all(5), BIG);
    const after = rendezvousTable(idSet, [1, 1, 3, 1, 1], all(5), BIG);
    let moved = 0;
    for (let k = 0; k < BIG; k++) {
      if (after[k] !== before[k]) {
        assert.equal(after[k], 2);
        moved++;
      }
    }
    assertNear(moved, BIG * (3 / 7 - 1 / 5), TOLERANCE, 'buckets gained by the heavier backend');
  });
});

describe('hash helpers', () => {
  test('mix32 is a bijection on a sample and avalanches', () => {
    const seen = new Set<number>();
    let flips = 0;
    for (let x = 0; x < 1 << 16; x++) {
      const h = mix32(x);
      assert.ok(h >= -0x80000000 && h <= 0x7fffffff && Number.isInteger(h), "an int32 (unboxed in V8)");
      seen.add(h);
      let d = (h ^ mix32(x ^ 1)) >>> 0;
      while (d) {
        flips += d & 1;
        d >>>= 1;
      }
    }
    assert.equal(seen.size, 1 << 16);
    assertNear(flips / (1 << 16), 16, 0.05, 'output bits flipped by one input bit');
  });

  test('hash16 reads 16 bytes at an offset; stringId is stable and spreads', () => {
    const a = Uint8Array.from({ length: 20 }, (_, k) => k * 7);
    const b = new Uint8Array(24);
    b.set(a.subarray(2, 18), 5);
    assert.equal(hash16(a, 2), hash16(b, 5));
    b[20] ^= 1;
    assert.notEqual(hash16(a, 2), hash16(b, 5));
    assert.equal(stringId('203.0.113.1:2055'), stringId('203.0.113.1:2055'));
    const many = new Set(names(200).map(stringId));
    assert.equal(many.size, 200);
    assert.equal(typeof combine(1, 2), 'number');
  });
});
