/**
 * VXLAN decapsulation: validates the header and accepts only configured sessions (VNIs). AWS
 * picks a random VNI when a mirror session does not set one, so nothing assumes VNI 1.
 */
import { defineNode } from '../../core/node.js';
import type { PacketVector } from '../../core/vector.js';
import { countSession, type PipelineContext, PipelineNode } from '../../pipeline/context.js';
import { Decode } from '../result.js';
import * as vxlan from './packet.js';

const spec = defineNode({
  name: 'vxlan-decap',
  next: ['inner-ethernet'],
  errors: {
    vxlan_truncated: 'VXLAN header truncated',
    vxlan_malformed: 'VXLAN I flag not set (RFC 7348)',
    unknown_vni: 'VNI not configured in sessions',
  },
});

export class VxlanDecap extends PipelineNode<typeof spec> {
  private readonly h = vxlan.create();
  constructor(ctx: PipelineContext) {
    super(spec, ctx);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const sessions = this.ctx.tables.sessions;
    const h = this.h;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const r = vxlan.decode(vec.data[i], vec.start[i], vec.end[i], h);
      if (r !== Decode.OK) {
        this.drop(i, r === Decode.TRUNCATED ? e.vxlan_truncated : e.vxlan_malformed);
        continue;
      }
      vec.vni[i] = h.vni;
      if (sessions !== null && !sessions.has(h.vni)) {
        this.drop(i, e.unknown_vni);
        continue;
      }
      countSession(this.ctx, h.vni, vec.end[i] - vec.start[i]);
      vec.start[i] += vxlan.HEADER_LENGTH;
      this.next(i, n['inner-ethernet']);
    }
  }

  override describe(vec: PacketVector, i: number): string {
    return `vni ${vec.vni[i]}`;
  }
}
