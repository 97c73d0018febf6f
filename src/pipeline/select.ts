/**
 * Backend selection for the matched destination: `hash` keeps each exporter on one backend
 * through a rendezvous table, `round-robin` spreads packets, `replicate` sends a copy to every
 * backend (copies take spare slots of the vector; with too few left the packet is dropped whole
 * rather than delivered to some backends only).
 */
import { defineNode, Node } from '../core/node.js';
import { hash16, mix32, TABLE_SIZE } from '../core/hash.js';
import type { PacketVector } from '../core/vector.js';
import { Balance } from '../control/tables.js';
import { readU32 } from '../proto/bytes.js';
import type { PipelineContext } from './context.js';

const spec = defineNode({
  name: 'select',
  next: ['dnat'],
  errors: {
    family_mismatch: 'packet and destination backends are of different IP versions',
    no_buffer: 'no spare buffer left in the batch for a copy or fragment',
  },
});

export class Select extends Node<typeof spec> {
  private readonly ctx: PipelineContext;
  constructor(ctx: PipelineContext) {
    super(spec);
    this.ctx = ctx;
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
      if (d.balance === Balance.HASH) {
        const key = vec.family[i] === 4 ? mix32(readU32(vec.data[i], vec.l3[i] + 12)) : hash16(vec.data[i], vec.l3[i] + 8);
        vec.backend[i] = d.hashTable[key & (TABLE_SIZE - 1)];
      } else if (d.balance === Balance.ROUND_ROBIN) {
        vec.backend[i] = d.rr;
        d.rr = d.rr + 1 === d.backends.length ? 0 : d.rr + 1;
      } else {
        const copies = d.backends.length - 1;
        if (vec.capacity - vec.count < copies) {
          this.drop(i, e.no_buffer);
          continue;
        }
        vec.backend[i] = 0;
        this.next(i, n.dnat);
        for (let b = 1; b <= copies; b++) {
          const c = vec.clone(i);
          vec.backend[c] = b;
          this.next(c, n.dnat);
        }
        continue;
      }
      this.next(i, n.dnat);
    }
  }

  override describe(vec: PacketVector, i: number): string {
    const d = this.ctx.tables.destinations[vec.destination[i]];
    const b = vec.backend[i] >= 0 ? d.backends[vec.backend[i]].text : '-';
    return `destination ${d.name} backend ${b}`;
  }
}
