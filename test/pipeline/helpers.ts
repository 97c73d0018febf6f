/**
 * A pipeline for tests: validated config → compiled tables → Pipeline with a sink that keeps a
 * copy of every transmitted packet. Frames are built by hand here (DataView, naive checksums) so
 * the builders share no code with the codecs under test.
 */
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/control/config.js';
import { compileTables, type Tables } from '../../src/control/tables.js';
import type { PacketVector } from '../../src/core/vector.js';
import type { SendResult, Sink } from '../../src/io/sink.js';
import { accountingFrom, type Accounting } from '../../src/pipeline/accounting.js';
import { Pipeline, type Entry } from '../../src/pipeline/build.js';
import { be16, be32, naiveChecksum, naiveUdpChecksum, pseudoHeader4, pseudoHeader6, sumsToOnes, udpVerifies } from '../proto/naive.js';

/** Keeps the raw IP bytes (l3 to end) of everything sent, in order. */
export class CaptureSink implements Sink {
  readonly name = 'capture';
  readonly packets: Buffer[] = [];
  flushes = 0;

  send(vec: PacketVector, frame: Uint16Array, count: number, _tables: Tables, result: SendResult): void {
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const bytes = Buffer.from(vec.data[i].subarray(vec.l3[i], vec.end[i]));
      this.packets.push(bytes);
      result.sent++;
      result.bytes += bytes.length;
    }
  }

  flush(): void {
    this.flushes++;
  }

  close(): void {}

  take(): Buffer[] {
    return this.packets.splice(0);
  }
}

export interface TestPipeline {
  pipeline: Pipeline;
  sink: CaptureSink;
  /** Runs frames through the graph in batches of the pipeline's size; returns what was sent. */
  feed(frames: readonly Uint8Array[], nowMs?: number, entry?: Entry): Buffer[];
  accounting(): Accounting;
  counter(name: string): number;
}

export function makePipeline(raw: unknown, options: { batchSize?: number; spare?: number } = {}): TestPipeline {
  const r = validateConfig(raw, '/nonexistent');
  if ('problems' in r) assert.fail(`test config refused: ${r.problems.join('; ')}`);
  const sink = new CaptureSink();
  const pipeline = new Pipeline({ tables: compileTables(r.config), sink, batchSize: options.batchSize ?? 64, spare: options.spare });
  const vec = pipeline.vec;
  return {
    pipeline,
    sink,
    feed(frames, nowMs = 0, entry = 'ethernet') {
      for (let at = 0; at < frames.length; at += vec.rxCapacity) {
        const batch = frames.slice(at, at + vec.rxCapacity);
        batch.forEach((f, i) => {
          assert.ok(f.length <= vec.slotSize, `frame of ${f.length} bytes exceeds the ${vec.slotSize}-byte slot`);
          vec.slot[i].set(f, 0);
          vec.start[i] = 0;
          vec.end[i] = f.length;
          vec.timestampNs[i] = nowMs * 1e6;
        });
        pipeline.run(batch.length, entry, nowMs);
      }
      return sink.take();
    },
    accounting: () => accountingFrom(pipeline.graph.counters.snapshot()),
    counter: (name) => pipeline.graph.counters.get(name),
  };
}

/** Asserts the accounting invariant, with the numbers in the message when it fails. */
export function assertBalanced(a: Accounting, what = ''): void {
  const dropped = Object.values(a.drops).reduce((x, y) => x + y, 0);
  assert.ok(
    a.balanced && a.rx === a.forwarded + dropped + a.reassembly.merged + a.reassembly.waiting,
    `${what} unbalanced: rx ${a.rx} ≠ forwarded ${a.forwarded} + drops ${dropped} ${JSON.stringify(a.drops)} + merged ${a.reassembly.merged} + waiting ${a.reassembly.waiting}`,
  );
  assert.ok(a.reassembly.waiting >= 0, 'waiting is never negative');
}

// ---- hand-built packets ---------------------------------------------------------------------------

