/**
 * A graph node is declared as data (VPP's VLIB_REGISTER_NODE): its name, the nodes it can send a
 * packet to, its drop reasons with a human string each, and its own counters. `defineNode` turns
 * the names into the small numbers the data path uses, with types derived from the declaration.
 */
import type { PacketVector } from './vector.js';

export interface NodeDeclaration<N extends string, E extends string, C extends string> {
  readonly name: string;
  readonly next: readonly N[];
  /** Drop reason → what it means. Reason names are unique across the whole graph. */
  readonly errors: { readonly [K in E]: string };
  /** Extra counters (beyond packets/batches/ns, which every node has) → what they count. */
  readonly counters?: { readonly [K in C]: string };
}

/** Verdict codes: next-node indices below ABSORBED; drops carry DROP plus the reason index. */
export const ABSORBED = 0x7f;
export const DROP = 0x80;

export interface NodeSpec<N extends string = string, E extends string = string, C extends string = string>
  extends NodeDeclaration<N, E, C> {
  /** Next-node name → index used by `Node.next`. */
  readonly n: { readonly [K in N]: number };
  /** Drop reason → index used by `Node.drop`. */
  readonly e: { readonly [K in E]: number };
  /** Counter name → index used by `Node.count`. */
  readonly c: { readonly [K in C]: number };
}

export function defineNode<const N extends string, const E extends string, const C extends string = never>(
  decl: NodeDeclaration<N, E, C>,
): NodeSpec<N, E, C> {
  const index = <K extends string>(names: readonly K[]) =>
    Object.fromEntries(names.map((k, i) => [k, i])) as { [P in K]: number };
  const errors = Object.keys(decl.errors) as E[];
  const counters = Object.keys(decl.counters ?? {}) as C[];
  if (decl.next.length >= ABSORBED) throw new RangeError(`${decl.name}: too many next nodes`);
  if (errors.length >= DROP) throw new RangeError(`${decl.name}: too many drop reasons`);
  return { ...decl, n: index(decl.next), e: index(errors), c: index(counters) };
}

/**
 * What a node may do with a packet while processing its frame; implemented by the graph. Calls are
 * per packet but allocation-free; counting into shared counters happens once per batch.
 */
export interface NodeRuntime {
  next(node: Node, i: number, next: number): void;
  drop(node: Node, i: number, reason: number): void;
  absorb(node: Node, i: number): void;
  count(node: Node, counter: number, n: number): void;
  /** Adds to the received bytes, for a run whose entry did not count them (see Graph.run). */
  receivedBytes(bytes: number): void;
  /** The packet left the graph (handed to egress); for traces. */
  sent(node: Node, i: number): void;
  /** Drops decided outside a batch (timers): `n` packets held earlier, for `reason`. */
  dropCount(node: Node, reason: number, n: number): void;
}

/** Each node implements `process` over a frame of packet indices; `describe` feeds traces. */
export abstract class Node<S extends NodeSpec = NodeSpec> {
  readonly spec: S;
  /** Position in the graph; set when the graph is built. */
  index = -1;
  /** Graph position of each next node, by next index; set when the graph is built. */
  successors: Int32Array = new Int32Array(0);
  /** First global drop-reason slot and counter slots of this node; set when the graph is built. */
  dropBase = 0;
  counterSlots: Int32Array = new Int32Array(0);
  protected rt!: NodeRuntime;

  constructor(spec: S) {
    this.spec = spec;
  }

  attach(rt: NodeRuntime): void {
    this.rt = rt;
  }

  abstract process(vec: PacketVector, frame: Uint16Array, count: number): void;

  /** One line on what this node saw of packet `i`, for `mirrorgate trace`. */
  describe(_vec: PacketVector, _i: number): string {
    return '';
  }

  /** Called when no traffic came for a while and after each batch; for timers (reassembly). */
  tick(_nowMs: number): void {}

  /** Called when a batch has been transmitted: buffers lent to the vector may be reused. */
  endBatch(): void {}

  protected next(i: number, next: number): void {
    this.rt.next(this, i, next);
  }

  protected drop(i: number, reason: number): void {
    this.rt.drop(this, i, reason);
  }

  protected absorb(i: number): void {
    this.rt.absorb(this, i);
  }

  protected count(counter: number, n = 1): void {
    this.rt.count(this, counter, n);
  }

  protected receivedBytes(bytes: number): void {
    this.rt.receivedBytes(bytes);
  }

  protected sent(i: number): void {
    this.rt.sent(this, i);
  }

  protected dropHeld(reason: number, n: number): void {
    this.rt.dropCount(this, reason, n);
  }
}
