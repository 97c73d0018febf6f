/**
 * Learning for the XDP fast path (src/gateway/fast-path.ts): after backend selection, and before
 * DNAT rewrites the destination, every packet to a destination whose treatment never varies is
 * proposed to the main thread as a flow the XDP program may forward itself. The key is what
 * decided the packet's fate (outer source, VNI, inner addresses and ports); the main thread adds
 * the action. A flow is proposed at most once per PROPOSE_INTERVAL_MS, so a flow the main thread
 * turns down (no next hop yet) costs a message a second, not one per batch.
 *
 * The program must be able to follow the sequence of the flow's export stream, which the normal
 * path no longer sees: NetFlow v5 and v9, and sFlow from an IPv4 agent. An IPFIX flow stays on
 * the normal path (its sequence counts records, which only templates tell apart).
 */
import { Tunnel } from '../control/tables.js';
import { defineNode } from '../core/node.js';
import { mix32 } from '../core/hash.js';
import { FAST_UNFOLLOWED } from '../flow/exporters.js';
import type { FlowState } from '../flow/state.js';
import { ExportKind } from '../io/native/fast-path.js';
import type { PacketVector } from '../core/vector.js';
import { readI32 } from '../proto/bytes.js';
import * as ip4 from '../proto/ipv4/packet.js';
import { type PipelineContext, PipelineNode } from './context.js';
import { PROTO_UDP } from './l4.js';

const spec = defineNode({
  name: 'fast-learn',
  next: ['dnat'],
  errors: {},
  counters: {
    proposed: 'flows proposed to the XDP fast path',
  },
});

/** Int32 fields of a proposal row. */
export const ProposalField = {
  OUTER_SRC: 0, VNI: 1, SRC: 2, DST: 3, SRC_PORT: 4, DST_PORT: 5, DESTINATION: 6, BACKEND: 7,
  /** The export stream: this worker's index of it (-1: none), ExportKind, domain, sFlow agent. */
  STREAM: 8, KIND: 9, DOMAIN: 10, AGENT: 11,
} as const;
export const PROPOSAL_FIELDS = 12;
const PROPOSE_INTERVAL_MS = 1000;
/** Remembered proposals (a direct-mapped table; a collision only proposes a flow early). */
const RECENT = 4096;

/** Flows proposed during a batch, for the worker to post; room for every packet of a batch. */
export class FastProposals {
  readonly rows: Int32Array;
  count = 0;
  private readonly recentKey = new Int32Array(RECENT);
  private readonly recentMs = new Float64Array(RECENT).fill(-Infinity);

  constructor(readonly capacity: number) {
    this.rows = new Int32Array(capacity * PROPOSAL_FIELDS);
  }

  /** The rows so far, copied, and none left; null when there were none. */
  take(): Int32Array | null {
    if (this.count === 0) return null;
    const out = this.rows.slice(0, this.count * PROPOSAL_FIELDS);
    this.count = 0;
    return out;
  }

  /** True when the flow was due for (another) proposal; it is then marked proposed at `nowMs`. */
  due(hash: number, nowMs: number): boolean {
    const at = hash & (RECENT - 1);
    if (this.recentKey[at] === hash && nowMs - this.recentMs[at] < PROPOSE_INTERVAL_MS) return false;
    this.recentKey[at] = hash;
    this.recentMs[at] = nowMs;
    return true;
  }
}

export class FastLearn extends PipelineNode<typeof spec> {
  constructor(
    ctx: PipelineContext,
    private readonly flows: FlowState,
  ) {
    super(spec, ctx);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, c } = this.spec;
    const t = this.ctx.tables;
    const p = this.ctx.fastProposals;
    if (!t.fastPath || p === null) {
      for (let k = 0; k < count; k++) this.next(frame[k], n.dnat);
      return;
    }
    const streams = this.flows.streams;
    let proposed = 0;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const l3 = vec.l3[i];
      const s = vec.stream[i];
      const kind = s < 0 ? ExportKind.NONE : streams.fastKind[s];
      // What the program forwards: IPv4 without options, UDP, from a VXLAN session.
      if (
        kind !== FAST_UNFOLLOWED &&
        t.destinations[vec.destination[i]].fastEligible &&
        vec.family[i] === 4 &&
        vec.protocol[i] === PROTO_UDP &&
        vec.l4[i] === l3 + ip4.MIN_HEADER_LENGTH &&
        t.tunnelPorts[vec.outerDstPort[i]] === Tunnel.VXLAN
      ) {
        const buf = vec.data[i];
        const src = readI32(buf, l3 + ip4.Field.SRC);
        const dst = readI32(buf, l3 + ip4.Field.DST);
        const ports = (vec.srcPort[i] << 16) | vec.dstPort[i];
        const hash = mix32(vec.outerSrc[i] ^ mix32(src ^ mix32(dst ^ mix32(ports ^ vec.vni[i]))));
        if (p.count < p.capacity && p.due(hash, this.ctx.nowMs)) {
          const r = p.rows;
          const at = p.count++ * PROPOSAL_FIELDS;
          r[at + ProposalField.OUTER_SRC] = vec.outerSrc[i];
          r[at + ProposalField.VNI] = vec.vni[i];
          r[at + ProposalField.SRC] = src;
          r[at + ProposalField.DST] = dst;
          r[at + ProposalField.SRC_PORT] = vec.srcPort[i];
          r[at + ProposalField.DST_PORT] = vec.dstPort[i];
          r[at + ProposalField.DESTINATION] = vec.destination[i];
          r[at + ProposalField.BACKEND] = vec.backend[i];
          r[at + ProposalField.STREAM] = s;
          r[at + ProposalField.KIND] = kind;
          r[at + ProposalField.DOMAIN] = s < 0 ? 0 : streams.domainOf(s);
          r[at + ProposalField.AGENT] = s < 0 ? 0 : streams.agentOf(s);
          proposed++;
        }
      }
      this.next(i, n.dnat);
    }
    if (proposed) this.count(c.proposed, proposed);
  }
}
