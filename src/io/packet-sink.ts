/**
 * Packet egress: whole Ethernet frames written to the egress device (AF_PACKET), which skips the
 * kernel's route lookup, netfilter and IP output for every packet. The next hop of each backend
 * comes from the main thread, which reads the kernel's route and neighbour tables (next-hop.ts).
 *
 * The Ethernet header goes into the 14 bytes in front of the IP header, which by now hold the
 * mirrored frame's own Ethernet header; a packet built at the start of its slot (a fragment, a
 * template) is first moved up by 14 bytes. Backends without a next hop, and packets outside the
 * arena (a reassembled datagram), take the raw IP path.
 *
 * Frames written past the kernel never use its neighbour entries, so the kernel would neither
 * confirm them nor notice a next hop's changed MAC (an appliance failing over without a
 * gratuitous ARP), and a stale entry is never garbage-collected on a host with few neighbours.
 * So every few seconds one packet per next hop takes the raw path: the kernel uses the entry,
 * probes it when stale, and a changed address reaches us through the next-hop watcher.
 */
import type { Tables } from '../control/tables.js';
import type { PacketVector } from '../core/vector.js';
import { macFromText } from '../proto/ethernet/packet.js';
import { PacketSender } from './native/index.js';
import type { HopResolution } from './next-hop.js';
import { RawSink } from './raw-sink.js';
import { accountSend, type SendResult, type Sink } from './sink.js';

const ETH_HEADER = 14;
/** How often each next hop sends one packet through the kernel (see above). */
const CONFIRM_INTERVAL_MS = 5000;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;

/** Frames queued for one device, sent with one sendmmsg per batch. */
class DeviceQueue {
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  n = 0;
  constructor(readonly sender: PacketSender, capacity: number) {
    this.offsets = new Uint32Array(capacity);
    this.lengths = new Uint32Array(capacity);
  }
}

interface Hop {
  queue: DeviceQueue;
  /** Destination MAC, source MAC, EtherType. */
  header: Uint8Array;
  /** When (performance.now()) the next packet for this hop takes the raw path. */
  confirmDueMs: number;
}

export class PacketSink implements Sink {
  readonly name = 'packet';
  private readonly raw: RawSink;
  private readonly capacity: number;
  private readonly queues = new Map<number, DeviceQueue>();
  private queueList: DeviceQueue[] = [];
  private hops = new Map<string, Hop>();
  /** Per destination and backend index, its hop (null: raw IP path); rebuilt on a change. */
  private hopOf: (Hop | null)[][] = [];
  private bound: Tables | null = null;
  private readonly confirmIntervalMs: number;

  constructor(capacity: number, opts: { confirmIntervalMs?: number } = {}) {
    this.capacity = capacity;
    this.raw = new RawSink(capacity);
    this.confirmIntervalMs = opts.confirmIntervalMs ?? CONFIRM_INTERVAL_MS;
  }

  setNextHops(resolutions: readonly HopResolution[]): void {
    const hops = new Map<string, Hop>();
    const used = new Set<number>();
    for (const r of resolutions) {
      const dstMac = r.hop && macFromText(r.hop.dstMac);
      const srcMac = r.hop && macFromText(r.hop.srcMac);
      if (!r.hop || !dstMac || !srcMac) continue; // the raw IP path
      const queue = this.queueFor(r.hop.ifindex);
      if (!queue) continue;
      used.add(r.hop.ifindex);
      const header = new Uint8Array(ETH_HEADER);
      header.set(dstMac, 0);
      header.set(srcMac, 6);
      const type = r.address.includes(':') ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
      header[12] = type >>> 8;
      header[13] = type & 0xff;
      // A new hop was just read from the kernel's table, so its entry is fresh: the first
      // confirmation can wait. A known one keeps its schedule, however often others change.
      const confirmDueMs = this.hops.get(r.address)?.confirmDueMs ?? performance.now() + this.confirmIntervalMs;
      hops.set(r.address, { queue, header, confirmDueMs });
    }
    for (const [ifindex, q] of this.queues) {
      if (used.has(ifindex)) continue;
      q.sender.close();
      this.queues.delete(ifindex);
    }
    this.queueList = [...this.queues.values()];
    this.hops = hops;
    this.bound = null;
  }

  private queueFor(ifindex: number): DeviceQueue | null {
    let q = this.queues.get(ifindex);
    if (q) return q;
    try {
      q = new DeviceQueue(new PacketSender(ifindex), this.capacity);
    } catch {
      // The device went away since the main thread read it (the right to open packet sockets
      // was checked at start): its backends take the raw path until the next look.
      return null;
    }
    this.queues.set(ifindex, q);
    return q;
  }

  private bind(tables: Tables): void {
    this.hopOf = tables.destinations.map((d) => d.backends.map((b) => this.hops.get(b.address) ?? null));
    this.bound = tables;
  }

  send(vec: PacketVector, frame: Uint16Array, count: number, tables: Tables, result: SendResult): void {
    if (tables !== this.bound) this.bind(tables);
    const slotSize = vec.slotSize;
    const arena = vec.arena;
    const now = performance.now();
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const hop = this.hopOf[vec.destination[i]][vec.backend[i]];
      let l3 = vec.l3[i];
      const end = vec.end[i];
      if (hop === null || hop.confirmDueMs <= now || vec.data[i] !== vec.slot[i] || (l3 < ETH_HEADER && end - l3 + ETH_HEADER > slotSize)) {
        if (hop !== null) hop.confirmDueMs = now + this.confirmIntervalMs;
        this.raw.add(vec, i, tables.destinations[vec.destination[i]].backends[vec.backend[i]], result);
        continue;
      }
      if (l3 < ETH_HEADER) {
        const shift = ETH_HEADER - l3;
        vec.slot[i].copyWithin(ETH_HEADER, l3, end);
        vec.end[i] = end + shift;
        if (vec.l4[i] >= 0) vec.l4[i] += shift;
        vec.start[i] = vec.l3[i] = l3 = ETH_HEADER;
      }
      const len = vec.end[i] - l3;
      const offset = i * slotSize + l3 - ETH_HEADER;
      arena.set(hop.header, offset);
      const q = hop.queue;
      q.offsets[q.n] = offset;
      q.lengths[q.n] = len + ETH_HEADER;
      q.n++;
      result.bytes += len;
    }
    this.raw.sendQueued(arena, result);
    const queues = this.queueList;
    for (let j = 0; j < queues.length; j++) {
      const q = queues[j];
      if (q.n === 0) continue;
      const sent = q.sender.send(arena, q.offsets, q.lengths, q.n);
      accountSend(result, sent, q.n, q.sender);
      result.direct += sent;
      q.n = 0;
    }
  }

  flush(): void {}

  close(): void {
    this.raw.close();
    for (const q of this.queues.values()) q.sender.close();
    this.queues.clear();
    this.queueList = [];
  }
}
