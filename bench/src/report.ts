/** The results document (latest.json) and its Markdown rendering (latest.md). */
import type { NodeCost, PerfSummary, ProfileSummary } from './profile.js';
import { IF, NS, VETH_RING } from './layout.js';
import type { NapiPolicy } from './netns.js';
import type { MachineInfo } from './proc.js';

export interface StepResult {
  system: string;
  step: number;
  targetPps: number;
  durationS: number;
  offered: number;
  delivered: number;
  offeredPps: number;
  deliveredPps: number;
  lossPercent: number;
  kept: number;
  keptPercent: number | null;
  /** Distinct exporter addresses seen at the collector (of 256). */
  sources: number;
  machineCpuPercent: number;
  /**
   * The gateway host's CPU over the step per delivered packet, µs: its processes (utime+stime of
   * all threads) plus the kernel thread receiving on its ingress link (threaded NAPI).
   */
  gatewayCpuUsPerPkt: number | null;
  /** The same in percent of one core, and its two parts. */
  gatewayCpuPercent: number | null;
  gatewayProcessCpuPercent: number | null;
  gatewayRxThreadCpuPercent: number | null;
  genCpuPercent: number;
  sinkCpuPercent: number;
  /** Machine CPU not used by the generator, sink or gateway processes (softirq elsewhere, other work), % of one core. */
  unattributedCpuPercent: number;
  /** Machine load just before the step (other work on the machine), % of the machine. */
  backgroundCpuPercent: number;
  /** CPU other user processes used during the step, % of one core (a disturbed step is measured again). */
  foreignCpuPercent: number;
  attempts: number;
  rssMB: number | null;
  latencyUs: { p50: number; p90: number; p99: number; max: number; mean: number } | null;
  /** Generator: packets refused by its socket / not sent because it fell behind. */
  genRefused: number;
  genBehind: number;
  /** Generator: wake-ups that found more than a veth ring (256 frames) due (sent over the next wake-ups); the most due at once. */
  genStalls?: number;
  genMaxDue?: number;
  /** Datagrams of earlier steps, and datagrams whose length differed. */
  stale: number;
  oddLength: number;
  /** Kernel counters that grew during the step: link drops, UDP buffer overflows ("ns:counter"). */
  lostWhere: Record<string, number>;
  /** mirrorgate's own view of the step (counter deltas). */
  gateway?: {
    rx: number;
    forwarded: number;
    txPackets: number;
    txErrors: number;
    /** Times a full egress queue made it wait and retry. */
    busyWaits: number;
    drops: Record<string, number>;
    nodes: NodeCost[];
  };
}

export interface SystemResult {
  system: string;
  description: string;
  traffic: 'mirror' | 'direct';
  notes: string[];
  steps: StepResult[];
  error?: string;
}

export interface SoakResult {
  system: string;
  rate: number;
  seconds: number;
  samples: { t: number; rssMB: number }[];
  slopeMBPerMin: number;
  slopeSecondHalfMBPerMin: number;
  step: StepResult | null;
}

export interface Results {
  tool: string;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  settings: {
    ladder: number[];
    stepSeconds: number;
    payloadBytes: number;
    offeredIpBytes: { mirror: number; direct: number };
    exporters: number;
    mirrorSources: number;
    vni: number;
    lossThresholdPercent: number;
    stopAfterLossySteps: number;
    quick: boolean;
    /** Packets a sending veth end queues while its peer's ring is full (absent in older results: 0). */
    linkQueue?: number;
    napiPolicy?: NapiPolicy;
  };
  systems: SystemResult[];
  summary: Summary;
  soak?: SoakResult;
  profile?: { system: string; rate: number; step: StepResult | null; nodes: NodeCost[]; cpu: ProfileSummary | null; perf: PerfSummary | null; error?: string };
}

type Highest = Record<string, { targetPps: number; offeredPps: number; topOfLadder: boolean } | null>;

