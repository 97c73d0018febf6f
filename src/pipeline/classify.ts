/**
 * Rules, first match wins. Candidates come from a per-destination-port index built at compile
 * time (rule order kept), so a packet tests only rules that can match its port. A packet no rule
 * selects is dropped and counted: nothing is forwarded that the operator did not ask for.
 */
import { defineNode } from '../core/node.js';
import type { PacketVector } from '../core/vector.js';
import { intervalOf, type Rule } from '../control/tables.js';
import { SIGN_FLIP } from '../core/prefix-set.js';
import { readI32 } from '../proto/bytes.js';
import { type PipelineContext, PipelineNode } from './context.js';

const spec = defineNode({
  name: 'classify',
  next: ['flow-monitor'],
  errors: { no_rule: 'no rule matched' },
});

function inRanges(ranges: Uint16Array, port: number): boolean {
  for (let j = 0; j < ranges.length; j += 2) if (port >= ranges[j] && port <= ranges[j + 1]) return true;
  return false;
}

export class Classify extends PipelineNode<typeof spec> {
  constructor(ctx: PipelineContext) {
    super(spec, ctx);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const t = this.ctx.tables;
    const rules = t.rules;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const c = t.rulesByDstPort.get(vec.dstPort[i]) ?? t.rulesAnyPort;
      const candidates =
        c.sourceBounds !== null && vec.family[i] === 4
          ? c.bySource[intervalOf(c.sourceBounds, readI32(vec.data[i], vec.l3[i] + 12) ^ SIGN_FLIP)]
          : c.rules;
      let matched = -1;
      for (let c = 0; c < candidates.length; c++) {
        if (matches(rules[candidates[c]], vec, i)) {
          matched = candidates[c];
          break;
        }
      }
      if (matched < 0) {
        this.drop(i, e.no_rule);
        continue;
      }
      vec.rule[i] = matched;
      vec.destination[i] = rules[matched].destination;
      this.next(i, n['flow-monitor']);
    }
  }

  override describe(vec: PacketVector, i: number): string {
    return vec.rule[i] >= 0 ? `rule ${this.ctx.tables.rules[vec.rule[i]].name}` : `proto ${vec.protocol[i]} dport ${vec.dstPort[i]}`;
  }
}

function matches(r: Rule, vec: PacketVector, i: number): boolean {
  if (r.protocol >= 0 && r.protocol !== vec.protocol[i]) return false;
  if (r.dstPorts !== null && (vec.l4[i] < 0 || !inRanges(r.dstPorts, vec.dstPort[i]))) return false;
  if (r.srcPorts !== null && (vec.l4[i] < 0 || !inRanges(r.srcPorts, vec.srcPort[i]))) return false;
  if (r.vnis !== null && !r.vnis.has(vec.vni[i])) return false;
  const buf = vec.data[i];
  const l3 = vec.l3[i];
  if (vec.family[i] === 4) {
    if (r.src !== null && !r.src.has4(readI32(buf, l3 + 12))) return false;
    if (r.dst !== null && !r.dst.has4(readI32(buf, l3 + 16))) return false;
  } else {
    if (r.src !== null && !r.src.has6(buf, l3 + 8)) return false;
    if (r.dst !== null && !r.dst.has6(buf, l3 + 24)) return false;
  }
  return true;
}
