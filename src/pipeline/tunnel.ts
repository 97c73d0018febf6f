/**
 * Where every mirrored packet enters once its outer headers are known (from a capture or from the
 * receive socket): the outer-source check (`listen.sources`), then the tunnel decoder chosen by
 * UDP port from a table, not an if-chain.
 */
import { defineNode } from '../core/node.js';
import { numberToIpv4 } from '../core/prefix-set.js';
import type { PacketVector } from '../core/vector.js';
import { Tunnel } from '../control/tables.js';
import { type PipelineContext, PipelineNode } from './context.js';

const spec = defineNode({
  name: 'tunnel-input',
  next: ['geneve-decap', 'vxlan-decap'],
  errors: {
    source_not_allowed: 'outer source not in listen.sources',
    not_tunnel_port: 'UDP to a port that carries no tunnel',
  },
});

export class TunnelInput extends PipelineNode<typeof spec> {
  constructor(ctx: PipelineContext) {
    super(spec, ctx);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const { sources, tunnelPorts } = this.ctx.tables;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      if (sources !== null && !sources.has4(vec.outerSrc[i])) {
        this.drop(i, e.source_not_allowed);
        continue;
      }
      const tunnel = tunnelPorts[vec.outerDstPort[i]];
      if (tunnel === Tunnel.VXLAN) this.next(i, n['vxlan-decap']);
      else if (tunnel === Tunnel.GENEVE) this.next(i, n['geneve-decap']);
      else this.drop(i, e.not_tunnel_port);
    }
  }

  override describe(vec: PacketVector, i: number): string {
    return `from ${numberToIpv4(vec.outerSrc[i])} to port ${vec.outerDstPort[i]}`;
  }
}
