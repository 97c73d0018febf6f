/**
 * The fast path's control, in the main thread (listen.fastPath). Workers propose the flows they
 * forward to destinations whose treatment never varies (pipeline/fast-learn.ts); this writes each
 * one's action into the program's flow map (native/fast_path.cc), and from then on the program,
 * at the XDP or the tc ingress hook, forwards that flow's packets itself: decapsulated, DNATed,
 * with the next hop's Ethernet header, out of the egress device, without a copy to user space or
 * a send.
 *
 * Actions hold for one generation. A new one starts whenever something that decided them may
 * have changed (a reload, a backend's health, a next hop), every REFRESH_MS so the packet path
 * still confirms its next hops with the kernel now and then, and a trace switches the fast path
 * off while it runs, so every packet is traced. Flows then learn again from their next packet.
 *
 * Every flow counts into its own slot. The folds here turn the slots' growth into the same
 * counters the workers keep (received, forwarded, transmitted, per exporter, session and
 * backend), so reports and the accounting invariant see fast-path packets like any others.
 *
 * The program also follows the sequence of each flow's export stream (NetFlow v5/v9, sFlow), the
 * gaps folding into the exporter's counts as the workers' do. Installing a flow marks its stream
 * in the proposing worker's table (flow/state.ts StreamOwnerBuffers) so that the worker leaves
 * the stream to the program while this generation lasts, and starts it afresh after.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../control/config.js';
import type { Logger } from '../control/log.js';
import { CounterLayout, Counters } from '../core/counters.js';
import { GraphCounter } from '../core/graph.js';
import { KeyedCounters } from '../core/keyed-counters.js';
import { ipv4ToNumber } from '../core/prefix-set.js';
import { ExporterField, ExporterTable } from '../flow/exporters.js';
import type { StreamOwnerBuffers } from '../flow/state.js';
import { ACTION_BYTES, ActionFlag, encodeAction, encodeKey, FastPathMaps, KEY_BYTES, type FlowKey, type SlotCounts } from '../io/native/fast-path.js';
import type { HopResolution } from '../io/next-hop.js';
import { macFromText } from '../proto/ethernet/packet.js';
import { BACKEND_SLOTS, type SharedState } from '../pipeline/build.js';
import { SessionField } from '../pipeline/context.js';
import { PROPOSAL_FIELDS, ProposalField } from '../pipeline/fast-learn.js';

/** Flows (and counter slots) the program holds. */
const MAX_FLOWS = 65536;
const REFRESH_MS = 10_000;
/** How long a retired generation's slots are left before reuse: no packet is that slow. */
const GRACE_MS = 1000;
const FOLD_MS = 1000;
/** Bytes a fast-path packet has beyond its inner IP packet: VXLAN and the inner Ethernet header. */
const TUNNEL_PAYLOAD_EXTRA = 8 + 14;
/** IPv4 and UDP headers: an exporter's bytes are its datagrams' payload. */
const IP_UDP_HEADERS = 28;
const EXPORTERS = 4096;
/**
 * Frames a device may transmit later than the fold that counted them (a redirect is flushed at
 * the end of its receive poll); a shortfall beyond this and 1% is frames the device never sent.
 */
const TX_SLACK = 256;
const OWNER_FIELDS = 4;
/** A slot's counts, in the order `folded` keeps what was already folded of them. */
const SLOT_FIELDS = ['packets', 'bytes', 'dfCleared', 'aborted', 'gaps', 'lost', 'resets'] as const satisfies readonly (keyof SlotCounts)[];

