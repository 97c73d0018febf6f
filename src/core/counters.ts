/**
 * Named counters in one Float64Array (exact to 2^53), optionally backed by a SharedArrayBuffer
 * so a worker writes and the main thread reads without messages. Names are fixed when the layout
 * is built; the data path writes by slot number, readers go by name.
 *
 * Shared counters carry a sequence number after the values (a seqlock): the writer makes it odd
 * while a batch is being counted and even again after, and a reader copies the values until it
 * sees the same even number before and after. So a snapshot never holds half a batch (received
 * counted, forwarded not yet), and the writer never waits.
 */
export class CounterLayout {
  private readonly slots = new Map<string, number>();
  readonly names: string[] = [];

  /** Slot of `name`, added on first use. */
  slot(name: string): number {
    let s = this.slots.get(name);
    if (s === undefined) {
      s = this.names.length;
      this.names.push(name);
      this.slots.set(name, s);
    }
    return s;
  }

  has(name: string): boolean {
    return this.slots.has(name);
  }

  get size(): number {
    return this.names.length;
  }
}

export class Counters {
  readonly layout: CounterLayout;
  readonly values: Float64Array;
  /** The seqlock's sequence, for shared counters; null otherwise. */
  private readonly seq: Int32Array | null;
  private lastConsistent: Float64Array | null = null;

  constructor(layout: CounterLayout, buffer?: SharedArrayBuffer | ArrayBuffer) {
    this.layout = layout;
    this.values = new Float64Array(buffer ?? new ArrayBuffer(layout.size * 8), 0, layout.size);
    const end = layout.size * 8;
    this.seq = buffer instanceof SharedArrayBuffer && buffer.byteLength >= end + SEQ_BYTES ? new Int32Array(buffer, end, 1) : null;
  }

  static shared(layout: CounterLayout): Counters {
    return new Counters(layout, new SharedArrayBuffer(layout.size * 8 + SEQ_BYTES));
  }

  /** The writer: counts of one batch follow, invisible to readers until {@link endBatch}. */
  beginBatch(): void {
    if (this.seq) Atomics.add(this.seq, 0, 1);
  }

  endBatch(): void {
    if (this.seq) Atomics.add(this.seq, 0, 1);
  }

  get(name: string): number {
    return this.layout.has(name) ? this.values[this.layout.slot(name)] : 0;
  }

  /** Name → value for every counter, zeros included. */
  snapshot(): Record<string, number> {
    const copy = this.consistentCopy();
    const out: Record<string, number> = {};
    this.layout.names.forEach((name, i) => (out[name] = copy[i]));
    return out;
  }

  /**
   * The values between two batches. A writer preempted mid-batch can hold the sequence odd for
   * milliseconds; after SNAPSHOT_WAIT_MS of that the reader takes the last consistent copy it
   * made (older, never torn) rather than block its event loop any longer.
   */
  private consistentCopy(): Float64Array {
    const seq = this.seq;
    const copy = new Float64Array(this.values.length);
    if (!seq) {
      copy.set(this.values);
      return copy;
    }
    const deadline = performance.now() + SNAPSHOT_WAIT_MS;
    for (let tries = 1; ; tries++) {
      const before = Atomics.load(seq, 0);
      copy.set(this.values);
      if ((before & 1) === 0 && Atomics.load(seq, 0) === before) {
        this.lastConsistent = copy;
        return copy;
      }
      if (tries % 1024 === 0 && performance.now() > deadline) return this.lastConsistent ?? copy;
    }
  }
}

/** Room after the values for the sequence number (8, keeping the buffer a whole number of doubles). */
const SEQ_BYTES = 8;
/** A batch takes microseconds; a writer odd for this long was preempted mid-batch. */
const SNAPSHOT_WAIT_MS = 20;

/** Sums snapshots by name (per-worker counters read by the main thread). */
export function sumSnapshots(snapshots: Iterable<Record<string, number>>): Record<string, number> {
  const total: Record<string, number> = {};
  for (const snap of snapshots) {
    for (const [name, v] of Object.entries(snap)) total[name] = (total[name] ?? 0) + v;
  }
  return total;
}
