/**
 * Inner-fragment reassembly for either IP version: a fixed pool of contexts, each with a
 * key (a few 32-bit words: addresses and identification), a 64 KiB buffer and a bitmap of the
 * 8-byte blocks it holds, found through a hash table and kept in age order. Payload goes to
 * `base` + offset in the buffer, and the first fragment's header to just before `base`, so the
 * finished datagram is contiguous without moving bytes. When the pool is full the oldest
 * datagram is evicted; datagrams older than the timeout expire. The pool calls back with how many
 * fragments a discarded datagram held, so the node counts them as dropped with its own reason.
 */
import { mix32 } from '../core/hash.js';
import type { NodeSpec } from '../core/node.js';
import type { PacketVector } from '../core/vector.js';
import { type PipelineContext, PipelineNode } from '../pipeline/context.js';
import { PROTO_UDP, readL4 } from '../pipeline/l4.js';
import { readU16 } from './bytes.js';

export const Discard = { TIMEOUT: 0, EVICTED: 1, OVERLAP: 2 } as const;
export type DiscardCause = (typeof Discard)[keyof typeof Discard];

/** Largest fragmentable part: every datagram fits 65535 bytes of IP payload. */
const PAYLOAD_ROOM = 65536;
const BLOCKS = PAYLOAD_ROOM / 8;

export class FragmentPool {
  readonly size: number;
  /** Where the fragmentable part starts in each buffer; room for the header in front. */
  readonly base: number;
  readonly buffers: (Buffer | null)[];
  /** Fragmentable bytes received so far. */
  readonly received: Int32Array;
  /** Fragmentable part's length once the last fragment is seen, else -1. */
  readonly total: Int32Array;
  /** Length of the header stored in front of `base` once the first fragment is seen, else 0. */
  readonly headerLength: Int32Array;
  /** Fragments held (all but the one that completes the datagram). */
  readonly held: Int32Array;
  private readonly keyWords: number;
  private readonly keys: Int32Array;
  private readonly blocks: Uint8Array[];
  private readonly created: Float64Array;
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

  /**
   * @param discarded called when a datagram is dropped with fragments still held
   * @param inUse called with +1 / −1 as contexts are taken and given back (a gauge)
   */
  constructor(
    size: number,
    keyWords: number,
    maxHeader: number,
    private readonly discarded: (held: number, cause: DiscardCause) => void,
    private readonly inUse: (delta: number) => void,
  ) {
    this.size = size;
    this.keyWords = keyWords;
    this.base = maxHeader;
    this.buffers = new Array<Buffer | null>(size).fill(null);
    this.blocks = Array.from({ length: size }, () => new Uint8Array(BLOCKS / 8));
    this.keys = new Int32Array(size * keyWords);
    this.received = new Int32Array(size);
    this.total = new Int32Array(size);
    this.headerLength = new Int32Array(size);
    this.held = new Int32Array(size);
    this.created = new Float64Array(size);
    let buckets = 1;
    while (buckets < size * 2) buckets <<= 1;
    this.heads = new Int32Array(buckets).fill(-1);
    this.chain = new Int32Array(size).fill(-1);
    this.older = new Int32Array(size).fill(-1);
    this.newer = new Int32Array(size).fill(-1);
    this.free = Int32Array.from({ length: size }, (_, k) => size - 1 - k);
    this.freeCount = size;
    this.lent = new Int32Array(size);
  }

  /** The context of the datagram `key` names, taking a new one if there is none (-1: all busy). */
  find(key: Int32Array, now: number): number {
    const w = this.keyWords;
    const b = this.bucket(key, 0);
    for (let x = this.heads[b]; x >= 0; x = this.chain[x]) if (this.sameKey(x, key)) return x;
    if (this.freeCount === 0 && this.oldest >= 0) this.discard(this.oldest, Discard.EVICTED);
    if (this.freeCount === 0) return -1;
    const x = this.free[--this.freeCount];
    this.buffers[x] ??= Buffer.allocUnsafe(this.base + PAYLOAD_ROOM); // once per context, then reused
    this.blocks[x].fill(0);
    for (let k = 0; k < w; k++) this.keys[x * w + k] = key[k];
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
    this.inUse(1);
    return x;
  }

