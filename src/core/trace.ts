/**
 * Opt-in per-packet tracing (VPP's `trace add` / `show trace`): the next N packets are marked
 * at receive, and every node they pass adds one record naming its verdict and what it saw.
 * Untraced packets pay one flag test per node.
 */
export interface TraceStep {
  node: string;
  /** Next node's name, `drop:<reason>`, or `absorbed` (held for reassembly). */
  verdict: string;
  detail: string;
}

export interface PacketTrace {
  id: number;
  timestampNs: number;
  steps: TraceStep[];
}

export class Tracer {
  private remaining = 0;
  private readonly traces = new Map<number, PacketTrace>();
  private readonly limit: number;

  constructor(limit = 1000) {
    this.limit = limit;
  }

  /** Trace the next `count` packets (bounded by the tracer's limit). */
  arm(count: number): void {
    this.remaining = Math.min(count, this.limit);
  }

  get armed(): boolean {
    return this.remaining > 0;
  }

  /** Claims the next traced packet slot; false when the tracer is not armed. */
  take(id: number, timestampNs: number): boolean {
    if (this.remaining === 0 || this.traces.size >= this.limit) return false;
    this.remaining--;
    this.traces.set(id, { id, timestampNs, steps: [] });
    return true;
  }

  step(id: number, node: string, verdict: string, detail: string): void {
    this.traces.get(id)?.steps.push({ node, verdict, detail });
  }

  /** Returns what was traced so far and forgets it. */
  drain(): PacketTrace[] {
    const out = [...this.traces.values()];
    this.traces.clear();
    return out;
  }
}

/** Renders traces like VPP's `show trace`: one block per packet, one line per node. */
export function formatTraces(traces: readonly PacketTrace[]): string {
  const lines: string[] = [];
  for (const t of traces) {
    lines.push(`Packet ${t.id}`);
    for (const s of t.steps) {
      lines.push(`  ${s.node.padEnd(18)} → ${s.verdict.padEnd(24)} ${s.detail}`.trimEnd());
    }
    lines.push('');
  }
  return lines.join('\n');
}
