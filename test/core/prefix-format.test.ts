import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SocketAddress } from 'node:net';
import fc from 'fast-check';
import { bytesToIpv6, formatPrefix, ipv6ToBytes, numberToIpv4, ipv4ToNumber, parsePrefix, type Prefix } from '../../src/core/prefix-set.js';

/** node's canonical text for an IPv6 address (libuv's inet_ntop: RFC 5952 compression). */
function nodeCanonical(bytes: Uint8Array): string {
  const loose = Array.from({ length: 8 }, (_, k) => ((bytes[2 * k] << 8) | bytes[2 * k + 1]).toString(16)).join(':');
  return new SocketAddress({ address: loose, family: 'ipv6' }).address;
}

/** Addresses with runs of zero groups of every length and position, IPv4-mapped ones included. */
const mapped6 = fc.tuple(fc.constantFrom(0, 0xffff), fc.integer({ min: 0, max: 0xffffffff })).map(([w5, v4]) => {
  const b = new Uint8Array(16);
  b[10] = w5 >>> 8;
  b[11] = w5 & 0xff;
  new DataView(b.buffer).setUint32(12, v4);
  return b;
});
const address6 = fc.oneof({ weight: 5, arbitrary: fc
  .array(fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 0xffff }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 0xf }) }), {
    minLength: 8,
    maxLength: 8,
  })
  .map((groups) => {
    const b = new Uint8Array(16);
    groups.forEach((g, k) => {
      b[2 * k] = g >>> 8;
      b[2 * k + 1] = g & 0xff;
    });
    return b;
  }) }, { weight: 1, arbitrary: mapped6 });

describe('IPv6 text (RFC 5952) against node', () => {
  test("bytesToIpv6 writes node's canonical form", () => {
    fc.assert(
      fc.property(address6, (b) => {
        assert.equal(bytesToIpv6(b), nodeCanonical(b));
      }),
      { numRuns: 3000 },
    );
  });

  test('bytesToIpv6 → ipv6ToBytes round trip, at an offset', () => {
    fc.assert(
      fc.property(address6, fc.nat(7), (b, off) => {
        const buf = new Uint8Array(off + 16);
        buf.set(b, off);
        const text = bytesToIpv6(buf, off);
        assert.deepEqual(ipv6ToBytes(text), b);
        assert.deepEqual(ipv6ToBytes(nodeCanonical(b)), b, 'parses node forms too, dotted tails included');
      }),
      { numRuns: 2000 },
    );
  });

  test('known forms', () => {
    const cases: [string, string][] = [
      ['00000000000000000000000000000000', '::'],
      ['00000000000000000000000000000001', '::1'],
      ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
      ['00010000000000020000000000000003', '1:0:0:2::3'],
      ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
      ['00010000000100000001000000010000', '1:0:1:0:1:0:1:0'],
      ['fe800000000000000000000000000000', 'fe80::'],
      ['00000000000000000000ffffc6120007', '::ffff:198.18.0.7'],
      ['000000000000000000000000c6120007', '::198.18.0.7'],
      ['00000000000000000000000000000107', '::107'],
    ];
    for (const [hex, text] of cases) assert.equal(bytesToIpv6(Uint8Array.from(Buffer.from(hex, 'hex'))), text);
  });
});

describe('formatPrefix', () => {
  const prefix = fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 })).map(([a, l]): Prefix => ({
      family: 4,
      address: BigInt(a) & ~((1n << BigInt(32 - l)) - 1n),
      length: l,
    })),
    fc.tuple(address6, fc.integer({ min: 0, max: 128 })).map(([b, l]): Prefix => {
      const v = b.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
      return { family: 6, address: v & ~((1n << BigInt(128 - l)) - 1n), length: l };
    }),
  );

  test('parsePrefix(formatPrefix(p)) gives p back; the address part is canonical', () => {
    fc.assert(
      fc.property(prefix, (p) => {
        const text = formatPrefix(p);
        assert.deepEqual(parsePrefix(text), p);
        const [addr, len] = text.split('/');
        assert.equal(Number(len), p.length);
        if (p.family === 4) assert.equal(new SocketAddress({ address: addr, family: 'ipv4' }).address, addr);
        else assert.equal(nodeCanonical(ipv6ToBytes(addr)), addr);
      }),
      { numRuns: 2000 },
    );
  });

  test('IPv4 text round trip', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (v) => {
        const text = numberToIpv4(v);
        assert.equal(new SocketAddress({ address: text, family: 'ipv4' }).address, text);
        assert.equal(ipv4ToNumber(text), v);
      }),
    );
    assert.equal(formatPrefix({ family: 4, address: 0n, length: 0 }), '0.0.0.0/0');
    assert.equal(formatPrefix({ family: 6, address: 0n, length: 0 }), '::/0');
  });
});
