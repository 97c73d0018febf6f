/**
 * Assembles the graph in the order packets flow (see DESIGN.md's shape), and the per-batch
 * driver around it. One Pipeline per worker: its vector, its nodes' state, its counters.
 */
import { Graph } from '../core/graph.js';
import { Counters } from '../core/counters.js';
import { KeyedCounters, type KeyedCounterBuffers } from '../core/keyed-counters.js';
import type { ExporterTableBuffers } from '../flow/exporters.js';
import { Tracer } from '../core/trace.js';
import { PacketVector } from '../core/vector.js';
import { Balance, type Tables } from '../control/tables.js';
import type { Sink } from '../io/sink.js';
import { InnerEthernet } from '../proto/ethernet/input.js';
import { GeneveDecap } from '../proto/geneve/decap.js';
import { Ip4Input } from '../proto/ipv4/input.js';
import { Ip4Reassembly } from '../proto/ipv4/reassembly.js';
import { Ip6Reassembly } from '../proto/ipv6/reassembly.js';
import { Ip6Input } from '../proto/ipv6/input.js';
import { VxlanDecap } from '../proto/vxlan/decap.js';
import { Allowlist } from './allowlist.js';
import { Classify } from './classify.js';
import type { PipelineContext } from './context.js';
import { Dnat } from './dnat.js';
import { FastLearn, FastProposals } from './fast-learn.js';
import { FlowMonitor } from './flow-monitor.js';
import { FlowState, type StreamOwnerBuffers } from '../flow/state.js';
import { Mtu } from './mtu.js';
import { OuterEthernet, OuterIp4 } from './outer.js';
import { Select } from './select.js';
import { TunnelInput } from './tunnel.js';
import { Tx } from './tx.js';

/** Largest mirrored frame: a 9001-byte jumbo inner packet plus inner and outer headers. */
export const DEFAULT_SLOT_SIZE = 9216 + 128;

export interface PipelineOptions {
  tables: Tables;
  sink: Sink;
  /** Packets per receive batch. */
  batchSize?: number;
  /** Spare slots for copies and fragments, per batch. */
  spare?: number;
  slotSize?: number;
  /** The receiver's arena, when it writes packets straight into the vector. */
  arena?: Buffer;
}

/** Per-backend counter slots a pipeline has (the main thread assigns them, see BackendSlots). */
export const BACKEND_SLOTS = 1024;

/** Everything a pipeline counts, in shared memory, for the main thread to read. */
export interface SharedState {
  counterNames: string[];
  counters: SharedArrayBuffer;
  exporters: ExporterTableBuffers;
  sessions: KeyedCounterBuffers;
  backendPackets: SharedArrayBuffer;
  /** The streams the fast path's program follows (flow/state.ts); none for the fast path's own. */
  streamOwners: StreamOwnerBuffers | null;
}

/** Where a batch enters the graph, by what the packets start with. */
export type Entry = 'ethernet' | 'ip4' | 'tunnel';

export class Pipeline {
  readonly ctx: PipelineContext;
  readonly graph: Graph;
  readonly vec: PacketVector;
  readonly tracer = new Tracer();
  /** Exporter statistics, sequence streams and templates of this pipeline. */
  readonly flows: FlowState;
  private readonly entries: Record<Entry, ReturnType<Graph['node']>>;