export function ip4(text: string): number {
  return text.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

function put32(b: Uint8Array, off: number, v: number): void {
  put16(b, off, Math.floor(v / 0x10000));
  put16(b, off + 2, v & 0xffff);
}

export interface Udp4Spec {
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
  id?: number;
  df?: boolean;
  ttl?: number;
  /** Leave the UDP checksum zero ("none", legal over IPv4). */
  noChecksum?: boolean;
}

/** An IPv4/UDP datagram with correct header and UDP checksums. */
export function udp4(s: Udp4Spec): Uint8Array {
  const udpLength = 8 + s.payload.length;
  const b = new Uint8Array(20 + udpLength);
  b[0] = 0x45;
  put16(b, 2, b.length);
  put16(b, 4, s.id ?? 0);
  put16(b, 6, s.df ? 0x4000 : 0);
  b[8] = s.ttl ?? 64;
  b[9] = 17;
  put32(b, 12, s.src);
  put32(b, 16, s.dst);
  put16(b, 10, naiveChecksum(b, 0, 20));
  put16(b, 20, s.srcPort);
  put16(b, 22, s.dstPort);
  put16(b, 24, udpLength);
  b.set(s.payload, 28);
  if (!s.noChecksum) put16(b, 26, naiveUdpChecksum(pseudoHeader4(s.src, s.dst, udpLength), b.subarray(20)));
  return b;
}

export interface Udp6Spec {
  src: Uint8Array;
  dst: Uint8Array;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
  noChecksum?: boolean;
}

/** An IPv6/UDP datagram with a correct UDP checksum (or zero when asked). */
export function udp6(s: Udp6Spec): Uint8Array {
  const udpLength = 8 + s.payload.length;
  const b = new Uint8Array(40 + udpLength);
  b[0] = 0x60;
  put16(b, 4, udpLength);
  b[6] = 17;
  b[7] = 64;
  b.set(s.src, 8);
  b.set(s.dst, 24);
  put16(b, 40, s.srcPort);
  put16(b, 42, s.dstPort);
  put16(b, 44, udpLength);
  b.set(s.payload, 48);
  if (!s.noChecksum) put16(b, 46, naiveUdpChecksum(pseudoHeader6(s.src, s.dst, udpLength), b.subarray(40)));
  return b;
}

export interface WrapSpec {
  vni?: number;
  tunnel?: 'vxlan' | 'geneve';
  vlan?: number;
  outerSrc?: number;
}

/**
 * Wraps an inner IP packet as a mirror target receives it: outer Ethernet / IPv4 / UDP (checksum
 * zero) / VXLAN or GENEVE / inner Ethernet [802.1Q] / the packet.
 */
export function mirror(inner: Uint8Array, w: WrapSpec = {}): Uint8Array {
  const innerEth = 14 + (w.vlan === undefined ? 0 : 4);
  const tunnelLength = 8;
  const outerUdp = 8 + tunnelLength + innerEth + inner.length;
  const b = new Uint8Array(14 + 20 + outerUdp);
  b.set([0x06, 0, 0x5e, 0, 0, 2, 0x06, 0, 0x5e, 0, 0, 1, 0x08, 0x00], 0);
  const ip = 14;
  b[ip] = 0x45;
  put16(b, ip + 2, 20 + outerUdp);
  b[ip + 8] = 64;
  b[ip + 9] = 17;
  put32(b, ip + 12, w.outerSrc ?? ip4('198.18.0.1'));
  put32(b, ip + 16, ip4('10.0.0.100'));
  put16(b, ip + 10, naiveChecksum(b, ip, ip + 20));
  const u = ip + 20;
  put16(b, u, 49152);
  put16(b, u + 2, w.tunnel === 'geneve' ? 6081 : 4789);
  put16(b, u + 4, outerUdp);
  const t = u + 8;
  const vni = w.vni ?? 123;
  if (w.tunnel === 'geneve') {
    b.set([0x00, 0x00, 0x65, 0x58], t);
  } else {
    b[t] = 0x08;
  }
  b[t + 4] = (vni >>> 16) & 0xff;
  b[t + 5] = (vni >>> 8) & 0xff;
  b[t + 6] = vni & 0xff;
  const e = t + tunnelLength;
  b.set([0x0a, 0, 0, 0, 0, 2, 0x0a, 0, 0, 0, 0, 1], e);
  let p = e + 12;
  if (w.vlan !== undefined) {
    put16(b, p, 0x8100);
    put16(b, p + 2, w.vlan);
    p += 4;
  }
  put16(b, p, (inner[0] >>> 4) === 6 ? 0x86dd : 0x0800);
  b.set(inner, p + 2);
  return b;
}

/** Where the inner IP packet starts in a frame built by `mirror` (VXLAN, no VLAN). */
export const INNER_OFFSET = 14 + 20 + 8 + 8 + 14;

/**
 * Cuts an IPv4 datagram into fragments carrying `size` payload bytes each (a multiple of 8), as a
 * router would; header checksums recomputed. Returns them in order.
 */
export function fragment4(datagram: Uint8Array, size: number): Uint8Array[] {
  const hl = (datagram[0] & 0x0f) * 4;
  const payload = datagram.subarray(hl);
  const out: Uint8Array[] = [];
  for (let at = 0; at < payload.length || at === 0; at += size) {
    const part = payload.subarray(at, at + size);
    const last = at + size >= payload.length;
    const f = new Uint8Array(hl + part.length);
    f.set(datagram.subarray(0, hl), 0);
    f.set(part, hl);
    put16(f, 2, f.length);
    put16(f, 6, (be16(datagram, 6) & 0x4000) | (last ? 0 : 0x2000) | (at / 8));
    put16(f, 10, 0);
    put16(f, 10, naiveChecksum(f, 0, hl));
    out.push(f);
    if (last) break;
  }
  return out;
}

/**
 * Cuts an IPv6 datagram without extension headers into fragments carrying `size` bytes of its
 * payload each (a multiple of 8), as its exporter would (RFC 8200 §4.5): a Fragment header after
 * the fixed header, Identification `id`. Returns them in order.
 */
export function fragment6(datagram: Uint8Array, size: number, id: number): Uint8Array[] {
  const payload = datagram.subarray(40);
  const out: Uint8Array[] = [];
  for (let at = 0; at < payload.length || at === 0; at += size) {
    const part = payload.subarray(at, at + size);
    const last = at + size >= payload.length;
    const f = new Uint8Array(48 + part.length);
    f.set(datagram.subarray(0, 40), 0);
    put16(f, 4, 8 + part.length);
    f[6] = 44;
    f[40] = datagram[6];
    put16(f, 42, ((at / 8) << 3) | (last ? 0 : 1));
    put32(f, 44, id);
    f.set(part, 48);
    out.push(f);
    if (last) break;
  }
  return out;
}

/**
 * Reassembles IPv4 fragments (any order) into one datagram, checking as it goes: same ID, valid
 * header checksums, payload exactly covered once, only the last without MF.
 */
export function reassemble4(fragments: readonly Uint8Array[]): Uint8Array {
  assert.ok(fragments.length > 0);
  const sorted = fragments.slice().sort((a, b) => (be16(a, 6) & 0x1fff) - (be16(b, 6) & 0x1fff));
  const id = be16(sorted[0], 4);
  const parts: Uint8Array[] = [];
  let next = 0;
  sorted.forEach((f, k) => {
    const hl = (f[0] & 0x0f) * 4;
    assert.equal(f[0] >>> 4, 4);
    assert.ok(sumsToOnes(f, 0, hl), `fragment ${k}: header checksum`);
    assert.equal(be16(f, 2), f.length, `fragment ${k}: total length`);
    assert.equal(be16(f, 4), id, `fragment ${k}: identification`);
    const offset = (be16(f, 6) & 0x1fff) * 8;
    const more = (be16(f, 6) & 0x2000) !== 0;
    assert.equal(offset, next, `fragment ${k}: offset ${offset}, expected ${next}`);
    assert.equal(more, k < sorted.length - 1, `fragment ${k}: MF`);
    if (more) assert.equal((f.length - hl) % 8, 0, `fragment ${k}: payload a multiple of 8`);
    parts.push(f.subarray(hl));
    next += f.length - hl;
  });
  const first = sorted[0];
  const hl = (first[0] & 0x0f) * 4;
  const out = new Uint8Array(hl + next);
  out.set(first.subarray(0, hl), 0);
  let p = hl;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  put16(out, 2, out.length);
  put16(out, 6, be16(first, 6) & 0x4000);
  put16(out, 10, 0);
  put16(out, 10, naiveChecksum(out, 0, hl));
  return out;
}

/** The datagram after DNAT as the test expects it: new destination (and port), checksums redone. */
export function dnatExpected4(datagram: Uint8Array, dst: number, dstPort: number, changes: { id?: number; clearDf?: boolean } = {}): Uint8Array {
  const out = Uint8Array.from(datagram); // a copy, and not a Buffer (whose slice is a view)
  const hl = (out[0] & 0x0f) * 4;
  put32(out, 16, dst);
  if (changes.id !== undefined) put16(out, 4, changes.id);
  if (changes.clearDf) put16(out, 6, be16(out, 6) & ~0x4000);
  put16(out, 10, 0);
  put16(out, 10, naiveChecksum(out, 0, hl));
  if (dstPort !== 0) put16(out, hl + 2, dstPort);
  if (be16(datagram, hl + 6) !== 0) {
    put16(out, hl + 6, naiveUdpChecksum(pseudoHeader4(be32(out, 12), dst, be16(out, hl + 4)), out.subarray(hl)));
  }
  return out;
}

export { be16, be32, udpVerifies, pseudoHeader4, pseudoHeader6, sumsToOnes, naiveChecksum };
