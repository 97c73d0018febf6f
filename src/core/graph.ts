/**
 * The packet graph: nodes in topological order, each with an input frame of packet indices.
 * A batch enters at one node; each node moves its packets to later nodes' frames or drops them
 * with a named reason, so one forward pass over the nodes finishes the batch. Counting happens
 * once per node per batch; drops are tallied per batch and flushed at the end.
 */
import { performance } from 'node:perf_hooks';
import { CounterLayout, Counters } from './counters.js';
import { Node, type NodeRuntime } from './node.js';
import type { Tracer } from './trace.js';
import { Flag, type PacketVector } from './vector.js';

/** The graph-wide counters every reader relies on. */
export const GraphCounter = {
  RX_PACKETS: 'rx_packets',
  RX_BYTES: 'rx_bytes',
} as const;

export interface DropReason {
  name: string;
  node: string;
  description: string;
}

export class Graph implements NodeRuntime {
  readonly nodes: readonly Node[];
  readonly counters: Counters;
  readonly dropReasons: readonly DropReason[];
  tracer: Tracer | null = null;

  /**
   * Each node's process, bound once, and the nodes that act at the end of a batch. Reading
   * `process` or `endBatch` off nodes of a dozen classes is a megamorphic lookup per node per
   * batch; an array element is not.
   */
  private readonly processes: ((vec: PacketVector, frame: Uint16Array, count: number) => void)[];
  private readonly batchEnders: readonly Node[];
  private readonly frames: Uint16Array[];
  private readonly frameCounts: Int32Array;
  /** Per-batch tallies of original and derived packets dropped, by global reason. */
  private readonly dropTally: Float64Array;
  private readonly copyDropTally: Float64Array;
  private readonly slots: {
    rxPackets: number;
    rxBytes: number;
    nodePackets: Int32Array;
    nodeBatches: Int32Array;
    nodeNs: Int32Array;
    drops: Int32Array;
    copyDrops: Int32Array;
  };
  private vec!: PacketVector;
  private nextId = 1;
  /** Packet ids go nextId, nextId + idStep, ...: workers interleave, so ids are gateway-unique. */
  private idStep = 1;

  /** Numbers this graph's packets first, first + step, first + 2·step, ... */
  numberPackets(first: number, step: number): void {
    this.nextId = first;
    this.idStep = step;
  }

  constructor(nodes: readonly Node[], capacity: number, counterBuffer?: (layout: CounterLayout) => Counters) {
    this.nodes = nodes;
    const byName = new Map(nodes.map((n, i) => [n.spec.name, i]));
    if (byName.size !== nodes.length) throw new Error('graph: duplicate node names');
    const layout = new CounterLayout();
    const reasons: DropReason[] = [];
    const seenReasons = new Set<string>();
    const nodePackets: number[] = [];
    const nodeBatches: number[] = [];
    const nodeNs: number[] = [];
    const rxPackets = layout.slot(GraphCounter.RX_PACKETS);
    const rxBytes = layout.slot(GraphCounter.RX_BYTES);
    nodes.forEach((node, index) => {
      const { spec } = node;
      node.index = index;
      node.successors = Int32Array.from(spec.next, (name) => {
        const to = byName.get(name);
        if (to === undefined) throw new Error(`graph: ${spec.name} names unknown next node ${name}`);
        if (to <= index) throw new Error(`graph: ${spec.name} → ${name} goes backwards`);
        return to;
      });
      node.dropBase = reasons.length;
      for (const [reason, description] of Object.entries(spec.errors)) {
        if (seenReasons.has(reason)) throw new Error(`graph: drop reason ${reason} declared twice`);
        seenReasons.add(reason);
        reasons.push({ name: reason, node: spec.name, description: description as string });
      }
      nodePackets.push(layout.slot(`node.${spec.name}.packets`));
      nodeBatches.push(layout.slot(`node.${spec.name}.batches`));
      nodeNs.push(layout.slot(`node.${spec.name}.ns`));
      node.counterSlots = Int32Array.from(Object.keys(spec.counters ?? {}), (c) => layout.slot(`${spec.name}.${c}`));
      node.attach(this);
    });
    const drops = Int32Array.from(reasons, (r) => layout.slot(`drop.${r.name}`));
    const copyDrops = Int32Array.from(reasons, (r) => layout.slot(`copy_drop.${r.name}`));
    this.dropReasons = reasons;
    this.slots = {
      rxPackets,
      rxBytes,
      nodePackets: Int32Array.from(nodePackets),
      nodeBatches: Int32Array.from(nodeBatches),
      nodeNs: Int32Array.from(nodeNs),
      drops,
      copyDrops,
    };
    this.counters = counterBuffer ? counterBuffer(layout) : new Counters(layout);
    this.processes = nodes.map((node) => node.process.bind(node));
    this.batchEnders = nodes.filter((node) => node.endBatch !== Node.prototype.endBatch);
    this.frames = nodes.map(() => new Uint16Array(capacity));
    this.frameCounts = new Int32Array(nodes.length);
    this.dropTally = new Float64Array(reasons.length);
    this.copyDropTally = new Float64Array(reasons.length);
  }