export interface Summary {
  /** Loss ≤ 0.1% end to end and source kept, with the step offered in full. */
  highestLossless: Highest;
  /** The same, not counting drops on the sink's side (its receive ring full): the bench's own limit on this machine. */
  highestLosslessAtGateway: Highest;
  /**
   * Sustained: the highest step with every step below it lossless too. Near the 0.1% line a
   * ladder is not monotonic (a step fails and a faster one passes); this one does not count luck.
   */
  highestSustained?: Highest;
  ratioMirrorgateToBestPeer: Record<string, number | null>;
  ratioMirrorgateToBestPeerAtGateway: Record<string, number | null>;
  ratioMirrorgateToBestPeerSustained?: Record<string, number | null>;
  bestPeer: string | null;
  bestPeerSustained?: string | null;
  bestPeerAtGateway: string | null;
  at85k: Record<string, { machineCpuPercent: number; gatewayCpuUsPerPkt: number | null; lossPercent: number; p99Us: number | null } | null>;
  bigConfigRssMB: number | null;
  /** Latency p99 at 1k pps, where batching must not hold packets. */
  p99UsAt1k?: Record<string, number | null>;
}

export const LOSSLESS_PERCENT = 0.1;

/**
 * The generator shares the machine with the system under test: one that starves it of CPU is
 * offered less than the step's rate. Such a step proves nothing at that rate, lossless or not.
 */
export const OFFERED_IN_FULL = 0.99;

function offeredInFull(s: StepResult): boolean {
  return s.offered > 0 && s.offeredPps >= OFFERED_IN_FULL * s.targetPps;
}

export function lossless(s: StepResult): boolean {
  return offeredInFull(s) && s.lossPercent <= LOSSLESS_PERCENT && s.kept === s.delivered;
}

/**
 * Packets dropped on the sink's side: the ring of the sink's receiving veth was full (tx_dropped
 * on the end that feeds it) or the sink's socket buffer overflowed. On a small machine shared by
 * generator, gateway and sink these happen for every system, the direct path included.
 * mirrorgate retries a packet the ring refused, so the link's tx_dropped also counts packets
 * that went through on a later try: for it, only the refusals it gave up on (its tx errors) count.
 */
export function sinkSideDrops(s: StepResult): number {
  const w = s.lostWhere ?? {};
  const gwLink = w[`${NS.gw}:${IF.gwToSink}.tx_dropped`] ?? 0;
  const gwLinkLost = s.gateway ? Math.min(gwLink, s.gateway.txErrors) : gwLink;
  return gwLinkLost + (w[`${NS.gen}:${IF.genDirect}.tx_dropped`] ?? 0) + (w[`${NS.sink}:udp.RcvbufErrors`] ?? 0);
}

/** Loss not explained by sink-side drops, percent of offered. */
export function gatewayLossPercent(s: StepResult): number {
  return s.offered > 0 ? Math.max(0, (100 * (s.offered - s.delivered - sinkSideDrops(s))) / s.offered) : 0;
}

export function losslessAtGateway(s: StepResult): boolean {
  return offeredInFull(s) && gatewayLossPercent(s) <= LOSSLESS_PERCENT && s.kept === s.delivered;
}

/** Per system, the highest of its steps `ok` passed; with `sustained`, only while every slower step passed too. */
function highest(systems: SystemResult[], ok: (s: StepResult) => boolean, top: number, sustained = false): Highest {
  const out: Highest = {};
  for (const sys of systems) {
    let best: StepResult | null = null;
    for (const s of [...sys.steps].sort((a, b) => a.targetPps - b.targetPps)) {
      if (ok(s)) best = s;
      else if (sustained) break;
    }
    out[sys.system] = best ? { targetPps: best.targetPps, offeredPps: best.offeredPps, topOfLadder: best.targetPps === top } : null;
  }
  return out;
}

function ratios(h: Highest): { bestPeer: string | null; ratio: Record<string, number | null> } {
  let bestPeer: string | null = null;
  for (const p of ['kernel', 'pmacct'].filter((x) => h[x] !== undefined)) {
    if (bestPeer === null || (h[p]?.targetPps ?? 0) > (h[bestPeer]?.targetPps ?? 0)) bestPeer = p;
  }
  const ratio: Record<string, number | null> = {};
  for (const m of ['mirrorgate-w1', 'mirrorgate', 'mirrorgate-packet', 'mirrorgate-xdp', 'mirrorgate-fast', 'mirrorgate-tc']) {
    if (h[m] === undefined) continue;
    const peer = bestPeer ? (h[bestPeer]?.targetPps ?? 0) : 0;
    ratio[m] = peer > 0 ? Math.round(((h[m]?.targetPps ?? 0) / peer) * 100) / 100 : null;
  }
  return { bestPeer, ratio };
}