  constructor(options: PipelineOptions) {
    const batchSize = options.batchSize ?? 256;
    this.vec = new PacketVector({
      rxCapacity: batchSize,
      spare: options.spare ?? batchSize * 3,
      slotSize: options.slotSize ?? DEFAULT_SLOT_SIZE,
      arena: options.arena,
    });
    this.sessionBuffers = KeyedCounters.allocate(1024, 2);
    this.ctx = {
      tables: options.tables,
      nowMs: 0,
      sink: options.sink,
      backendPackets: new Float64Array(new SharedArrayBuffer(BACKEND_SLOTS * 8)),
      sessions: new KeyedCounters(this.sessionBuffers),
      fastProposals: options.tables.fastPath ? new FastProposals(this.vec.capacity) : null,
    };
    this.flows = new FlowState();
    const ctx = this.ctx;
    const nodes = [
      new OuterEthernet(),
      new OuterIp4(),
      new TunnelInput(ctx),
      new GeneveDecap(ctx),
      new VxlanDecap(ctx),
      new InnerEthernet(),
      new Ip4Input(),
      new Ip6Input(),
      new Ip4Reassembly(ctx, options.tables.reassembly.maxDatagrams),
      new Ip6Reassembly(ctx, options.tables.reassembly.maxDatagrams),
      new Allowlist(ctx),
      new Classify(ctx),
      new FlowMonitor(ctx, this.flows),
      new Select(ctx, this.flows),
      new FastLearn(ctx, this.flows),
      new Dnat(ctx),
      new Mtu(ctx),
      new Tx(ctx),
    ];
    this.graph = new Graph(nodes, this.vec.capacity, (layout) => Counters.shared(layout));
    this.graph.tracer = this.tracer;
    this.entries = {
      ethernet: this.graph.node('outer-ethernet'),
      ip4: this.graph.node('outer-ip4'),
      tunnel: this.graph.node('tunnel-input'),
    };
  }

  private readonly sessionBuffers: KeyedCounterBuffers;

  /** The shared memory the main thread reads this pipeline's counters from. */
  shared(): SharedState {
    return {
      counterNames: this.graph.counters.layout.names,
      counters: this.graph.counters.values.buffer as SharedArrayBuffer,
      exporters: this.flows.exporterBuffers,
      sessions: this.sessionBuffers,
      backendPackets: this.ctx.backendPackets.buffer as SharedArrayBuffer,
      streamOwners: this.flows.ownerBuffers,
    };
  }

  /** Swaps in new tables; takes effect at the next batch. */
  setTables(tables: Tables): void {
    this.ctx.tables = tables;
  }

  /**
   * Runs `received` packets already in slots 0..received-1 (start/end set) from `entry`. A batch
   * whose copies and fragments could outgrow the spare slots (jumbo frames to a small MTU,
   * replication) runs as several sub-batches, so no packet is dropped for want of a buffer.
   */
  run(received: number, entry: Entry, nowMs: number): void {
    this.ctx.nowMs = nowMs;
    const vec = this.vec;
    vec.begin(received);
    const spare = vec.capacity - vec.rxCapacity;
    const { copies, fragmentData } = this.spareCost();
    // A socket's datagram is all tunnel payload; a whole frame's payload is counted by outer-ip4.
    const countBytes = entry === 'tunnel';
    let from = 0;
    let need = 0;
    for (let i = 0; i < received; i++) {
      // Copies, a template datagram ahead of each, and the extra fragments of each.
      const cost = 2 * copies - 1 + copies * Math.floor((vec.end[i] - vec.start[i] - 1) / fragmentData);
      if (need + cost > spare && i > from) {
        this.graph.run(vec, this.entries[entry], from, i, countBytes);
        vec.releaseSpares(received);
        from = i;
        need = 0;
      }
      need += cost;
    }
    this.graph.run(vec, this.entries[entry], from, received, countBytes);
    this.ctx.sink.flush();
  }

  /**
   * Worst case of spare slots one packet can take under the current tables: a copy per extra
   * backend of the widest replicating destination, a template datagram for each copy, and
   * fragments of each for the smallest MTU.
   */
  private spareCost(): { copies: number; fragmentData: number } {
    const t = this.ctx.tables;
    if (t !== this.costOf) {
      let copies = 1;
      let fragmentData = 65535;
      for (const d of t.destinations) {
        if (d.balance === Balance.REPLICATE) copies = Math.max(copies, d.backends.length);
        fragmentData = Math.min(fragmentData, Math.max(8, (d.mtu - 60) & ~7)); // 60: the largest IPv4 header
      }
      this.costOf = t;
      this.cost = { copies, fragmentData };
    }
    return this.cost;
  }

  private costOf: Tables | null = null;
  private cost = { copies: 1, fragmentData: 65535 };

  /** Lets timers run without traffic (reassembly expiry). */
  tick(nowMs: number): void {
    this.ctx.nowMs = nowMs;
    this.graph.tick(nowMs);
  }
}
