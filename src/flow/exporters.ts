/**
 * Per-exporter statistics in shared memory, and the sequence streams behind the gap counts.
 *
 * A worker owns its table and writes it from the data path; the main thread reads it without
 * messages. The table is bounded: exporters beyond its capacity are counted as untracked, so a
 * spoofed flood of sources cannot grow memory (and the main thread bounds label cardinality again
 * with a top-N). Rows are never reused, which is what lets the reader run without locks.
 */
import { hash16, mix32, combine } from '../core/hash.js';
import { bytesToIpv6, numberToIpv4 } from '../core/prefix-set.js';

export const ExporterField = {
  PACKETS: 0,
  BYTES: 1,
  /** Times the sequence jumped forward (datagrams lost or reordered upstream). */
  GAPS: 2,
  /** What the jumps add up to, in the protocol's unit (v5 flows, IPFIX records, v9/sFlow datagrams). */
  LOST: 3,
  /** Datagrams on flow ports that did not parse (forwarded all the same). */
  MALFORMED: 4,
  /** Sequence went backwards: exporter restart or reordering. */
  RESETS: 5,
  LAST_SEEN_MS: 6,
} as const;
const STRIDE = 8;
/** Header words of the shared table: rows in use, exporters refused for lack of room. */
const USED = 0;
const UNTRACKED = 1;

export interface ExporterTableBuffers {
  capacity: number;
  stats: SharedArrayBuffer;
  addrs: SharedArrayBuffer;
  header: SharedArrayBuffer;
}

export interface ExporterStats {
  exporter: string;
  packets: number;
  bytes: number;
  gaps: number;
  lost: number;
  malformed: number;
  resets: number;
  lastSeenMs: number;
}

export class ExporterTable {
  readonly capacity: number;
  readonly stats: Float64Array;
  /** Addresses, 4 int32 words per row; an IPv4 exporter is ::ffff:a.b.c.d (RFC 4291 §2.5.5.2). */
  private readonly addrs: Int32Array;
  private readonly header: Int32Array;
  private readonly buckets: Int32Array;
  private readonly next: Int32Array;

  constructor(buffers: ExporterTableBuffers) {
    this.capacity = buffers.capacity;
    this.stats = new Float64Array(buffers.stats);
    this.addrs = new Int32Array(buffers.addrs);
    this.header = new Int32Array(buffers.header);
    let n = 1;
    while (n < this.capacity * 2) n <<= 1;
    this.buckets = new Int32Array(n).fill(-1);
    this.next = new Int32Array(this.capacity).fill(-1);
  }

  static allocate(capacity: number): ExporterTableBuffers {
    return {
      capacity,
      stats: new SharedArrayBuffer(capacity * STRIDE * 8),
      addrs: new SharedArrayBuffer(capacity * 16),
      header: new SharedArrayBuffer(8),
    };
  }

  /** Row of an IPv4 exporter (address as readI32 gives it), added on first sight; -1 when full. */
  row4(addr: number): number {
    const b = mix32(addr) & (this.buckets.length - 1);
    for (let r = this.buckets[b]; r >= 0; r = this.next[r]) {
      const w = r * 4;
      if (this.addrs[w + 3] === addr && this.addrs[w + 2] === 0xffff && this.addrs[w] === 0 && this.addrs[w + 1] === 0) return r;
    }
    const r = this.add(b);
    if (r >= 0) {
      const w = r * 4;
      this.addrs[w] = 0;
      this.addrs[w + 1] = 0;
      this.addrs[w + 2] = 0xffff;
      this.addrs[w + 3] = addr;
      Atomics.store(this.header, USED, r + 1); // publish the row after its address
    }
    return r;
  }

  /** Row of the IPv6 exporter whose address is at `buf[off..off+16)`. */
  row6(buf: Uint8Array, off: number): number {
    const b = hash16(buf, off) & (this.buckets.length - 1);
    for (let r = this.buckets[b]; r >= 0; r = this.next[r]) if (this.same6(r, buf, off)) return r;
    const r = this.add(b);
    if (r >= 0) {
      for (let k = 0; k < 4; k++) {
        const p = off + k * 4;
        this.addrs[r * 4 + k] = (buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3];
      }
      Atomics.store(this.header, USED, r + 1);
    }
    return r;
  }

  private same6(r: number, buf: Uint8Array, off: number): boolean {
    for (let k = 0; k < 4; k++) {
      const p = off + k * 4;
      if (this.addrs[r * 4 + k] !== ((buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3])) return false;
    }
    return true;
  }

  private add(bucket: number): number {
    const r = this.header[USED];
    if (r >= this.capacity) {
      Atomics.add(this.header, UNTRACKED, 1);
      return -1;
    }
    this.next[r] = this.buckets[bucket];
    this.buckets[bucket] = r;
    return r;
  }

  /** Reads every row (main thread). */
  static read(buffers: ExporterTableBuffers): { rows: ExporterStats[]; untracked: number } {
    const header = new Int32Array(buffers.header);
    const stats = new Float64Array(buffers.stats);
    const addrs = new Int32Array(buffers.addrs);
    const used = Atomics.load(header, USED);
    const rows: ExporterStats[] = [];
    const bytes = new Uint8Array(16);
    for (let r = 0; r < used; r++) {
      const w = r * 4;
      let exporter: string;
      if (addrs[w] === 0 && addrs[w + 1] === 0 && addrs[w + 2] === 0xffff) exporter = numberToIpv4(addrs[w + 3]);
      else {
        const view = new DataView(bytes.buffer);
        for (let k = 0; k < 4; k++) view.setInt32(k * 4, addrs[w + k]);
        exporter = bytesToIpv6(bytes);
      }
      const s = r * STRIDE;
      rows.push({
        exporter,
        packets: stats[s + ExporterField.PACKETS],
        bytes: stats[s + ExporterField.BYTES],
        gaps: stats[s + ExporterField.GAPS],
        lost: stats[s + ExporterField.LOST],
        malformed: stats[s + ExporterField.MALFORMED],
        resets: stats[s + ExporterField.RESETS],
        lastSeenMs: stats[s + ExporterField.LAST_SEEN_MS],
      });
    }
    return { rows, untracked: Atomics.load(header, UNTRACKED) };
  }