export function summarize(systems: SystemResult[], ladder: number[]): Summary {
  const at85k: Summary['at85k'] = {};
  const p99UsAt1k: Record<string, number | null> = {};
  const top = Math.max(...ladder);
  const highestLossless = highest(systems, lossless, top);
  const highestLosslessAtGateway = highest(systems, losslessAtGateway, top);
  const highestSustained = highest(systems, lossless, top, true);
  for (const sys of systems) {
    const s85 = sys.steps.find((s) => s.targetPps === 85_000);
    p99UsAt1k[sys.system] = sys.steps.find((s) => s.targetPps === 1_000)?.latencyUs?.p99 ?? null;
    at85k[sys.system] = s85
      ? { machineCpuPercent: s85.machineCpuPercent, gatewayCpuUsPerPkt: s85.gatewayCpuUsPerPkt, lossPercent: s85.lossPercent, p99Us: s85.latencyUs?.p99 ?? null }
      : null;
  }
  const strict = ratios(highestLossless);
  const atGw = ratios(highestLosslessAtGateway);
  const kept = ratios(highestSustained);
  const big = systems.find((s) => s.system === 'mirrorgate-big');
  const bigRss = big?.steps.map((s) => s.rssMB ?? 0).reduce((a, b) => Math.max(a, b), 0) ?? null;
  return {
    highestLossless,
    highestLosslessAtGateway,
    highestSustained,
    ratioMirrorgateToBestPeer: strict.ratio,
    ratioMirrorgateToBestPeerAtGateway: atGw.ratio,
    ratioMirrorgateToBestPeerSustained: kept.ratio,
    bestPeerSustained: kept.bestPeer,
    bestPeer: strict.bestPeer,
    bestPeerAtGateway: atGw.bestPeer,
    at85k,
    bigConfigRssMB: big ? bigRss : null,
    p99UsAt1k,
  };
}

const fmt = (v: number | null | undefined, digits = 0): string =>
  v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function stepRow(s: StepResult): string {
  const lat = s.latencyUs ? `${fmt(s.latencyUs.p50)} / ${fmt(s.latencyUs.p99)}` : 'n/a';
  const mark = s.foreignCpuPercent > 10 ? ' ‡' : '';
  return `| ${s.system}${mark} | ${fmt(s.targetPps)} | ${fmt(s.offeredPps)} | ${fmt(s.deliveredPps)} | ${fmt(s.lossPercent, 2)} (${fmt(gatewayLossPercent(s), 2)}) | ${fmt(s.keptPercent, 1)} | ${fmt(s.machineCpuPercent, 0)} | ${fmt(s.gatewayCpuUsPerPkt, 2)} | ${fmt(s.rssMB, 0)} | ${lat} | ${fmt(s.genCpuPercent, 0)} / ${fmt(s.sinkCpuPercent, 0)} |`;
}

export const TABLE_HEAD = [
  '| system | target pps | offered pps | delivered pps | loss % (not at sink) | source kept % | machine CPU % | gateway CPU µs/pkt | RSS MB | latency p50 / p99 µs | gen / sink CPU % |',
  '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
];

function linksText(queue: number, napi: NapiPolicy): string {
  const receive = napi === 'other' ? 'at normal priority' : napi === 'nice' ? 'at nice -10' : 'under SCHED_FIFO 50';
  const ring =
    queue > 0
      ? `each sending end queues up to ${queue} packets (pfifo) while its peer's ${VETH_RING}-frame ring is full, so a receiver that falls behind for a moment is pushed back on rather than dropped: ring and queue together hold ${queue + VETH_RING} packets, like a NIC's receive ring`
      : `a sending end has no queue (veth's default), so whatever finds its peer's ${VETH_RING}-frame ring full is dropped`;
  return `Links: veth pairs; the receiving end's kernel thread runs ${receive}; ${ring}.`;
}