/** The fast path's counters, named as the workers name theirs, plus its own. */
const Name = {
  rx: GraphCounter.RX_PACKETS,
  rxBytes: GraphCounter.RX_BYTES,
  forwarded: 'tx.forwarded',
  txPackets: 'tx.packets',
  txBytes: 'tx.bytes',
  direct: 'tx.direct',
  dfCleared: 'mtu.df_cleared',
  nodePackets: 'node.fast-path.packets',
  aborted: 'drop.fast_path_aborted',
  txErrors: 'tx.errors',
  notSent: 'tx.errors_redirect',
  queueFull: 'tx.errors_egress_full',
  installed: 'fast-path.flows_installed',
  refused: 'fast-path.proposals_refused',
  generations: 'fast-path.generations',
  gaps: 'flow-monitor.gaps',
  lost: 'flow-monitor.lost',
  resets: 'flow-monitor.resets',
} as const;

/** An egress device the fast path sends to, and what it was asked to send since the last check. */
interface Egress {
  dev: string;
  redirected: number;
  /** The device's own counts at the last check. */
  tx: DeviceTx;
}

interface Retiring {
  slots: number[];
  since: number;
}

export interface FastPathView {
  hook: 'xdp' | 'tc';
  generation: number;
  /** Flows installed in this generation. */
  flows: number;
  paused: boolean;
}

export class FastPath {
  readonly maps: FastPathMaps;
  /** Counters, exporters, sessions and backend packets, shaped as a worker's. */
  readonly shared: SharedState;
  private readonly counters: Counters;
  private readonly exporters: ExporterTable;
  private readonly sessions: KeyedCounters;
  private readonly backendPackets: Float64Array;
  private readonly slot: Record<keyof typeof Name, number>;

  private generation = 1;
  private paused = false;
  private lastRefresh = Date.now();
  /** This generation's flows (by key text) and their slots. */
  private readonly installed = new Map<string, number>();
  private slotsInUse: number[] = [];
  private retiring: Retiring[] = [];
  private readonly free: number[] = [];
  /** Per slot: exporter (int32), VNI, backend counter slot (-1: none), egress ifindex. */
  private readonly owner = new Int32Array(MAX_FLOWS * OWNER_FIELDS);
  private readonly egress = new Map<number, Egress>();
  /** Devices that did not transmit what the program redirected to them: never used again. */
  private readonly refusing = new Set<number>();
  /** Per slot: what was already folded of each of its SLOT_FIELDS. */
  private readonly folded = new Float64Array(MAX_FLOWS * SLOT_FIELDS.length);
  private readonly read: SlotCounts = { packets: 0, bytes: 0, dfCleared: 0, aborted: 0, gaps: 0, lost: 0, resets: 0 };
  /** A slot's growth since the last fold. */
  private readonly grown: SlotCounts = { packets: 0, bytes: 0, dfCleared: 0, aborted: 0, gaps: 0, lost: 0, resets: 0 };
  /** Per worker: its streams' owner words and the live generation word it reads. */
  private readonly workerStreams = new Map<number, { owners: Int32Array; live: Int32Array }>();
  private readonly key = new Uint8Array(KEY_BYTES);
  private readonly action = new Uint8Array(ACTION_BYTES);
  private readonly timer: NodeJS.Timeout;
  private warnedPut = false;

  /** @throws SocketError when the kernel refuses the maps. */
  constructor(
    private readonly log: Logger,
    readonly hook: 'xdp' | 'tc',
  ) {
    this.maps = new FastPathMaps(MAX_FLOWS, MAX_FLOWS, hook === 'tc' ? 'MG_ERR_TC' : 'MG_ERR_XDP');
    for (let s = MAX_FLOWS - 1; s >= 0; s--) this.free.push(s);
    const layout = new CounterLayout();
    this.slot = Object.fromEntries(Object.entries(Name).map(([k, name]) => [k, layout.slot(name)])) as Record<keyof typeof Name, number>;
    this.counters = Counters.shared(layout);
    const exporters = ExporterTable.allocate(EXPORTERS);
    const sessions = KeyedCounters.allocate(1024, 2);
    const backendPackets = new SharedArrayBuffer(BACKEND_SLOTS * 8);
    this.exporters = new ExporterTable(exporters);
    this.sessions = new KeyedCounters(sessions);
    this.backendPackets = new Float64Array(backendPackets);
    this.shared = { counterNames: layout.names, counters: this.counters.values.buffer as SharedArrayBuffer, exporters, sessions, backendPackets, streamOwners: null };
    this.setLive(this.generation);
    this.timer = setInterval(() => this.tick(), FOLD_MS).unref();
  }

