/**
 * GENEVE decapsulation (a Gateway Load Balancer endpoint as mirror target): options skipped by
 * length, only Ethernet payloads accepted, same session check as VXLAN.
 */
import { defineNode, Node } from '../../core/node.js';
import type { PacketVector } from '../../core/vector.js';
import { SessionField, type PipelineContext } from '../../pipeline/context.js';
import { Decode } from '../result.js';
import * as geneve from './packet.js';

const spec = defineNode({
  name: 'geneve-decap',
  next: ['inner-ethernet'],
  errors: {
    geneve_truncated: 'GENEVE header or options truncated',
    geneve_malformed: 'GENEVE version not 0 (RFC 8926)',
    geneve_not_ethernet: 'GENEVE payload is not Ethernet (protocol type not 0x6558)',
    geneve_unknown_vni: 'GENEVE VNI not configured in sessions',
  },
});

export class GeneveDecap extends Node<typeof spec> {
  private readonly ctx: PipelineContext;
  private readonly h = geneve.create();
  constructor(ctx: PipelineContext) {
    super(spec);
    this.ctx = ctx;
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const sessions = this.ctx.tables.sessions;
    const counters = this.ctx.sessions;
    const h = this.h;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const r = geneve.decode(vec.data[i], vec.start[i], vec.end[i], h);
      if (r !== Decode.OK) {
        this.drop(i, r === Decode.TRUNCATED ? e.geneve_truncated : e.geneve_malformed);
        continue;
      }
      vec.vni[i] = h.vni;
      if (h.protocolType !== geneve.PROTOCOL_ETHERNET) {
        this.drop(i, e.geneve_not_ethernet);
        continue;
      }
      if (sessions !== null && !sessions.has(h.vni)) {
        this.drop(i, e.geneve_unknown_vni);
        continue;
      }
      const row = counters.base(h.vni);
      if (row >= 0) {
        counters.values[row + SessionField.PACKETS]++;
        counters.values[row + SessionField.BYTES] += vec.end[i] - vec.start[i];
      }
      vec.start[i] += geneve.headerLength(h);
      this.next(i, n['inner-ethernet']);
    }
  }

  override describe(vec: PacketVector, i: number): string {
    return `vni ${vec.vni[i]}`;
  }
}
