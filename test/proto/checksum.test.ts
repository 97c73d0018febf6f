import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checksum, fold, pseudoSum4, pseudoSum6, sum16, update16, update32 } from '../../src/proto/checksum.js';
import * as ip4 from '../../src/proto/ipv4/packet.js';
import { naiveChecksum, onesSum, pseudoHeader4, pseudoHeader6 } from './naive.js';

/** A second reference: BigInt sum of all words, folded once at the end (RFC 1071 §4.1 "deferred carries"). */
function bigintChecksum(bytes: Uint8Array, off: number, len: number): number {
  let sum = 0n;
  for (let i = 0; i < len; i += 2) sum += BigInt(bytes[off + i] * 256 + (i + 1 < len ? bytes[off + i + 1] : 0));
  while (sum > 0xffffn) sum = (sum & 0xffffn) + (sum >> 16n);
  return Number(~sum & 0xffffn);
}

/** A buffer with a region [off, off+len) of random bytes inside random surroundings. */
const region = fc
  .tuple(fc.uint8Array({ maxLength: 2000 }), fc.nat(7), fc.nat(7))
  .chain(([data, before, after]) =>
    fc.tuple(fc.uint8Array({ minLength: before + data.length + after, maxLength: before + data.length + after }), fc.constant(before), fc.constant(data)),
  )
  .map(([buf, off, data]) => {
    buf.set(data, off);
    return { buf, off, len: data.length };
  });

/** Ones'-complement zero has two forms; an all-zero buffer is the one input where they differ. */
const allZero = (b: Uint8Array) => b.every((x) => x === 0);

describe('checksum (RFC 1071)', () => {
  test('equals two independent implementations over random buffers, odd lengths and offsets', () => {
    fc.assert(
      fc.property(region, ({ buf, off, len }) => {
        const c = checksum(buf, off, len);
        assert.equal(c, naiveChecksum(buf, off, off + len));
        assert.equal(c, bigintChecksum(buf, off, len));
      }),
      { numRuns: 1000 },
    );
  });

  test('sums of mostly-0xff buffers (many carries) agree too', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 8192, min: 0xf0, max: 0xff }), fc.nat(1), (data, odd) => {
        const len = data.length - (data.length > 1 ? odd : 0);
        assert.equal(checksum(data, 0, len), naiveChecksum(data, 0, len));
      }),
      { numRuns: 100 },
    );
    const ones = new Uint8Array(65535).fill(0xff);
    assert.equal(checksum(ones, 0, ones.length), naiveChecksum(ones));
  });

  test('an initial sum continues a checksum across pieces, however large the carried sum', () => {
    // A sum carried over from several 64 KiB pieces passes 2^32.
    const piece = new Uint8Array(65534).fill(0xff);
    let carried = 0;
    const whole: number[] = [];
    for (let k = 0; k < 5; k++) {
      carried = sum16(piece, 0, piece.length, carried);
      for (const b of piece) whole.push(b);
    }
    const tail = Uint8Array.of(0x12, 0x34, 0x56);
    whole.push(...tail);
    assert.ok(carried > 0xffffffff);
    assert.equal(checksum(tail, 0, tail.length, carried), naiveChecksum(whole));
  });

  test('pieces continue a checksum (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(150), (data, cut) => {
        const at = Math.min(cut * 2, data.length & ~1); // split on an even boundary
        const partial = sum16(data, 0, at);
        assert.equal(checksum(data, at, data.length - at, partial), naiveChecksum(data));
      }),
    );
  });

  test('fold reduces any sum to its ones-complement 16-bit value', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.maxSafeNat()), (s) => {
        const expected = s === 0 ? 0 : ((s - 1) % 0xffff) + 1;
        assert.equal(fold(s), expected);
      }),
    );
    assert.equal(fold(0xffff), 0xffff);
    assert.equal(fold(0x10000), 1);
    assert.equal(fold(0x1fffe), 0xffff);
    // Above 2^32 a second round can still carry: 0xffff_1_0000 → 0xffff1 → 0x10000 → 1.
    assert.equal(fold(0xffff10000), 1);
    assert.equal(fold(0x1ffffffff), 1);
  });

  test('the empty buffer sums to zero (checksum 0xffff)', () => {
    assert.equal(checksum(new Uint8Array(4), 2, 0), 0xffff);
    assert.equal(sum16(new Uint8Array(0), 0, 0, 7), 7);
  });
});