  get view(): FastPathView {
    return { hook: this.hook, generation: this.generation, flows: this.installed.size, paused: this.paused };
  }

  /** Worker `index`'s stream table (from its 'ready'), to mark the streams the program follows. */
  attachWorker(index: number, buffers: StreamOwnerBuffers | null): void {
    if (!buffers) return;
    const w = { owners: new Int32Array(buffers.owners), live: new Int32Array(buffers.live) };
    Atomics.store(w.live, 0, this.paused ? 0 : this.generation | 0);
    this.workerStreams.set(index, w);
  }

  /**
   * Installs the flows worker `worker` proposed under tables `tablesGeneration`, if that is still
   * the running configuration's (`generation`) and each flow's backend has a next hop.
   */
  propose(rows: Int32Array, worker: number, tablesGeneration: number, generation: number, config: Config, hops: readonly HopResolution[], backendSlots: ReadonlyMap<string, number>): void {
    const streams = this.workerStreams.get(worker);
    const names = Object.keys(config.destinations);
    const mtus = new Map<string, number>();
    for (let at = 0; at + PROPOSAL_FIELDS <= rows.length; at += PROPOSAL_FIELDS) {
      const k: FlowKey = {
        outerSrc: rows[at + ProposalField.OUTER_SRC],
        vni: rows[at + ProposalField.VNI],
        src: rows[at + ProposalField.SRC],
        dst: rows[at + ProposalField.DST],
        srcPort: rows[at + ProposalField.SRC_PORT],
        dstPort: rows[at + ProposalField.DST_PORT],
      };
      const text = `${k.outerSrc},${k.vni},${k.src},${k.dst},${k.srcPort},${k.dstPort}`;
      if (this.installed.has(text)) continue;
      const name = names[rows[at + ProposalField.DESTINATION]];
      const d = name === undefined ? undefined : config.destinations[name];
      const backend = d?.backends[rows[at + ProposalField.BACKEND]];
      const hop = backend && hops.find((h) => h.address === backend.address)?.hop;
      const dstMac = hop && macFromText(hop.dstMac);
      const srcMac = hop && macFromText(hop.srcMac);
      if (tablesGeneration !== generation || !d || !backend || !hop || !dstMac || !srcMac || backend.family !== 4 || this.free.length === 0 || this.refusing.has(hop.ifindex)) {
        this.counters.values[this.slot.refused]++;
        continue;
      }
      let mtu = mtus.get(hop.dev);
      if (mtu === undefined) mtus.set(hop.dev, (mtu = Math.min(d.mtu, deviceMtu(hop.dev))));
      const slot = this.free.pop()!;
      const flags = (d.df === 'clear' ? ActionFlag.CLEAR_DF : 0) | (d.ttl === 'decrement' ? ActionFlag.DECREMENT_TTL : 0);
      const stream = rows[at + ProposalField.STREAM];
      const exported = { kind: rows[at + ProposalField.KIND], domain: rows[at + ProposalField.DOMAIN], agent: rows[at + ProposalField.AGENT] };
      encodeKey(k, this.key);
      encodeAction(k, { generation: this.generation, addr: ipv4ToNumber(backend.address), port: backend.port, mtu, dstMac, srcMac, ifindex: hop.ifindex, slot, flags, export: exported }, this.action);
      this.maps.forgetSequence(slot);
      try {
        this.maps.put(this.key, this.action);
      } catch (err) {
        this.free.push(slot);
        this.counters.values[this.slot.refused]++;
        if (!this.warnedPut) this.log.warn({ err: (err as Error).message }, 'fast path: a flow could not be installed; its packets keep the normal path');
        this.warnedPut = true;
        continue;
      }
      if (stream >= 0 && streams && stream < streams.owners.length) Atomics.store(streams.owners, stream, this.generation | 0);
      const o = slot * OWNER_FIELDS;
      this.owner[o] = k.src;
      this.owner[o + 1] = k.vni;
      this.owner[o + 2] = backendSlots.get(`${name}/${backend.text}`) ?? -1;
      this.owner[o + 3] = hop.ifindex;
      if (!this.egress.has(hop.ifindex)) this.egress.set(hop.ifindex, { dev: hop.dev, redirected: 0, tx: deviceTx(hop.dev) });
      this.installed.set(text, slot);
      this.slotsInUse.push(slot);
      this.counters.values[this.slot.installed]++;
    }
  }

