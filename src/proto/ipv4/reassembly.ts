/**
 * Inner IPv4 fragment reassembly, bounded in memory and time. Exporters behind a small MTU send
 * fragmented NetFlow/IPFIX; the collector must get whole datagrams (and the rules need the UDP
 * ports, which only the first fragment carries).
 *
 * A fixed pool of contexts, keyed by (src, dst, id, protocol) through a hash table. Payload goes
 * to BASE + offset in the context's buffer, and the first fragment's header is written just
 * before BASE, so the finished datagram is contiguous without moving bytes. When the pool is full
 * the oldest datagram is evicted; datagrams older than the timeout expire. Every fragment held is
 * counted as waiting until it is merged into a datagram or dropped with a reason.
 */
import { defineNode } from '../../core/node.js';
import { mix32 } from '../../core/hash.js';
import { numberToIpv4 } from '../../core/prefix-set.js';
import type { PacketVector } from '../../core/vector.js';
import { type PipelineContext, PipelineNode } from '../../pipeline/context.js';
import { PROTO_UDP, readL4 } from '../../pipeline/l4.js';
import { readI32, readU16, readU32, writeU16 } from '../bytes.js';
import { checksum } from '../checksum.js';
import * as ip4 from './packet.js';

/** Room for the largest header in front of the payload. */
const BASE = ip4.MAX_HEADER_LENGTH;
const MAX_PAYLOAD = 65535 - ip4.MIN_HEADER_LENGTH;
const BUFFER_SIZE = BASE + 65536;
const BLOCKS = 65536 / 8;

const spec = defineNode({
  name: 'ip4-reassembly',
  next: ['allowlist'],
  errors: {
    frag_malformed: 'IPv4 fragment malformed (empty, not a multiple of 8, or inconsistent end)',
    frag_too_big: 'IPv4 fragments would exceed 65535 bytes',
    frag_overlap: 'IPv4 fragment overlaps or repeats one already held',
    reassembly_timeout: 'IPv4 fragments expired before the datagram was complete',
    reassembly_evicted: 'IPv4 fragments evicted to make room (reassembly pool full)',
    reassembly_busy: 'IPv4 fragment refused: every reassembly context is in use this batch',
    reassembled_truncated: 'reassembled datagram has a truncated UDP/TCP header',
    reassembled_udp_malformed: 'reassembled UDP length disagrees with the IP length',
  },
  counters: {
    waiting: 'fragments held, waiting for the rest of their datagram (gauge)',
    merged: 'fragments merged into a reassembled datagram (besides the one that completed it)',
    reassembled: 'datagrams reassembled',
    contexts: 'datagrams under reassembly (gauge)',
  },
});

export class Ip4Reassembly extends PipelineNode<typeof spec> {
  private readonly size: number;
  private readonly buffers: (Buffer | null)[];
  private readonly blocks: Uint8Array[];
  private readonly src: Int32Array;
  private readonly dst: Int32Array;
  private readonly ident: Int32Array;
  private readonly received: Int32Array;
  /** Payload length once the last fragment is seen, else -1. */
  private readonly total: Int32Array;
  /** Header length once the first fragment is seen, else 0. */
  private readonly headerLength: Int32Array;
  private readonly held: Int32Array;
  private readonly created: Float64Array;
  /** Hash chains and the age-ordered list (oldest first) of contexts in use. */
  private readonly heads: Int32Array;
  private readonly chain: Int32Array;
  private readonly older: Int32Array;
  private readonly newer: Int32Array;
  private oldest = -1;
  private newest = -1;
  private readonly free: Int32Array;
  private freeCount: number;
  /** Contexts whose buffer the vector borrows until the batch is sent. */
  private readonly lent: Int32Array;
  private lentCount = 0;