export function renderMarkdown(r: Results): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`# mirrorgate benchmark${r.settings.quick ? ' (quick)' : ''}`, '');
  out.push(`${r.startedAt} → ${r.finishedAt}`, '');
  out.push(`Machine: ${m.nproc} CPUs, ${m.cpuModel}, ${m.memTotalMB} MB; ${m.kernel}; Node ${m.node}.`, '');
  out.push(
    `Traffic: NetFlow v9 datagrams of ${r.settings.payloadBytes} bytes (UDP payload) from ${r.settings.exporters} exporters (198.18.0.0/24, one flow each) ` +
      `to 198.18.3.10:2055, mirrored in AWS format (VXLAN VNI ${r.settings.vni}, original Ethernet frame) from ${r.settings.mirrorSources} mirror sources with per-flow outer source ports: ` +
      `${r.settings.offeredIpBytes.mirror}-byte outer IP packets; the collector receives ${r.settings.offeredIpBytes.direct}-byte IP packets. ` +
      `${r.settings.stepSeconds} s per step; a ladder stops after ${r.settings.stopAfterLossySteps} steps with more than 1% loss.`,
    '',
  );
  out.push(linksText(r.settings.linkQueue ?? 0, r.settings.napiPolicy ?? 'other'), '');
  out.push(
    'Columns: machine CPU is the share of all CPUs busy (/proc/stat) while the generator sends. Gateway CPU is the gateway host\'s CPU over the step per delivered packet: ' +
      'its processes\' utime+stime (all threads; for pmacct the core and the tee plugin) plus the kernel thread that receives on its ingress link ' +
      '(each receiving veth runs threaded NAPI, like a NIC queue, so the receiving host\'s kernel work is not done inside the sender\'s sendmmsg); for the kernel path that thread is all of it. ' +
      'RSS is the gateway processes\' VmRSS at the end of the step. Latency is the sink\'s receive time minus the generator\'s send time (CLOCK_MONOTONIC; the generator stamps each sendmmsg batch of 32). ' +
      'gen / sink CPU in percent of one core (sink includes its receive threads).',
    '',
  );
  out.push(...TABLE_HEAD);
  for (const sys of r.systems) for (const s of sys.steps) out.push(stepRow(s));
  out.push('');
  if (r.systems.some((sys) => sys.steps.some((s) => s.foreignCpuPercent > 10))) {
    out.push('‡ other processes on the machine used more than 10% of a core during this step (after two retries): its figures are skewed.', '');
  }
  for (const sys of r.systems) {
    if (sys.error) out.push(`- **${sys.system}**: failed: ${sys.error.split('\n')[0]}`);
    for (const n of sys.notes) out.push(`- ${sys.system}: ${n}`);
  }
  out.push('', '## Summary', '');
  out.push(
    `Lossless = loss ≤ ${LOSSLESS_PERCENT}% and every delivered datagram from its exporter's address and port. "Not at sink" leaves out drops on the sink's side ` +
      '(its receive ring or socket full), which on this machine happen for every system, the direct path included: they measure the bench, not the gateway.',
    '',
  );
  const hl = (h: Summary['highestLossless'][string]) => (h ? `${h.topOfLadder ? '≥ ' : ''}${fmt(h.targetPps)}` : 'none');
  out.push(
    '| system | highest lossless rate (pps) | … not counting sink-side drops | … with every step below lossless too | machine CPU % at 85k | gateway CPU µs/pkt at 85k | p99 µs at 85k | p99 µs at 1k |',
    '|---|--:|--:|--:|--:|--:|--:|--:|',
  );
  for (const sys of r.systems) {
    const c = r.summary.at85k[sys.system];
    out.push(
      `| ${sys.system} | ${hl(r.summary.highestLossless[sys.system])} | ${hl(r.summary.highestLosslessAtGateway?.[sys.system] ?? null)} | ${hl(r.summary.highestSustained?.[sys.system] ?? null)} | ${c ? fmt(c.machineCpuPercent) : 'n/a'} | ${c ? fmt(c.gatewayCpuUsPerPkt, 2) : 'n/a'} | ${c ? fmt(c.p99Us) : 'n/a'} | ${fmt(r.summary.p99UsAt1k?.[sys.system])} |`,
    );
  }
  out.push('');
  const ratioLine = (label: string, peer: string | null, ratio: Record<string, number | null> | undefined) => {
    if (!peer || !ratio) return;
    for (const [k, v] of Object.entries(ratio)) out.push(`- ${k} / best peer (${peer}), highest lossless rate${label}: ${v === null ? 'n/a' : `${v}×`}`);
  };
  ratioLine('', r.summary.bestPeer, r.summary.ratioMirrorgateToBestPeer);
  ratioLine(' not counting sink-side drops', r.summary.bestPeerAtGateway, r.summary.ratioMirrorgateToBestPeerAtGateway);
  ratioLine(' with every step below lossless too', r.summary.bestPeerSustained ?? null, r.summary.ratioMirrorgateToBestPeerSustained);
  if (r.summary.bigConfigRssMB !== null) out.push(`- RSS with a 100k-prefix allowlist and 1,000 rules (workers: auto): ${fmt(r.summary.bigConfigRssMB, 0)} MB`);
  if (r.soak) {
    out.push(
      `- Soak: ${r.soak.system} at ${fmt(r.soak.rate)} pps for ${r.soak.seconds} s: RSS slope ${r.soak.slopeMBPerMin.toFixed(3)} MB/min ` +
        `(second half ${r.soak.slopeSecondHalfMBPerMin.toFixed(3)} MB/min), RSS ${fmt(r.soak.samples[0]?.rssMB, 1)} → ${fmt(r.soak.samples.at(-1)?.rssMB, 1)} MB` +
        (r.soak.step ? `, loss ${fmt(r.soak.step.lossPercent, 3)}%` : ''),
    );
  }
  if (r.profile) {
    out.push('', `## Profile: ${r.profile.system} at ${fmt(r.profile.rate)} pps`, '');
    if (r.profile.error) out.push(`Profile failed: ${r.profile.error}`, '');
    if (r.profile.step) out.push(...TABLE_HEAD, stepRow(r.profile.step), '');
    if (r.profile.nodes.length) {
      out.push('Graph nodes (counters node.<name>.ns / .packets over the step):', '', '| node | packets | ns / packet | packets / batch |', '|---|--:|--:|--:|');
      for (const n of r.profile.nodes) out.push(`| ${n.node} | ${fmt(n.packets)} | ${fmt(n.nsPerPacket, 0)} | ${fmt(n.packetsPerBatch, 1)} |`);
      out.push(`| **sum** | | ${fmt(r.profile.nodes.reduce((a, n) => a + n.nsPerPacket, 0), 0)} | |`, '');
    }
    if (r.profile.cpu) {
      out.push(`V8 CPU profile, worker threads merged: self time per function (busy = not waiting in poll), ns per received packet over the gateway's lifetime (${fmt(r.profile.cpu.packets)} packets):`, '');
      out.push('| function | self ms | % of busy | ns / packet |', '|---|--:|--:|--:|');
      for (const f of r.profile.cpu.workers) out.push(`| \`${f.function}\` | ${fmt(f.selfMs, 0)} | ${fmt(f.busyPercent, 1)} | ${fmt(f.nsPerPacket, 0)} |`);
      out.push('', `V8 profiles: ${r.profile.cpu.dir} (${r.profile.cpu.threads.map((t) => `${t.thread}: busy ${fmt(t.busyMs)} of ${fmt(t.durationMs)} ms`).join('; ')}).`);
    }
  }
  const perf = r.profile?.perf;
  if (perf) {
    out.push('', 'perf (cpu-clock samples, whole machine, during the profiled step): the gateway process, all threads, % of its samples:', '');
    out.push('| % | where | symbol |', '|--:|---|---|');
    for (const p of perf.gateway) out.push(`| ${p.percent.toFixed(1)} | ${p.dso} | \`${p.symbol}\` |`);
    if (perf.rxThread.length) {
      out.push('', 'The kernel thread receiving on the gateway\'s ingress link (UDP receive into mirrorgate\'s sockets), % of its samples:', '');
      out.push('| % | where | symbol |', '|--:|---|---|');
      for (const p of perf.rxThread) out.push(`| ${p.percent.toFixed(1)} | ${p.dso} | \`${p.symbol}\` |`);
    }
  }
  return `${out.join('\n')}\n`;
}
