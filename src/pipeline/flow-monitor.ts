/**
 * Exporter health: decodes the export header of every selected telemetry datagram (NetFlow
 * v5/v9, IPFIX, sFlow v5) and follows its sequence number per exporter and observation domain,
 * so loss upstream of the gateway (mirror drops, truncation, a lossy path from the router) shows
 * as gaps. It also caches v9/IPFIX templates for template-safe balancing. The gateway is a relay,
 * not a validator: a datagram that does not parse is counted and forwarded all the same.
 *
 * A stream whose flow the fast path's program holds is the program's to follow: the datagrams
 * that still come this way (templates, ones too long for the MTU) were counted there, and the
 * first one after the program lets go starts the sequence afresh here, since those it forwarded
 * went by unseen.
 */
import { defineNode } from '../core/node.js';
import type { PacketVector } from '../core/vector.js';
import { advance, ExporterField, ExporterTable, FAST_UNFOLLOWED, WENT_BACKWARDS } from '../flow/exporters.js';
import { ExportKind } from '../io/native/fast-path.js';
import { createFlowHeaderInfo, decodeFlowHeader, type FlowProtocol } from '../flow/index.js';
import * as ipfix from '../flow/ipfix.js';
import * as netflow9 from '../flow/netflow9.js';
import { createTemplateIterator } from '../flow/template.js';
import type { FlowState } from '../flow/state.js';
import { readI32, readU16 } from '../proto/bytes.js';
import { Decode } from '../proto/result.js';
import { type PipelineContext, PipelineNode } from './context.js';
import { PROTO_UDP } from './l4.js';

const spec = defineNode({
  name: 'flow-monitor',
  next: ['select'],
  errors: {},
  counters: {
    datagrams: 'telemetry datagrams recognised',
    malformed: 'datagrams on flow ports that did not parse (forwarded anyway)',
    gaps: 'sequence gaps (loss upstream of the gateway)',
    lost: 'units missing in gaps (v5 flows, IPFIX records, v9/sFlow datagrams)',
    resets: 'sequence went backwards (exporter restart or reordering)',
    templates_cached: 'templates stored or updated',
    templates_refused: 'templates not cached: cache full',
    streams_full: 'datagrams not tracked: sequence stream table full',
  },
});

/** Collector ports of the flow protocols; a datagram there that does not parse is "malformed". */
export const FLOW_PORTS = new Uint8Array(65536);
for (const p of [2055, 9995, 9996, 4739, 6343]) FLOW_PORTS[p] = 1;

const PROTOCOL_ID: Record<FlowProtocol, number> = { netflow5: 5, netflow9: 9, ipfix: 10, sflow5: 65 };

export class FlowMonitor extends PipelineNode<typeof spec> {
  private readonly flows: FlowState;
  private readonly info = createFlowHeaderInfo();
  private readonly it = createTemplateIterator();
  private readonly tally = new Float64Array(Object.keys(spec.c).length);

