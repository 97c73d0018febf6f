/**
 * Named counters in one Float64Array (exact to 2^53), optionally backed by a SharedArrayBuffer
 * so a worker writes and the main thread reads without messages. Names are fixed when the layout
 * is built; the data path writes by slot number, readers go by name.
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

  constructor(layout: CounterLayout, buffer?: SharedArrayBuffer | ArrayBuffer) {
    this.layout = layout;
    this.values = new Float64Array(buffer ?? new ArrayBuffer(layout.size * 8), 0, layout.size);
  }

  static shared(layout: CounterLayout): Counters {
    return new Counters(layout, new SharedArrayBuffer(layout.size * 8));
  }

  get(name: string): number {
    return this.layout.has(name) ? this.values[this.layout.slot(name)] : 0;
  }

  /** Name → value for every counter, zeros included. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    this.layout.names.forEach((name, i) => (out[name] = this.values[i]));
    return out;
  }
}

/** Sums snapshots by name (per-worker counters read by the main thread). */
export function sumSnapshots(snapshots: Iterable<Record<string, number>>): Record<string, number> {
  const total: Record<string, number> = {};
  for (const snap of snapshots) {
    for (const [name, v] of Object.entries(snap)) total[name] = (total[name] ?? 0) + v;
  }
  return total;
}