  constructor(ctx: PipelineContext, maxDatagrams: number) {
    super(spec, ctx);
    const n = (this.size = maxDatagrams);
    this.buffers = new Array<Buffer | null>(n).fill(null);
    this.blocks = Array.from({ length: n }, () => new Uint8Array(BLOCKS / 8));
    this.src = new Int32Array(n);
    this.dst = new Int32Array(n);
    this.ident = new Int32Array(n);
    this.received = new Int32Array(n);
    this.total = new Int32Array(n);
    this.headerLength = new Int32Array(n);
    this.held = new Int32Array(n);
    this.created = new Float64Array(n);
    let buckets = 1;
    while (buckets < n * 2) buckets <<= 1;
    this.heads = new Int32Array(buckets).fill(-1);
    this.chain = new Int32Array(n).fill(-1);
    this.older = new Int32Array(n).fill(-1);
    this.newer = new Int32Array(n).fill(-1);
    this.free = Int32Array.from({ length: n }, (_, k) => n - 1 - k);
    this.freeCount = n;
    this.lent = new Int32Array(n);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e, c } = this.spec;
    let held = 0;
    let merged = 0;
    let reassembled = 0;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      // Each fragment's own arrival time: a replayed batch can span minutes of capture.
      const now = vec.timestampNs[i] / 1e6;
      this.expire(now);
      const buf = vec.data[i];
      const l3 = vec.l3[i];
      const hl = (buf[l3] & 0x0f) * 4;
      const flagsOffset = readU16(buf, l3 + ip4.Field.FLAGS_OFFSET);
      const offset = (flagsOffset & ip4.OFFSET_MASK) * 8;
      const more = (flagsOffset & ip4.FLAG_MF) !== 0;
      const length = vec.end[i] - l3 - hl;
      if (length <= 0 || (more && (length & 7) !== 0)) {
        this.drop(i, e.frag_malformed);
        continue;
      }
      if (offset + length > MAX_PAYLOAD) {
        this.drop(i, e.frag_too_big);
        continue;
      }
      const x = this.lookup(buf, l3, now);
      if (x < 0) {
        this.drop(i, e.reassembly_busy);
        continue;
      }
      if (!this.fits(x, offset, length, more)) {
        this.drop(i, e.frag_malformed);
        continue;
      }
      if (this.overlaps(x, offset, length)) {
        this.drop(i, e.frag_overlap);
        continue;
      }
      const store = this.buffers[x]!;
      buf.copy(store, BASE + offset, l3 + hl, l3 + hl + length);
      this.mark(x, offset, length);
      this.received[x] += length;
      if (!more) this.total[x] = offset + length;
      if (offset === 0) {
        buf.copy(store, BASE - hl, l3, l3 + hl);
        this.headerLength[x] = hl;
      }
      if (this.total[x] < 0 || this.received[x] !== this.total[x] || this.headerLength[x] === 0) {
        this.held[x]++;
        held++;
        this.absorb(i);
        continue;
      }
      // Complete: this fragment's packet becomes the datagram; the others were held until now.
      merged += this.held[x];
      held -= this.held[x];
      reassembled++;
      const start = this.finish(x);
      vec.data[i] = store;
      vec.l3[i] = start;
      vec.start[i] = start;
      vec.end[i] = BASE + this.total[x];
      this.lend(x);
      const protocol = store[start + ip4.Field.PROTOCOL];
      if (!readL4(vec, i, protocol, BASE) || (protocol === PROTO_UDP && this.total[x] < 8)) {
        this.drop(i, e.reassembled_truncated);
        continue;
      }
      if (protocol === PROTO_UDP && readU16(store, BASE + 4) !== this.total[x]) {
        this.drop(i, e.reassembled_udp_malformed);
        continue;
      }
      this.next(i, n.allowlist);
    }
    if (held !== 0) this.count(c.waiting, held);
    if (merged !== 0) this.count(c.merged, merged);
    if (reassembled !== 0) this.count(c.reassembled, reassembled);
  }

  override describe(vec: PacketVector, i: number): string {
    const buf = vec.data[i];
    const l3 = vec.l3[i];
    const fo = readU16(buf, l3 + ip4.Field.FLAGS_OFFSET);
    return `id ${readU16(buf, l3 + ip4.Field.ID)} ${numberToIpv4(readU32(buf, l3 + 12))} off ${(fo & ip4.OFFSET_MASK) * 8}${fo & ip4.FLAG_MF ? ' MF' : ''} len ${vec.end[i] - l3}`;
  }

  override tick(nowMs: number): void {
    this.expire(nowMs);
  }

  override endBatch(): void {
    for (let k = 0; k < this.lentCount; k++) this.release(this.lent[k]);
    this.lentCount = 0;
  }

  private bucket(src: number, dst: number, ident: number): number {
    return mix32(src ^ mix32(dst ^ ident)) & (this.heads.length - 1);
  }

  /** Finds the context of this fragment's datagram, taking a new one if there is none (-1). */
  private lookup(buf: Buffer, l3: number, now: number): number {
    const src = readI32(buf, l3 + ip4.Field.SRC);
    const dst = readI32(buf, l3 + ip4.Field.DST);
    // id and protocol in one word: RFC 791 keys reassembly on both.
    const ident = (readU16(buf, l3 + ip4.Field.ID) << 8) | buf[l3 + ip4.Field.PROTOCOL];
    const b = this.bucket(src, dst, ident);
    for (let x = this.heads[b]; x >= 0; x = this.chain[x]) {
      if (this.src[x] === src && this.dst[x] === dst && this.ident[x] === ident) return x;
    }
    if (this.freeCount === 0) this.evictOldest();
    if (this.freeCount === 0) return -1;
    const x = this.free[--this.freeCount];
    this.buffers[x] ??= Buffer.allocUnsafe(BUFFER_SIZE); // once per context, then reused
    this.blocks[x].fill(0);
    this.src[x] = src;
    this.dst[x] = dst;
    this.ident[x] = ident;
    this.received[x] = 0;
    this.total[x] = -1;
    this.headerLength[x] = 0;
    this.held[x] = 0;
    this.created[x] = now;
    this.chain[x] = this.heads[b];
    this.heads[b] = x;
    this.older[x] = this.newest;
    this.newer[x] = -1;
    if (this.newest >= 0) this.newer[this.newest] = x;
    else this.oldest = x;
    this.newest = x;
    this.count(this.spec.c.contexts, 1);
    return x;
  }

  /** A fragment must agree with the end of the datagram, once that end is known. */
  private fits(x: number, offset: number, length: number, more: boolean): boolean {
    const total = this.total[x];
    if (total < 0) return true;
    return more ? offset + length <= total : false; // a second last fragment never fits
  }

  private overlaps(x: number, offset: number, length: number): boolean {
    const bits = this.blocks[x];
    const last = (offset + length - 1) >>> 3;
    for (let blk = offset >>> 3; blk <= last; blk++) if (bits[blk >>> 3] & (1 << (blk & 7))) return true;
    return false;
  }

  private mark(x: number, offset: number, length: number): void {
    const bits = this.blocks[x];
    const last = (offset + length - 1) >>> 3;
    for (let blk = offset >>> 3; blk <= last; blk++) bits[blk >>> 3] |= 1 << (blk & 7);
  }

  /** Turns the stored first header into the whole datagram's header; returns its offset. */
  private finish(x: number): number {
    const store = this.buffers[x]!;
    const hl = this.headerLength[x];
    const start = BASE - hl;
    writeU16(store, start + ip4.Field.TOTAL_LENGTH, hl + this.total[x]);
    const df = readU16(store, start + ip4.Field.FLAGS_OFFSET) & ip4.FLAG_DF;
    writeU16(store, start + ip4.Field.FLAGS_OFFSET, df);
    writeU16(store, start + ip4.Field.CHECKSUM, 0);
    writeU16(store, start + ip4.Field.CHECKSUM, checksum(store, start, hl));
    return start;
  }

  /** The vector borrows the buffer until the batch is sent; unhook the key now. */
  private lend(x: number): void {
    this.unlink(x);
    this.lent[this.lentCount++] = x;
  }

  private release(x: number): void {
    this.free[this.freeCount++] = x;
    this.count(this.spec.c.contexts, -1);
  }

  private unlink(x: number): void {
    const b = this.bucket(this.src[x], this.dst[x], this.ident[x]);
    if (this.heads[b] === x) this.heads[b] = this.chain[x];
    else for (let y = this.heads[b]; y >= 0; y = this.chain[y]) if (this.chain[y] === x) { this.chain[y] = this.chain[x]; break; }
    this.chain[x] = -1;
    const o = this.older[x];
    const w = this.newer[x];
    if (o >= 0) this.newer[o] = w;
    else this.oldest = w;
    if (w >= 0) this.older[w] = o;
    else this.newest = o;
  }

  private discard(x: number, reason: number): void {
    const held = this.held[x];
    if (held > 0) {
      this.dropHeld(reason, held);
      this.count(this.spec.c.waiting, -held);
    }
    this.unlink(x);
    this.release(x);
  }

  private evictOldest(): void {
    if (this.oldest >= 0) this.discard(this.oldest, this.spec.e.reassembly_evicted);
  }

  private expire(nowMs: number): void {
    const limit = this.ctx.tables.reassembly.timeoutMs;
    while (this.oldest >= 0 && nowMs - this.created[this.oldest] > limit) {
      this.discard(this.oldest, this.spec.e.reassembly_timeout);
    }
  }
}