describe('incremental update (RFC 1624) equals full recomputation', () => {
  /** A random buffer, one aligned field inside it and a new value for that field. */
  const change = (width: 2 | 4) =>
    fc
      .tuple(fc.integer({ min: 1, max: 200 }), fc.nat(), fc.integer({ min: 0, max: width === 2 ? 0xffff : 0xffffffff }))
      .chain(([words, at, value]) =>
        fc.tuple(
          fc.oneof(
            fc.uint8Array({ minLength: (words + 2) * 2, maxLength: (words + 2) * 2 }),
            // sparse buffers (mostly zero) hit the ones'-complement corner cases
            fc.uint8Array({ minLength: (words + 2) * 2, maxLength: (words + 2) * 2, max: 1 }),
          ),
          fc.constant((at % (words + 2 - width / 2 + 1)) * 2),
          fc.constant(value),
        ),
      );

  test('update16 for one 16-bit field', () => {
    fc.assert(
      fc.property(change(2), ([buf, at, value]) => {
        const before = checksum(buf, 0, buf.length);
        const old = (buf[at] << 8) | buf[at + 1];
        buf[at] = value >>> 8;
        buf[at + 1] = value & 0xff;
        const full = checksum(buf, 0, buf.length);
        const incremental = update16(before, old, value);
        if (allZero(buf)) assert.ok(incremental === 0 || incremental === 0xffff, 'a zero either way');
        else assert.equal(incremental, full);
      }),
      { numRuns: 2000 },
    );
  });

  test('update32 for one 32-bit field (an IPv4 address)', () => {
    fc.assert(
      fc.property(change(4), ([buf, at, value]) => {
        const before = checksum(buf, 0, buf.length);
        const old = ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
        buf[at] = value >>> 24;
        buf[at + 1] = (value >>> 16) & 0xff;
        buf[at + 2] = (value >>> 8) & 0xff;
        buf[at + 3] = value & 0xff;
        const full = checksum(buf, 0, buf.length);
        const incremental = update32(before, old, value);
        if (allZero(buf)) assert.ok(incremental === 0 || incremental === 0xffff, 'a zero either way');
        else assert.equal(incremental, full);
      }),
      { numRuns: 2000 },
    );
  });

  test('updating an IPv4 header in place keeps it valid (the DNAT use)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        (src, dst, newDst, id, newFlags) => {
          const h = { ...ip4.create(), src, dst, id, totalLength: 100, protocol: 17 };
          const buf = new Uint8Array(20);
          ip4.encode(h, buf, 0);
          const oldFlags = (buf[6] << 8) | buf[7];
          const flags = newFlags & 0x7fff;
          buf[6] = flags >>> 8;
          buf[7] = flags & 0xff;
          let c = update16((buf[10] << 8) | buf[11], oldFlags, flags);
          buf.set([newDst >>> 24, (newDst >>> 16) & 0xff, (newDst >>> 8) & 0xff, newDst & 0xff], 16);
          c = update32(c, dst, newDst);
          buf[10] = c >>> 8;
          buf[11] = c & 0xff;
          assert.ok(ip4.checksumValid(buf, 0, 20));
          assert.equal(onesSum(buf), 0xffff);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('pseudo-header sums', () => {
  test('pseudoSum4 sums the RFC 768 pseudo-header', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffff }), (src, dst, len) => {
        assert.equal(fold(pseudoSum4(src, dst, 17, len)), fold(onesSum(pseudoHeader4(src, dst, len))));
      }),
    );
  });

  test('pseudoSum6 sums the RFC 8200 pseudo-header, lengths above 16 bits included', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 40, maxLength: 40 }), fc.integer({ min: 0, max: 0xffffffff }), (ip, len) => {
        const expected = onesSum(pseudoHeader6(ip.subarray(8, 24), ip.subarray(24, 40), len));
        assert.equal(fold(pseudoSum6(ip, 8, 24, 17, len)), expected);
      }),
    );
  });
});