  constructor(ctx: PipelineContext, flows: FlowState) {
    super(spec, ctx);
    this.flows = flows;
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, c } = this.spec;
    const { exporters, streams } = this.flows;
    const stats = exporters.stats;
    const info = this.info;
    const t = this.tally;
    const now = Date.now();
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const l4 = vec.l4[i];
      if (vec.protocol[i] !== PROTO_UDP || l4 < 0) {
        this.next(i, n.select);
        continue;
      }
      const buf = vec.data[i];
      const l3 = vec.l3[i];
      const p = l4 + 8;
      const end = vec.end[i];
      const row = vec.family[i] === 4 ? exporters.row4(readI32(buf, l3 + 12)) : exporters.row6(buf, l3 + 8);
      const base = ExporterTable.base(row);
      if (row >= 0) {
        stats[base + ExporterField.PACKETS]++;
        stats[base + ExporterField.BYTES] += end - p;
        stats[base + ExporterField.LAST_SEEN_MS] = now;
      }
      const r = decodeFlowHeader(buf, p, end, info);
      if (info.protocol === null || r === Decode.MALFORMED) {
        if (FLOW_PORTS[vec.dstPort[i]] === 1 || info.protocol !== null) {
          t[c.malformed]++;
          if (row >= 0) stats[base + ExporterField.MALFORMED]++;
        }
        if (info.protocol === null) {
          this.next(i, n.select);
          continue;
        }
      }
      t[c.datagrams]++;
      const s = row < 0 ? -1 : streams.lookup(row, PROTOCOL_ID[info.protocol], info.domain | 0, info.agent | 0);
      if (s < 0) {
        if (row >= 0) t[c.streams_full]++;
        this.next(i, n.select);
        continue;
      }
      vec.stream[i] = s;
      streams.fastKind[s] = this.fastKind(info.protocol);
      let step = info.sequenceStep;
      if (info.protocol === 'netflow9' && info.netflow9.templateFlowSets + info.netflow9.optionsTemplateFlowSets > 0) {
        this.cacheTemplates(s, buf, p, end, false);
      } else if (info.protocol === 'ipfix') {
        if (info.ipfix.templateSets + info.ipfix.optionsTemplateSets > 0) this.cacheTemplates(s, buf, p, end, true);
        step = r === Decode.OK ? this.ipfixRecords(s, buf, p, p + info.ipfix.length) : -1;
      }
      if (this.followedByProgram(s)) {
        this.next(i, n.select);
        continue;
      }
      const gap = advance(streams, s, info.sequence | 0, step); // int32 bits: unboxed
      if (gap > 0) {
        t[c.gaps]++;
        t[c.lost] += gap;
        stats[base + ExporterField.GAPS]++;
        stats[base + ExporterField.LOST] += gap;
      } else if (gap === WENT_BACKWARDS) {
        t[c.resets]++;
        stats[base + ExporterField.RESETS]++;
      }
      this.next(i, n.select);
    }
    for (let k = 0; k < t.length; k++) {
      if (t[k] !== 0) {
        this.count(k, t[k]);
        t[k] = 0;
      }
    }
  }

  /**
   * Whether the fast path's program follows stream `s` in the generation it runs. A stream it
   * followed in an earlier one starts afresh here: the datagrams it forwarded went by unseen.
   */
  private followedByProgram(s: number): boolean {
    const owners = this.flows.fastOwner;
    const owner = owners[s];
    if (owner === 0) return false;
    if (owner === Atomics.load(this.flows.fastLive, 0)) return true;
    Atomics.compareExchange(owners, s, owner, 0);
    this.flows.streams.known[s] = 0;
    return false;
  }

  /** What the fast path's program can follow of the datagram's stream (ExportKind). */
  private fastKind(protocol: FlowProtocol): number {
    if (protocol === 'netflow5') return ExportKind.NETFLOW5;
    if (protocol === 'netflow9') return ExportKind.NETFLOW9;
    if (protocol === 'sflow5' && this.info.sflow5.agentAddressLength === 4) return ExportKind.SFLOW5;
    return FAST_UNFOLLOWED;
  }

  override describe(vec: PacketVector, i: number): string {
    const info = this.info;
    if (info.protocol === null) return 'not telemetry';
    return `${info.protocol} seq ${info.sequence} domain ${info.domain}${vec.stream[i] >= 0 ? ` stream ${vec.stream[i]}` : ''}`;
  }

  private cacheTemplates(s: number, buf: Buffer, p: number, end: number, isIpfix: boolean): void {
    const { c } = this.spec;
    const it = this.it;
    const cache = this.flows.templates;
    if (isIpfix) ipfix.beginTemplates(buf, p, end, it);
    else netflow9.beginTemplates(buf, p, end, it);
    while (isIpfix ? ipfix.nextTemplate(it) : netflow9.nextTemplate(it)) {
      const rec = it.record;
      if (isIpfix && rec.fieldCount === 0) {
        cache.withdraw(s, rec.templateId);
        continue;
      }
      const r = cache.put(s, rec.setId, rec.templateId, rec.recordLength, buf, rec.offset, rec.length);
      if (r === 1) this.tally[c.templates_cached]++;
      else if (r < 0) this.tally[c.templates_refused]++;
    }
  }

  /** Data records in an IPFIX message, from the cached templates; -1 when one is unknown. */
  private ipfixRecords(s: number, buf: Buffer, p: number, end: number): number {
    let records = 0;
    for (let q = p + ipfix.HEADER_LENGTH; q + ipfix.SET_HEADER_LENGTH <= end; ) {
      const id = readU16(buf, q);
      const len = readU16(buf, q + 2);
      if (len < ipfix.SET_HEADER_LENGTH) return -1;
      if (id >= ipfix.MIN_DATA_SET_ID) {
        const recordLength = this.flows.templates.recordLength(s, id);
        if (recordLength <= 0) return -1;
        records += Math.floor((len - ipfix.SET_HEADER_LENGTH) / recordLength); // the rest is padding
      }
      q += len;
    }
    return records;
  }
}
