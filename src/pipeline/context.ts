/**
 * What every node of one pipeline shares: the current tables (swapped whole on reload), the
 * clock of the batch, and the transmit backend.
 */
import type { Tables } from '../control/tables.js';
import { Node, type NodeSpec } from '../core/node.js';
import type { KeyedCounters } from '../core/keyed-counters.js';
import type { Sink } from '../io/sink.js';
import type { FastProposals } from './fast-learn.js';

export interface PipelineContext {
  tables: Tables;
  /** Milliseconds, monotonic, set once per batch. */
  nowMs: number;
  sink: Sink;
  /** Packets selected per backend, by the backend's counter slot (shared with the main thread). */
  backendPackets: Float64Array;
  /** Packets and bytes per mirror session (VNI). */
  sessions: KeyedCounters;
  /** Flows proposed to the XDP fast path during the batch; null when it is off. */
  fastProposals: FastProposals | null;
}

/** Fields of a session row in `sessions`. */
export const SessionField = { PACKETS: 0, BYTES: 1 } as const;

/** Counts a packet of `bytes` for mirror session `vni`. */
export function countSession(ctx: PipelineContext, vni: number, bytes: number): void {
  const row = ctx.sessions.base(vni);
  if (row >= 0) {
    ctx.sessions.values[row + SessionField.PACKETS]++;
    ctx.sessions.values[row + SessionField.BYTES] += bytes;
  }
}

/** A node that reads the pipeline's shared context (tables, clock, egress). */
export abstract class PipelineNode<S extends NodeSpec> extends Node<S> {
  protected readonly ctx: PipelineContext;

  constructor(spec: S, ctx: PipelineContext) {
    super(spec);
    this.ctx = ctx;
  }
}