  /** Offset of a row's fields in `stats`. */
  static base(row: number): number {
    return row * STRIDE;
  }
}

/** Adds `row`'s counts into `into` (same exporter seen by several workers, or the "other" bucket). */
function accumulate(into: ExporterStats, row: ExporterStats): void {
  into.packets += row.packets;
  into.bytes += row.bytes;
  into.gaps += row.gaps;
  into.lost += row.lost;
  into.malformed += row.malformed;
  into.resets += row.resets;
  into.lastSeenMs = Math.max(into.lastSeenMs, row.lastSeenMs);
}

/** Merges worker tables by exporter, keeps the top `n` by packets and folds the rest into "other". */
export function topExporters(tables: Iterable<{ rows: ExporterStats[] }>, n: number): ExporterStats[] {
  const merged = new Map<string, ExporterStats>();
  for (const t of tables) {
    for (const row of t.rows) {
      const m = merged.get(row.exporter);
      if (m) accumulate(m, row);
      else merged.set(row.exporter, { ...row });
    }
  }
  const sorted = [...merged.values()].sort((a, b) => b.packets - a.packets || (a.exporter < b.exporter ? -1 : 1));
  if (sorted.length <= n) return sorted;
  const other: ExporterStats = { exporter: 'other', packets: 0, bytes: 0, gaps: 0, lost: 0, malformed: 0, resets: 0, lastSeenMs: 0 };
  for (const s of sorted.slice(n)) accumulate(other, s);
  return [...sorted.slice(0, n), other];
}

/**
 * Sequence streams: one per exporter row, protocol and observation domain (plus sFlow agent),
 * each remembering the sequence number it expects next. Local to a worker.
 */
export class SequenceStreams {
  readonly capacity: number;
  private readonly row: Int32Array;
  private readonly protocol: Uint8Array;
  /** Keys as int32 (unboxed); compare and hash them, format them with `>>> 0`. */
  private readonly domain: Int32Array;
  private readonly agent: Int32Array;
  /** Next expected sequence number (int32 bits), valid when `known` is 1. */
  readonly expected: Int32Array;
  readonly known: Uint8Array;
  /**
   * Whether the fast path's program can follow the stream's sequence, as ExportKind
   * (io/native/fast-path.ts), or FAST_UNFOLLOWED; written by the flow monitor.
   */
  readonly fastKind: Uint8Array;
  private readonly buckets: Int32Array;
  private readonly next: Int32Array;
  private used = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.row = new Int32Array(capacity);
    this.protocol = new Uint8Array(capacity);
    this.domain = new Int32Array(capacity);
    this.agent = new Int32Array(capacity);
    this.expected = new Int32Array(capacity);
    this.known = new Uint8Array(capacity);
    this.fastKind = new Uint8Array(capacity);
    let n = 1;
    while (n < capacity * 2) n <<= 1;
    this.buckets = new Int32Array(n).fill(-1);
    this.next = new Int32Array(capacity).fill(-1);
  }

  get size(): number {
    return this.used;
  }

  /** Stream index, created on first sight; -1 when full. */
  lookup(row: number, protocol: number, domain: number, agent: number): number {
    const b = combine(combine(combine(row, protocol), domain), agent) & (this.buckets.length - 1);
    for (let s = this.buckets[b]; s >= 0; s = this.next[s]) {
      if (this.row[s] === row && this.protocol[s] === protocol && this.domain[s] === domain && this.agent[s] === agent) return s;
    }
    if (this.used === this.capacity) return -1;
    const s = this.used++;
    this.row[s] = row;
    this.protocol[s] = protocol;
    this.domain[s] = domain;
    this.agent[s] = agent;
    this.known[s] = 0;
    this.next[s] = this.buckets[b];
    this.buckets[b] = s;
    return s;
  }

  rowOf(stream: number): number {
    return this.row[stream];
  }

  domainOf(stream: number): number {
    return this.domain[stream];
  }

  protocolOf(stream: number): number {
    return this.protocol[stream];
  }

  agentOf(stream: number): number {
    return this.agent[stream];
  }
}

/** SequenceStreams.fastKind of a stream the fast path's program cannot follow (IPFIX, sFlow from an IPv6 agent). */
export const FAST_UNFOLLOWED = 255;

/** `advance` results besides a gap's size (> 0) and in order (0). */
export const FIRST_DATAGRAM = -1;
export const WENT_BACKWARDS = -2;

/**
 * Compares `sequence` with what stream `s` expects (32-bit serial arithmetic, RFC 1982 style: a
 * jump forward of under 2^31 is loss, anything else a restart or reordering), then expects
 * `sequence + step` next (step -1: unknown, resynchronise on the next datagram). Returns how many
 * units were skipped (0 when in order), FIRST_DATAGRAM or WENT_BACKWARDS.
 */
export function advance(streams: SequenceStreams, s: number, sequence: number, step: number): number {
  const known = streams.known[s];
  const diff = (sequence - streams.expected[s]) | 0;
  streams.known[s] = step < 0 ? 0 : 1;
  streams.expected[s] = (sequence + step) | 0;
  if (known === 0) return FIRST_DATAGRAM;
  return diff >= 0 ? diff : WENT_BACKWARDS;
}
