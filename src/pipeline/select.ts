/**
 * Backend selection for the matched destination, over the backends health checks keep up:
 * `hash` keeps each exporter and observation domain on one backend through a rendezvous table
 * (losing a backend moves only its share), `round-robin` spreads packets, `replicate` sends a
 * copy to every backend. Copies take spare slots of the vector; with too few left the packet is
 * dropped whole rather than delivered to some backends only.
 *
 * Template safety: before a NetFlow v9 / IPFIX stream's first packet reaches a backend that has
 * not seen its templates (failover, rebalance, a new or restarted collector), the cached
 * templates go there first, as a datagram from the exporter's own address and port.
 */
import { defineNode } from '../core/node.js';
import { combine, hash16, mix32, TABLE_SIZE } from '../core/hash.js';
import type { PacketVector } from '../core/vector.js';
import { Balance, type Destination } from '../control/tables.js';
import type { FlowState } from '../flow/state.js';
import { readI32, readU16, readU32, writeU16, writeU32 } from '../proto/bytes.js';
import { checksum } from '../proto/checksum.js';
import * as ip4 from '../proto/ipv4/packet.js';
import * as ip6 from '../proto/ipv6/packet.js';
import * as udp from '../proto/udp/packet.js';
import { type PipelineContext, PipelineNode } from './context.js';

const spec = defineNode({
  name: 'select',
  next: ['dnat', 'fast-learn'],
  errors: {
    family_mismatch: 'packet and destination backends are of different IP versions',
    no_buffer: 'no spare buffer left in the batch for a copy or fragment',
    all_backends_down: 'every backend of the destination is down and whenAllDown is drop',
    sampled_out: 'not kept by the destination\'s 1-in-N sampling',
  },
  counters: {
    templates_sent: 'template datagrams sent ahead of a stream moving to a backend',
    templates_unsent: 'template datagrams that could not be built (no buffer, too big)',
    copies_unsent: 'replicas not made: the batch ran out of spare buffers',
  },
});

/** Backends per destination whose template delivery is tracked per stream. */
const TRACKED_BACKENDS = 16;
const V9 = 9;
const IPFIX = 10;

export class Select extends PipelineNode<typeof spec> {
  private readonly flows: FlowState;
  /** Per stream and backend index: the backend token its templates were delivered under. */
  private readonly delivered: Int32Array;