  node(name: string): Node {
    const n = this.nodes.find((x) => x.spec.name === name);
    if (!n) throw new Error(`graph: no node ${name}`);
    return n;
  }

  /**
   * Runs packets from..to-1 of `vec` (already begun) from node `entry` to the end of the graph.
   * Their bytes count as received unless `countBytes` is false: then a node counts them where the
   * part that counts begins (the tunnel payload, past headers a socket would have taken off).
   */
  run(vec: PacketVector, entry: Node, from: number, to: number, countBytes = true): void {
    this.vec = vec;
    this.counters.beginBatch();
    const values = this.counters.values;
    const s = this.slots;
    let bytes = 0;
    const frame = this.frames[entry.index];
    const tracer = this.tracer;
    const received = to - from;
    for (let k = 0, i = from; i < to; k++, i++) {
      frame[k] = i;
      if (countBytes) bytes += vec.end[i] - vec.start[i];
      const id = this.nextId;
      this.nextId += this.idStep;
      vec.id[i] = id;
      if (tracer !== null && tracer.armed && tracer.take(id, vec.timestampNs[i])) vec.flags[i] |= Flag.TRACED;
    }
    this.frameCounts[entry.index] = received;
    values[s.rxPackets] += received;
    values[s.rxBytes] += bytes;

    const processes = this.processes;
    // One clock read per node that runs: a node's time ends where the next one's begins.
    let t0 = performance.now();
    for (let n = entry.index; n < processes.length; n++) {
      const count = this.frameCounts[n];
      if (count === 0) continue;
      this.frameCounts[n] = 0;
      processes[n](vec, this.frames[n], count);
      const t1 = performance.now();
      values[s.nodeNs[n]] += (t1 - t0) * 1e6;
      t0 = t1;
      values[s.nodePackets[n]] += count;
      values[s.nodeBatches[n]] += 1;
    }
    this.flushDrops();
    for (let n = 0; n < this.batchEnders.length; n++) this.batchEnders[n].endBatch();
    this.counters.endBatch();
  }

  /** Lets time-driven nodes (reassembly expiry) act when no traffic arrives. */
  tick(nowMs: number): void {
    this.counters.beginBatch();
    for (const node of this.nodes) node.tick(nowMs);
    this.flushDrops();
    this.counters.endBatch();
  }

  next(node: Node, i: number, next: number): void {
    const to = node.successors[next];
    this.frames[to][this.frameCounts[to]++] = i;
    if (this.vec.flags[i] & Flag.TRACED) this.traceStep(node, i, this.nodes[to].spec.name);
  }

  drop(node: Node, i: number, reason: number): void {
    const r = node.dropBase + reason;
    if (this.vec.flags[i] & Flag.DERIVED) this.copyDropTally[r]++;
    else this.dropTally[r]++;
    if (this.vec.flags[i] & Flag.TRACED) this.traceStep(node, i, `drop:${this.dropReasons[r].name}`);
  }

  /** Drops counted outside a batch (timers): `n` original packets for `reason`. */
  dropCount(node: Node, reason: number, n: number): void {
    this.dropTally[node.dropBase + reason] += n;
  }

  sent(node: Node, i: number): void {
    if (this.vec.flags[i] & Flag.TRACED) this.traceStep(node, i, 'sent');
  }

  /** The node keeps the packet's bytes (reassembly); the node counts what it holds. */
  absorb(node: Node, i: number): void {
    if (this.vec.flags[i] & Flag.TRACED) this.traceStep(node, i, 'absorbed');
  }

  count(node: Node, counter: number, n: number): void {
    this.counters.values[node.counterSlots[counter]] += n;
  }

  receivedBytes(bytes: number): void {
    this.counters.values[this.slots.rxBytes] += bytes;
  }

  private traceStep(node: Node, i: number, verdict: string): void {
    this.tracer?.step(this.vec.id[i], node.spec.name, verdict, node.describe(this.vec, i));
  }

  private flushDrops(): void {
    const values = this.counters.values;
    const { drops, copyDrops } = this.slots;
    for (let r = 0; r < this.dropTally.length; r++) {
      if (this.dropTally[r] !== 0) {
        values[drops[r]] += this.dropTally[r];
        this.dropTally[r] = 0;
      }
      if (this.copyDropTally[r] !== 0) {
        values[copyDrops[r]] += this.copyDropTally[r];
        this.copyDropTally[r] = 0;
      }
    }
  }
}

