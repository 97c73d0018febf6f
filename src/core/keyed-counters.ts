/**
 * Counters keyed by a 32-bit value that the data path discovers (a VNI), in shared memory: the
 * worker adds a row on first sight, the main thread reads rows without locks. Bounded: keys
 * beyond the capacity are counted together as untracked.
 */
import { mix32 } from './hash.js';

const USED = 0;
const UNTRACKED = 1;

export interface KeyedCounterBuffers {
  capacity: number;
  fields: number;
  keys: SharedArrayBuffer;
  values: SharedArrayBuffer;
  header: SharedArrayBuffer;
}

export class KeyedCounters {
  readonly values: Float64Array;
  readonly fields: number;
  private readonly keys: Uint32Array;
  private readonly header: Int32Array;
  private readonly buckets: Int32Array;
  private readonly next: Int32Array;
  private readonly capacity: number;

  constructor(buffers: KeyedCounterBuffers) {
    this.capacity = buffers.capacity;
    this.fields = buffers.fields;
    this.keys = new Uint32Array(buffers.keys);
    this.values = new Float64Array(buffers.values);
    this.header = new Int32Array(buffers.header);
    let n = 1;
    while (n < this.capacity * 2) n <<= 1;
    this.buckets = new Int32Array(n).fill(-1);
    this.next = new Int32Array(this.capacity).fill(-1);
  }

  static allocate(capacity: number, fields: number): KeyedCounterBuffers {
    return {
      capacity,
      fields,
      keys: new SharedArrayBuffer(capacity * 4),
      values: new SharedArrayBuffer(capacity * fields * 8),
      header: new SharedArrayBuffer(8),
    };
  }

  /** Offset in `values` of the row for `key` (added on first sight); -1 when full. */
  base(key: number): number {
    const b = mix32(key) & (this.buckets.length - 1);
    for (let r = this.buckets[b]; r >= 0; r = this.next[r]) if (this.keys[r] === key) return r * this.fields;
    const r = this.header[USED];
    if (r >= this.capacity) {
      Atomics.add(this.header, UNTRACKED, 1);
      return -1;
    }
    this.keys[r] = key;
    this.next[r] = this.buckets[b];
    this.buckets[b] = r;
    Atomics.store(this.header, USED, r + 1);
    return r * this.fields;
  }

  /** key → field values, for every row (main thread). */
  static read(buffers: KeyedCounterBuffers): { rows: Map<number, number[]>; untracked: number } {
    const header = new Int32Array(buffers.header);
    const keys = new Uint32Array(buffers.keys);
    const values = new Float64Array(buffers.values);
    const rows = new Map<number, number[]>();
    const used = Atomics.load(header, USED);
    for (let r = 0; r < used; r++) rows.set(keys[r], Array.from(values.subarray(r * buffers.fields, (r + 1) * buffers.fields)));
    return { rows, untracked: Atomics.load(header, UNTRACKED) };
  }
}