  /** A fragment must agree with the end of the datagram, once that end is known. */
  fits(x: number, offset: number, length: number, more: boolean): boolean {
    const total = this.total[x];
    if (total < 0) return true;
    return more ? offset + length <= total : false; // a second last fragment never fits
  }

  /** How many of the fragment's 8-byte blocks are held already: 0, some, or all (`blocks`). */
  heldBlocks(x: number, offset: number, length: number): number {
    const bits = this.blocks[x];
    const last = (offset + length - 1) >>> 3;
    let n = 0;
    for (let blk = offset >>> 3; blk <= last; blk++) if (bits[blk >>> 3] & (1 << (blk & 7))) n++;
    return n;
  }

  /** Records a fragment's bytes as received; they are already copied to `base + offset`. */
  add(x: number, offset: number, length: number, more: boolean): void {
    const bits = this.blocks[x];
    const last = (offset + length - 1) >>> 3;
    for (let blk = offset >>> 3; blk <= last; blk++) bits[blk >>> 3] |= 1 << (blk & 7);
    this.received[x] += length;
    if (!more) this.total[x] = offset + length;
  }

  complete(x: number): boolean {
    return this.total[x] >= 0 && this.received[x] === this.total[x] && this.headerLength[x] !== 0;
  }

  /** The vector borrows the finished datagram's buffer until the batch is sent; unhook its key. */
  lend(x: number): void {
    this.unlink(x);
    this.lent[this.lentCount++] = x;
  }

  /** Drops a datagram before it is complete, its held fragments counted for `cause`. */
  discard(x: number, cause: DiscardCause): void {
    if (this.held[x] > 0) this.discarded(this.held[x], cause);
    this.unlink(x);
    this.release(x);
  }

  /** End of a batch: buffers lent to it are free again. */
  endBatch(): void {
    for (let k = 0; k < this.lentCount; k++) this.release(this.lent[k]);
    this.lentCount = 0;
  }

  expire(nowMs: number, timeoutMs: number): void {
    while (this.oldest >= 0 && nowMs - this.created[this.oldest] > timeoutMs) this.discard(this.oldest, Discard.TIMEOUT);
  }

  private sameKey(x: number, key: Int32Array): boolean {
    const w = this.keyWords;
    for (let k = 0; k < w; k++) if (this.keys[x * w + k] !== key[k]) return false;
    return true;
  }

  private bucket(words: Int32Array, at: number): number {
    let h = 0;
    for (let k = 0; k < this.keyWords; k++) h = mix32(h ^ words[at + k]);
    return h & (this.heads.length - 1);
  }

  private release(x: number): void {
    this.free[this.freeCount++] = x;
    this.inUse(-1);
  }

  private unlink(x: number): void {
    const b = this.bucket(this.keys, x * this.keyWords);
    if (this.heads[b] === x) this.heads[b] = this.chain[x];
    else
      for (let y = this.heads[b]; y >= 0; y = this.chain[y])
        if (this.chain[y] === x) {
          this.chain[y] = this.chain[x];
          break;
        }
    this.chain[x] = -1;
    const o = this.older[x];
    const w = this.newer[x];
    if (o >= 0) this.newer[o] = w;
    else this.oldest = w;
    if (w >= 0) this.older[w] = o;
    else this.newest = o;
  }
}

/** The counters every reassembly node declares (its spec's `counters`), named alike for reports. */
export const REASSEMBLY_COUNTERS = {
  waiting: 'fragments held, waiting for the rest of their datagram (gauge)',
  merged: 'fragments merged into a reassembled datagram (besides the one that completed it)',
  reassembled: 'datagrams reassembled',
  contexts: 'datagrams under reassembly (gauge)',
} as const;

