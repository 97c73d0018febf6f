/**
 * The exporter allowlist: only inner sources the operator listed reach the rules. A binary search
 * over merged ranges, so 100k entries cost about 17 comparisons.
 */
import { defineNode } from '../core/node.js';
import type { PacketVector } from '../core/vector.js';
import { readI32 } from '../proto/bytes.js';
import { type PipelineContext, PipelineNode } from './context.js';

const spec = defineNode({
  name: 'allowlist',
  next: ['classify'],
  errors: { exporter_not_allowed: 'inner source not in the exporter allowlist' },
});

export class Allowlist extends PipelineNode<typeof spec> {
  constructor(ctx: PipelineContext) {
    super(spec, ctx);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const set = this.ctx.tables.allowlist;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const ok =
        set === null ||
        (vec.family[i] === 4 ? set.has4(readI32(vec.data[i], vec.l3[i] + 12)) : set.has6(vec.data[i], vec.l3[i] + 8));
      if (ok) this.next(i, n.classify);
      else this.drop(i, e.exporter_not_allowed);
    }
  }
}
