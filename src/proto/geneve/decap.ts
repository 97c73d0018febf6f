/**
 * GENEVE decapsulation, options skipped by length. Two payloads occur: an Ethernet frame (a
 * GENEVE mirror session; same session check as VXLAN), or — behind an AWS Gateway Load Balancer
 * endpoint as mirror target — the IPv4 packet the GWLB received, which is itself the VXLAN mirror
 * copy; its IPv4/UDP headers are stripped here and the VXLAN node checks that session's VNI.
 */
import { defineNode } from '../../core/node.js';
import type { PacketVector } from '../../core/vector.js';
import { countSession, type PipelineContext, PipelineNode } from '../../pipeline/context.js';
import { Decode } from '../result.js';
import * as geneve from './packet.js';
import * as ip4 from '../ipv4/packet.js';
import * as udp from '../udp/packet.js';
import { Tunnel } from '../../control/tables.js';

const spec = defineNode({
  name: 'geneve-decap',
  next: ['vxlan-decap', 'inner-ethernet'],
  errors: {
    geneve_truncated: 'GENEVE header or options truncated',
    geneve_malformed: 'GENEVE version not 0 (RFC 8926)',
    geneve_not_ethernet: 'GENEVE payload is neither Ethernet nor IPv4',
    geneve_unknown_vni: 'GENEVE VNI not configured in sessions',
    geneve_inner_not_vxlan: 'GENEVE carries an IPv4 packet that is not a VXLAN mirror copy',
  },
});

export class GeneveDecap extends PipelineNode<typeof spec> {
  private readonly h = geneve.create();
  constructor(ctx: PipelineContext) {
    super(spec, ctx);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const sessions = this.ctx.tables.sessions;
    const h = this.h;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const r = geneve.decode(vec.data[i], vec.start[i], vec.end[i], h);
      if (r !== Decode.OK) {
        this.drop(i, r === Decode.TRUNCATED ? e.geneve_truncated : e.geneve_malformed);
        continue;
      }
      vec.vni[i] = h.vni;
      if (h.protocolType === geneve.PROTOCOL_IPV4) {
        const vxlanAt = this.vxlanInside(vec.data[i], vec.start[i] + geneve.headerLength(h), vec.end[i]);
        if (vxlanAt < 0) {
          this.drop(i, e.geneve_inner_not_vxlan);
          continue;
        }
        vec.start[i] = vxlanAt;
        this.next(i, n['vxlan-decap']);
        continue;
      }
      if (h.protocolType !== geneve.PROTOCOL_ETHERNET) {
        this.drop(i, e.geneve_not_ethernet);
        continue;
      }
      if (sessions !== null && !sessions.has(h.vni)) {
        this.drop(i, e.geneve_unknown_vni);
        continue;
      }
      countSession(this.ctx, h.vni, vec.end[i] - vec.start[i]);
      vec.start[i] += geneve.headerLength(h);
      this.next(i, n['inner-ethernet']);
    }
  }

  /** Start of the VXLAN header inside an IPv4/UDP mirror copy, or -1. */
  private vxlanInside(buf: Buffer, off: number, end: number): number {
    if (ip4.decode(buf, off, end, this.ip) !== Decode.OK || this.ip.protocol !== udp.PROTOCOL || ip4.isFragment(this.ip)) return -1;
    const u = off + this.ip.headerLength;
    if (udp.decode(buf, u, end, this.udp) !== Decode.OK) return -1;
    if (this.ctx.tables.tunnelPorts[this.udp.dstPort] !== Tunnel.VXLAN) return -1;
    return u + udp.HEADER_LENGTH;
  }

  private readonly ip = ip4.create();
  private readonly udp = udp.create();

  override describe(vec: PacketVector, i: number): string {
    return `vni ${vec.vni[i]}`;
  }
}
