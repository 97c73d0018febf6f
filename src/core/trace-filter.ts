/**
 * Filters for `mirrorgate trace --filter`: space-separated terms, all of which a packet's trace
 * must satisfy. `drop` (dropped anywhere), `drop:REASON`, `sent`, `node:NAME` (passed that node),
 * anything else is a substring of some step's detail (an address, "vni 123", "rule netflow").
 */
import type { PacketTrace } from './trace.js';

export type TraceFilter = (t: PacketTrace) => boolean;

export function parseTraceFilter(text: string | undefined): TraceFilter {
  const terms = (text ?? '').split(/\s+/).filter(Boolean);
  const tests = terms.map((term): TraceFilter => {
    if (term === 'drop') return (t) => t.steps.some((s) => s.verdict.startsWith('drop:'));
    if (term === 'sent') return (t) => t.steps.some((s) => s.verdict === 'sent');
    if (term.startsWith('drop:')) return (t) => t.steps.some((s) => s.verdict === term);
    if (term.startsWith('node:')) {
      const name = term.slice(5);
      return (t) => t.steps.some((s) => s.node === name);
    }
    return (t) => t.steps.some((s) => s.detail.includes(term));
  });
  return (t) => tests.every((f) => f(t));
}