/** A reassembly node's drop reasons, by index: datagrams the pool discards, and reassembled ones that fail the transport check. */
export interface ReassemblyReasons {
  timeout: number;
  evicted: number;
  overlap: number;
  /** Too short for its transport header. */
  truncated: number;
  /** A UDP length that disagrees with the datagram's. */
  udpMalformed: number;
}

type ReassemblySpec = NodeSpec<string, string, keyof typeof REASSEMBLY_COUNTERS>;

/**
 * What the IPv4 and IPv6 reassembly nodes share: the pool, the counting of what it holds and
 * discards, and its timers. Each node parses its own fragments and builds its own header.
 */
export abstract class ReassemblyNode<S extends ReassemblySpec> extends PipelineNode<S> {
  protected readonly pool: FragmentPool;
  private readonly discardReasons = new Int32Array(3);
  private readonly truncated: number;
  private readonly udpMalformed: number;
  /** This batch's tallies, counted once at its end (flush). */
  private held = 0;
  private merged = 0;
  private reassembled = 0;

  /**
   * `onward`: the next node of a reassembled datagram that passes the transport check.
   */
  constructor(spec: S, ctx: PipelineContext, maxDatagrams: number, keyWords: number, maxHeader: number, reasons: ReassemblyReasons, private readonly onward: number) {
    super(spec, ctx);
    const c = spec.c;
    this.truncated = reasons.truncated;
    this.udpMalformed = reasons.udpMalformed;
    this.discardReasons[Discard.TIMEOUT] = reasons.timeout;
    this.discardReasons[Discard.EVICTED] = reasons.evicted;
    this.discardReasons[Discard.OVERLAP] = reasons.overlap;
    this.pool = new FragmentPool(
      maxDatagrams,
      keyWords,
      maxHeader,
      (held: number, cause: DiscardCause) => {
        this.dropHeld(this.discardReasons[cause], held);
        this.count(c.waiting, -held);
      },
      (delta: number) => this.count(c.contexts, delta),
    );
  }

  /** Packet `i`'s fragment is stored in context `x` and waits for the rest. */
  protected hold(i: number, x: number): void {
    this.pool.held[x]++;
    this.held++;
    this.absorb(i);
  }

  /**
   * Context `x` is complete, its datagram's header at `start`: packet `i` (the fragment that
   * completed it) becomes the datagram, and the fragments held are merged into it. The vector
   * borrows the buffer until the batch ends.
   */
  protected merge(vec: PacketVector, i: number, x: number, start: number): void {
    const pool = this.pool;
    this.merged += pool.held[x];
    this.held -= pool.held[x];
    this.reassembled++;
    vec.data[i] = pool.buffers[x]!;
    vec.l3[i] = start;
    vec.start[i] = start;
    vec.end[i] = pool.base + pool.total[x];
    pool.lend(x);
  }

  /**
   * Sends reassembled packet `i` on with its transport header at `l4`, read as the input node
   * reads an unfragmented packet's: one too short for it, or whose UDP length disagrees, is dropped.
   */
  protected deliver(vec: PacketVector, i: number, protocol: number, l4: number): void {
    const length = vec.end[i] - l4;
    if (!readL4(vec, i, protocol, l4) || (protocol === PROTO_UDP && length < 8)) this.drop(i, this.truncated);
    else if (protocol === PROTO_UDP && readU16(vec.data[i], l4 + 4) !== length) this.drop(i, this.udpMalformed);
    else this.next(i, this.onward);
  }

  protected flush(): void {
    const c = this.spec.c;
    if (this.held !== 0) this.count(c.waiting, this.held);
    if (this.merged !== 0) this.count(c.merged, this.merged);
    if (this.reassembled !== 0) this.count(c.reassembled, this.reassembled);
    this.held = this.merged = this.reassembled = 0;
  }

  protected expire(nowMs: number): void {
    this.pool.expire(nowMs, this.ctx.tables.reassembly.timeoutMs);
  }

  override tick(nowMs: number): void {
    this.expire(nowMs);
  }

  override endBatch(): void {
    this.pool.endBatch();
  }
}