  /** Starts a new generation: every installed flow goes back to the normal path until it learns again. */
  invalidate(): void {
    this.generation = this.generation === 0xffffffff ? 1 : this.generation + 1;
    if (!this.paused) this.setLive(this.generation);
    this.retiring.push({ slots: this.slotsInUse, since: Date.now() });
    this.slotsInUse = [];
    this.installed.clear();
    this.lastRefresh = Date.now();
    this.counters.values[this.slot.generations]++;
  }

  /** Off while a trace runs: every packet takes the traced path. */
  pause(): void {
    this.paused = true;
    this.setLive(0);
  }

  /**
   * On again, in a new generation: while off, the flows' datagrams took the normal path, which
   * followed their streams, so neither side's sequence holds for the flows as installed.
   */
  resume(): void {
    this.paused = false;
    this.invalidate();
  }

  /** The generation the program runs (0: off), and the one the workers compare their streams with. */
  private setLive(generation: number): void {
    this.maps.generation = generation;
    for (const w of this.workerStreams.values()) Atomics.store(w.live, 0, generation | 0);
  }

  /** The counters with every slot folded in, by name. */
  snapshot(): Record<string, number> {
    this.fold();
    return this.counters.snapshot();
  }

  /** Switches the program's fast path off and folds the last counts. */
  close(): void {
    clearInterval(this.timer);
    this.setLive(0);
    this.fold();
    this.maps.close();
  }

  private tick(): void {
    const now = Date.now();
    this.fold(now);
    this.checkEgress();
    if (now - this.lastRefresh >= REFRESH_MS) this.invalidate();
  }

  /**
   * Redirected frames leave no trace of their own once they are out of the program. A device with
   * its queue full drops some and counts them (tx_dropped): with no send to refuse, those count
   * as transmit errors here, as a refused send would on the normal path. A device that cannot
   * take redirected frames at all (a veth whose peer runs no NAPI, a NIC without XDP transmit
   * queues) drops them without counting: what was redirected to it is then more than it sent and
   * dropped, and it is not used again.
   */
  private checkEgress(): void {
    for (const [ifindex, e] of this.egress) {
      const now = deviceTx(e.dev);
      const sent = now.packets - e.tx.packets;
      const dropped = Math.min(now.dropped - e.tx.dropped, e.redirected);
      const redirected = e.redirected;
      const shortfall = redirected - sent - dropped;
      e.tx = now;
      e.redirected = 0;
      if (dropped > 0) {
        this.counters.values[this.slot.txErrors] += dropped;
        this.counters.values[this.slot.queueFull] += dropped;
      }
      if (shortfall <= Math.max(TX_SLACK, redirected / 100) || this.refusing.has(ifindex)) continue;
      this.refusing.add(ifindex);
      this.counters.values[this.slot.txErrors] += shortfall;
      this.counters.values[this.slot.notSent] += shortfall;
      this.log.error(
        { device: e.dev, redirected, sent, dropped, lost: shortfall },
        `fast path: ${e.dev} did not transmit the frames redirected to it, so its flows keep the normal path from now on${this.hook === 'xdp' ? ' (from XDP, a veth takes them only when its peer has GRO on or an XDP program; a NIC needs XDP transmit queues)' : ''}`,
      );
      this.invalidate();
    }
  }

