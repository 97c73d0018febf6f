/**
 * The fast path's action encoding: the checksum deltas it carries, applied the way the XDP
 * program applies them (RFC 1624 eqn. 3 on 16-bit words read little-endian, with its TTL and DF
 * updates), must give the checksums a full recomputation gives, for any addresses, ports, TTL
 * and payload. (fast-path.test.ts checks the program itself against tshark.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ACTION_BYTES, ActionFlag, encodeAction, encodeKey, ExportKind, KEY_BYTES } from '../../src/io/native/fast-path.js';

const NO_EXPORT = { kind: ExportKind.NONE, domain: 0, agent: 0 };

/** One's-complement sum of big-endian words, folded, complemented: a header checksum. */
function checksum(words: number[]): number {
  let s = 0;
  for (const w of words) s += w;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

const be = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
const le = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const words = (b: Uint8Array, from: number, to: number) => Array.from({ length: (to - from + 1) >> 1 }, (_, k) => (b[from + 2 * k] << 8) | (b[from + 2 * k + 1] ?? 0));

function ipChecksum(p: Uint8Array): number {
  const h = p.slice(0, 20);
  h[10] = h[11] = 0;
  return checksum(words(h, 0, 20));
}

function udpChecksum(p: Uint8Array): number {
  const u = p.slice(20);
  u[6] = u[7] = 0;
  const c = checksum([...words(p, 12, 20), 17, u.length, ...words(u, 0, u.length)]);
  return c === 0 ? 0xffff : c;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** What native/fast_path.cc does to the packet, in the same arithmetic. */
function applyLikeTheProgram(p: Uint8Array, action: Uint8Array): void {
  const a = new DataView(action.buffer, action.byteOffset);
  const flags = action[36];
  let sum = (~le(p, 10) & 0xffff) + a.getUint16(10, true);
  if (flags & ActionFlag.DECREMENT_TTL) {
    const w = le(p, 8);
    sum += (~w & 0xffff) + (w - 1);
    p[8] -= 1;
  }
  if (flags & ActionFlag.CLEAR_DF && p[6] & 0x40) {
    const w = le(p, 6);
    sum += (~w & 0xffff) + (w & 0xffbf);
    p[6] &= ~0x40;
  }
  const ip = ~fold(sum) & 0xffff;
  p[10] = ip & 0xff;
  p[11] = ip >> 8;
  p.set(action.subarray(4, 8), 16);
  p.set(action.subarray(8, 10), 22);
  const old = le(p, 26);
  if (old !== 0) {
    let u = ~fold((~old & 0xffff) + a.getUint16(12, true)) & 0xffff;
    if (u === 0) u = 0xffff;
    p[26] = u & 0xff;
    p[27] = u >> 8;
  }
}

const packetArb = fc.record({
  src: fc.integer({ min: 0, max: 0xffffffff }),
  dst: fc.integer({ min: 0, max: 0xffffffff }),
  srcPort: fc.integer({ min: 0, max: 0xffff }),
  dstPort: fc.integer({ min: 0, max: 0xffff }),
  ttl: fc.integer({ min: 2, max: 255 }),
  df: fc.boolean(),
  id: fc.integer({ min: 0, max: 0xffff }),
  payload: fc.uint8Array({ minLength: 0, maxLength: 64 }),
  noChecksum: fc.boolean(),
});
const actionArb = fc.record({
  addr: fc.integer({ min: 0, max: 0xffffffff }),
  port: fc.integer({ min: 0, max: 0xffff }),
  flags: fc.integer({ min: 0, max: 3 }),
});

type PacketSpec = typeof packetArb extends fc.Arbitrary<infer T> ? T : never;

function build(s: PacketSpec): Uint8Array {
  const p = new Uint8Array(28 + s.payload.length);
  const v = new DataView(p.buffer);
  v.setUint8(0, 0x45);
  v.setUint16(2, p.length);
  v.setUint16(4, s.id);
  v.setUint16(6, s.df ? 0x4000 : 0);
  v.setUint8(8, s.ttl);
  v.setUint8(9, 17);
  v.setUint32(12, s.src);
  v.setUint32(16, s.dst);
  v.setUint16(20, s.srcPort);
  v.setUint16(22, s.dstPort);
  v.setUint16(24, 8 + s.payload.length);
  p.set(s.payload, 28);
  v.setUint16(10, ipChecksum(p));
  v.setUint16(26, s.noChecksum ? 0 : udpChecksum(p));
  return p;
}

describe('fast path action', () => {
  test('its checksum deltas, applied as the program applies them, give the recomputed checksums', () => {
    fc.assert(
      fc.property(packetArb, actionArb, (s, a) => {
        const p = build(s);
        const key = { outerSrc: 0, vni: 1, src: s.src | 0, dst: s.dst | 0, srcPort: s.srcPort, dstPort: s.dstPort };
        const action = encodeAction(key, { generation: 1, addr: a.addr | 0, port: a.port, mtu: 1500, dstMac: new Uint8Array(6), srcMac: new Uint8Array(6), ifindex: 1, slot: 0, flags: a.flags, export: NO_EXPORT }, new Uint8Array(ACTION_BYTES));
        applyLikeTheProgram(p, action);
        assert.equal(new DataView(p.buffer).getUint32(16), a.addr, 'destination rewritten');
        assert.equal(be(p, 22), a.port || s.dstPort, 'port rewritten (0 keeps it)');
        assert.equal(p[8], a.flags & ActionFlag.DECREMENT_TTL ? s.ttl - 1 : s.ttl);
        assert.equal((p[6] & 0x40) !== 0, s.df && !(a.flags & ActionFlag.CLEAR_DF));
        assert.equal(be(p, 10), ipChecksum(p), 'IP header checksum');
        assert.equal(be(p, 26), s.noChecksum ? 0 : udpChecksum(p), 'UDP checksum (none stays none)');
      }),
      { numRuns: 2000 },
    );
  });

  test('the export stream is the kind, then the domain and sFlow agent as the packet carries them', () => {
    const key = { outerSrc: 0, vni: 1, src: 0, dst: 0, srcPort: 1, dstPort: 2055 };
    const encode = (kind: number, domain: number, agent: number) =>
      [...encodeAction(key, { generation: 1, addr: 0, port: 0, mtu: 1500, dstMac: new Uint8Array(6), srcMac: new Uint8Array(6), ifindex: 1, slot: 0, flags: 0, export: { kind, domain, agent } }, new Uint8Array(ACTION_BYTES)).subarray(37)];
    // v5: engine type and id, the header's two bytes; v9: the source ID; sFlow: sub-agent, agent.
    assert.deepEqual(encode(ExportKind.NETFLOW5, 0x0102, 0), [1, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(encode(ExportKind.NETFLOW9, 0xdeadbeef | 0, 0), [2, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]);
    assert.deepEqual(encode(ExportKind.SFLOW5, 9, 0xc6120707 | 0), [3, 0, 0, 0, 0, 0, 9, 198, 18, 7, 7]);
  });

  test('the key is the wire bytes of outer source, VNI, inner addresses and ports', () => {
    const key = encodeKey({ outerSrc: 0xc6120001 | 0, vni: 0x123456, src: 0xc0000201 | 0, dst: 0xcb007101 | 0, srcPort: 40000, dstPort: 2055 }, new Uint8Array(KEY_BYTES));
    assert.deepEqual([...key], [198, 18, 0, 1, 0x12, 0x34, 0x56, 0, 192, 0, 2, 1, 203, 0, 113, 1, 0x9c, 0x40, 0x08, 0x07]);
  });
});