  constructor(ctx: PipelineContext, flows: FlowState) {
    super(spec, ctx);
    this.flows = flows;
    this.delivered = new Int32Array(flows.streams.capacity * TRACKED_BACKENDS);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const destinations = this.ctx.tables.destinations;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const d = destinations[vec.destination[i]];
      if (d.family !== vec.family[i]) {
        this.drop(i, e.family_mismatch);
        continue;
      }
      if (d.sample > 1 && ++d.sampleCounter % d.sample !== 0) {
        this.drop(i, e.sampled_out);
        continue;
      }
      if (d.balance === Balance.REPLICATE) {
        this.replicate(vec, i, d);
        continue;
      }
      const b = d.balance === Balance.HASH ? d.hashTable[this.key(vec, i) & (TABLE_SIZE - 1)] : this.nextRoundRobin(d);
      if (b < 0) {
        this.drop(i, e.all_backends_down);
        continue;
      }
      this.deliver(vec, i, d, b);
    }
  }

  /** Key for stickiness: the exporter, and its observation domain when the datagram named one. */
  private key(vec: PacketVector, i: number): number {
    const h = vec.family[i] === 4 ? mix32(readI32(vec.data[i], vec.l3[i] + 12)) : hash16(vec.data[i], vec.l3[i] + 8);
    const s = vec.stream[i];
    return s < 0 ? h : combine(h, this.flows.streams.domainOf(s));
  }

  private nextRoundRobin(d: Destination): number {
    const n = d.backends.length;
    for (let tries = 0; tries < n; tries++) {
      const b = d.rr;
      d.rr = b + 1 === n ? 0 : b + 1;
      if (d.eligible[b] === 1) return b;
    }
    return -1;
  }

  private replicate(vec: PacketVector, i: number, d: Destination): void {
    const { e } = this.spec;
    let first = -1;
    let copies = 0;
    for (let b = 0; b < d.backends.length; b++) {
      if (d.eligible[b] === 1) {
        if (first < 0) first = b;
        else copies++;
      }
    }
    if (first < 0) {
      this.drop(i, e.all_backends_down);
      return;
    }
    if (vec.capacity - vec.count < copies) {
      this.drop(i, e.no_buffer);
      return;
    }
    this.deliver(vec, i, d, first);
    for (let b = first + 1; b < d.backends.length; b++) {
      if (d.eligible[b] !== 1) continue;
      const copy = vec.clone(i);
      if (copy < 0) this.count(this.spec.c.copies_unsent); // template datagrams took the spares
      else this.deliver(vec, copy, d, b);
    }
  }

  /** Sends packet `i` on to DNAT toward backend `b`, templates first when that backend needs them. */
  private deliver(vec: PacketVector, i: number, d: Destination, b: number): void {
    vec.backend[i] = b;
    const slot = d.backends[b].counterSlot;
    if (slot >= 0) this.ctx.backendPackets[slot]++;
    const s = vec.stream[i];
    if (s >= 0 && b < TRACKED_BACKENDS) {
      const protocol = this.flows.streams.protocolOf(s);
      const k = s * TRACKED_BACKENDS + b;
      if ((protocol === V9 || protocol === IPFIX) && this.delivered[k] !== d.tokens[b]) {
        // A datagram that carries templates itself brings the backend up to date.
        if (this.carriesTemplates(vec, i, protocol) || !this.flows.templates.has(s) || this.sendTemplates(vec, i, s, protocol)) {
          if (this.flows.templates.has(s)) this.delivered[k] = d.tokens[b];
        }
      }
    }
    this.next(i, this.onward());
  }

  /** DNAT, by way of learning for the XDP fast path when it is on. */
  private onward(): number {
    return this.ctx.tables.fastPath ? this.spec.n['fast-learn'] : this.spec.n.dnat;
  }

  private carriesTemplates(vec: PacketVector, i: number, protocol: number): boolean {
    const buf = vec.data[i];
    const end = vec.end[i];
    let q = vec.l4[i] + udp.HEADER_LENGTH + (protocol === V9 ? 20 : 16);
    while (q + 4 <= end) {
      const id = readU16(buf, q);
      const len = readU16(buf, q + 2);
      if (protocol === V9 ? id <= 1 : id === 2 || id === 3) return true;
      if (len < 4) return false;
      q += len;
    }
    return false;
  }

  /**
   * Builds a template-only datagram from the stream's cache with packet `i`'s IP and UDP headers
   * and export header (same exporter, ports, domain, time) and sends it ahead of `i`.
   */
  private sendTemplates(vec: PacketVector, i: number, s: number, protocol: number): boolean {
    const { c } = this.spec;
    const templates = this.flows.templates.list(s);
    const src = vec.data[i];
    const l3 = vec.l3[i];
    const head = vec.l4[i] + udp.HEADER_LENGTH - l3; // IP + UDP headers
    const exportHeader = protocol === V9 ? 20 : 16;
    let size = head + exportHeader + 8; // two set headers at most
    for (const t of templates) size += t.bytes.length + 3;
    const j = size <= vec.slotSize && size <= 0xffff ? vec.alloc() : -1;
    if (j < 0) {
      this.count(c.templates_unsent);
      return false;
    }
    const out = vec.slot[j];
    src.copy(out, 0, l3, l3 + head + exportHeader);
    let q = head + exportHeader;
    let records = 0;
    // One set per template kind: templates, then options templates.
    for (const options of [false, true]) {
      const setId = protocol === V9 ? (options ? 1 : 0) : options ? 3 : 2;
      const start = q;
      q += 4;
      for (const t of templates) {
        if (t.setId !== setId) continue;
        out.set(t.bytes, q);
        q += t.bytes.length;
        records++;
      }
      if (q === start + 4) {
        q = start;
        continue;
      }
      while ((q - start) & 3) out[q++] = 0; // RFC 3954 §5.3 / RFC 7011 §3.3.1 padding
      writeU16(out, start, setId);
      writeU16(out, start + 2, q - start);
    }
    const flowOff = head;
    if (protocol === V9) {
      writeU16(out, flowOff + 2, records);
      // v9 numbers export packets (RFC 3954 §5.1): the extra datagram takes the number before the
      // data packet's, so the collector sees consecutive numbers, not a loss.
      writeU32(out, flowOff + 12, (readU32(out, flowOff + 12) - 1) >>> 0);
    } else writeU16(out, flowOff + 2, q - flowOff); // IPFIX counts data records: none here
    const udpOff = vec.l4[i] - l3;
    writeU16(out, udpOff + udp.Field.LENGTH, q - udpOff);
    if (vec.family[i] === 4) {
      writeU16(out, ip4.Field.TOTAL_LENGTH, q);
      writeU16(out, ip4.Field.ID, (readU16(out, ip4.Field.ID) + 1) & 0xffff || 1); // not the data packet's ID
      writeU16(out, ip4.Field.FLAGS_OFFSET, readU16(out, ip4.Field.FLAGS_OFFSET) & ip4.FLAG_DF);
      writeU16(out, ip4.Field.CHECKSUM, 0);
      writeU16(out, ip4.Field.CHECKSUM, checksum(out, 0, (out[0] & 0x0f) * 4));
      if (readU16(out, udpOff + udp.Field.CHECKSUM) !== 0) {
        writeU16(out, udpOff + udp.Field.CHECKSUM, 0);
        writeU16(out, udpOff + udp.Field.CHECKSUM, udp.checksum4(out, udpOff, q - udpOff, readU32(out, 12), readU32(out, 16)));
      }
    } else {
      writeU16(out, ip6.PAYLOAD_LENGTH_OFFSET, q - ip6.HEADER_LENGTH);
      writeU16(out, udpOff + udp.Field.CHECKSUM, 0);
      writeU16(out, udpOff + udp.Field.CHECKSUM, udp.checksum6(out, 0, udpOff, q - udpOff));
    }
    vec.copyMeta(i, j);
    vec.start[j] = 0;
    vec.l3[j] = 0;
    vec.l4[j] = udpOff;
    vec.end[j] = q;
    this.count(c.templates_sent);
    this.next(j, this.onward());
    return true;
  }

  override describe(vec: PacketVector, i: number): string {
    const d = this.ctx.tables.destinations[vec.destination[i]];
    const b = vec.backend[i] >= 0 ? d.backends[vec.backend[i]].text : '-';
    return `destination ${d.name} backend ${b}`;
  }
}