  /**
   * Adds what every live or retiring slot counted since the last fold to the shared counters,
   * exporters, sessions and backends; frees slots past their grace.
   */
  fold(now = Date.now()): void {
    for (const s of this.slotsInUse) this.foldSlot(s, now);
    for (const r of this.retiring) for (const s of r.slots) this.foldSlot(s, now);
    while (this.retiring.length > 0 && now - this.retiring[0].since >= GRACE_MS) this.free.push(...this.retiring.shift()!.slots);
  }

  private foldSlot(s: number, now: number): void {
    const c = this.maps.read(s, this.read);
    const f = s * SLOT_FIELDS.length;
    for (let k = 0; k < SLOT_FIELDS.length; k++) {
      const field = SLOT_FIELDS[k];
      this.grown[field] = c[field] - this.folded[f + k];
      this.folded[f + k] = c[field];
    }
    // Gaps count datagrams the program then left to the normal path too (templates, too long).
    const { packets, bytes, dfCleared, aborted, gaps, lost, resets } = this.grown;
    if (packets === 0 && aborted === 0 && gaps === 0 && resets === 0) return;

    const v = this.counters.values;
    const n = this.slot;
    this.counters.beginBatch();
    v[n.rx] += packets + aborted;
    v[n.aborted] += aborted;
    v[n.rxBytes] += bytes + TUNNEL_PAYLOAD_EXTRA * packets;
    v[n.forwarded] += packets;
    v[n.txPackets] += packets;
    v[n.txBytes] += bytes;
    v[n.direct] += packets;
    v[n.dfCleared] += dfCleared;
    v[n.nodePackets] += packets;
    v[n.gaps] += gaps;
    v[n.lost] += lost;
    v[n.resets] += resets;
    this.counters.endBatch();

    const row = this.exporters.row4(this.owner[s * OWNER_FIELDS]);
    if (row >= 0) {
      const stats = this.exporters.stats;
      const base = ExporterTable.base(row);
      stats[base + ExporterField.PACKETS] += packets;
      stats[base + ExporterField.BYTES] += bytes - IP_UDP_HEADERS * packets;
      stats[base + ExporterField.GAPS] += gaps;
      stats[base + ExporterField.LOST] += lost;
      stats[base + ExporterField.RESETS] += resets;
      if (packets > 0) stats[base + ExporterField.LAST_SEEN_MS] = now;
    }
    const session = this.sessions.base(this.owner[s * OWNER_FIELDS + 1]);
    if (session >= 0) {
      this.sessions.values[session + SessionField.PACKETS] += packets;
      this.sessions.values[session + SessionField.BYTES] += bytes + TUNNEL_PAYLOAD_EXTRA * packets;
    }
    const o = s * OWNER_FIELDS;
    const backend = this.owner[o + 2];
    if (backend >= 0) this.backendPackets[backend] += packets;
    const egress = this.egress.get(this.owner[o + 3]);
    if (egress) egress.redirected += packets;
  }
}

interface DeviceTx {
  packets: number;
  dropped: number;
}

/** Frames the device has sent and dropped, as the kernel counts them (0 when it is gone). */
function deviceTx(dev: string): DeviceTx {
  const read = (what: string) => {
    try {
      return Number(readFileSync(`/sys/class/net/${dev}/statistics/${what}`, 'utf8')) || 0;
    } catch {
      return 0;
    }
  };
  return { packets: read('tx_packets'), dropped: read('tx_dropped') };
}

/** The device's MTU: frames longer than it would be dropped by the device, so they keep the normal path. */
function deviceMtu(dev: string): number {
  try {
    return Number(readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8')) || 1500;
  } catch {
    return 1500;
  }
}
