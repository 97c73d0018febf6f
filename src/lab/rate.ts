/**
 * The rate probe: NetFlow-sized datagrams from the exporter to the monitored host at a paced
 * rate (sendmmsg), mirrored by the kernel to the gateway, counted at a UDP socket on each
 * collector by source address. Each step reports where packets went:
 *
 *   offered    the exporter's kernel accepted them
 *   mirrored   the tc mirror action copied them (tc -s)
 *   gw rx      the gateway received them (GET /api/counters)
 *   forwarded  the gateway sent them on
 *   delivered  the collectors' sockets received them (tagged with this step's id)
 *
 * plus the kernel's receive-queue overflows (RcvbufErrors) in the gateway and collector hosts,
 * which say where a loss happened.
 */
import { randomInt } from 'node:crypto';
import { accountingFrom } from '../pipeline/accounting.js';
import type { Lab } from './lab.js';
import { Probe, TelemetryPort } from './plan.js';
import { LabError, sleep, type LabProcess } from './process.js';

export interface RateStep {
  targetPps: number;
  seconds: number;
  /** UDP payload bytes per datagram. */
  size: number;
  /** Datagrams the exporter's kernel accepted. */
  offered: number;
  achievedPps: number;
  /** Copies the kernel's tc mirror made (all frames arriving at the monitored host). */
  mirrored: number;
  gatewayRx: number;
  forwarded: number;
  /** Gateway drops by reason. */
  gatewayDrops: Record<string, number>;
  /** Probe datagrams the collectors received. */
  delivered: number;
  duplicates: number;
  lost: number;
  lossPercent: number;
  /** Receive-queue overflows during the step. */
  rcvbufErrors: { gateway: number; collectors: number };
  /** Nothing lost and nothing duplicated (at whatever rate the sender achieved). */
  lossless: boolean;
  /** The sender could not reach 95% of the target: the step measured `achievedPps`, not the target. */
  senderLimited: boolean;
  /** Why the step is not lossless, or where the loss happened. */
  note: string;
}

export interface RateOptions {
  /** Target datagrams per second. */
  rate: number;
  /** Seconds of traffic (default 3). */
  seconds?: number;
  /** UDP payload bytes (default 1464, a full NetFlow v5 datagram). */
  size?: number;
  /** Exporter addresses to send from (default all four: several inner flows spread over workers). */
  sources?: readonly string[];
  /** Sender processes sharing the rate and the sources (default 1; more when one core cannot keep up). */
  senders?: number;
}

interface Snapshot {
  gw: Record<string, number>;
  mirrored: number;
  gwUdp: Record<string, number>;
  colUdp: Record<string, number>[];
}

async function snapshot(lab: Lab): Promise<Snapshot> {
  const [gw, mirror, gwUdp, ...colUdp] = await Promise.all([
    lab.counters(),
    lab.mirroredByKernel(),
    lab.udpStats('gateway'),
    ...Array.from({ length: lab.collectors }, (_, k) => lab.udpStats(lab.collectorHost(k))),
  ]);
  return { gw: gw as Record<string, number>, mirrored: (mirror as { packets: number }).packets, gwUdp: gwUdp as Record<string, number>, colUdp: colUdp as Record<string, number>[] };
}

interface CounterReport {
  tagged: number;
  duplicates: number;
}

/** Sends one step of traffic and accounts for it. Needs the lab's gateway running. */
export async function rateProbe(lab: Lab, opts: RateOptions): Promise<RateStep> {
  const seconds = opts.seconds ?? 3;
  if (!(opts.rate > 0) || !(seconds > 0) || seconds > 60) throw new LabError(`expected a rate > 0 and 0-60 seconds, got ${opts.rate} pps for ${seconds} s`);
  const tag = randomInt(1, 0x7fffffff);
  const counters: LabProcess[] = [];
  try {
    for (let k = 0; k < lab.collectors; k++) {
      const c = lab.spawnAgent(lab.collectorHost(k), ['count', '--bind', lab.collectorEndpoint(k, TelemetryPort.NETFLOW), '--tag', String(tag)]);
      counters.push(c);
      await c.waitForLine(/"event":"ready"/, { stream: 'stdout' });
    }
    const before = await snapshot(lab);
    const sources = opts.sources ?? lab.exporters;
    const senders = Math.max(1, Math.min(opts.senders ?? 1, sources.length));
    const results = await Promise.all(
      Array.from({ length: senders }, (_, i) =>
        lab.runAgent(
          'exporter',
          [
            'send', '--from', sources.filter((_, j) => j % senders === i).join(','), '--to', `${lab.monitored}:${TelemetryPort.NETFLOW}`,
            '--rate', String(opts.rate / senders), '--seconds', String(seconds), '--size', String(opts.size ?? Probe.PAYLOAD_SIZE),
            '--tag', String(tag), '--seq-base', String(i * 0x1000000),
          ],
          { timeoutMs: (seconds + 15) * 1000 },
        ),
      ),
    );
    const finals = results.map((lines) => lines.find((l) => l.event === 'final') ?? {});
    const offered = finals.reduce((sum, f) => sum + Number(f.sent ?? 0), 0);
    const achievedPps = finals.reduce((sum, f) => sum + Number(f.achievedPps ?? 0), 0);
    // Let the last packets through: wait until the collectors stop counting (or have them all).
    let delivered = -1;
    for (let i = 0; i < 30; i++) {
      await sleep(i === 0 ? 200 : 150);
      const reports = await Promise.all(counters.map((c) => report(c)));
      const now = reports.reduce((s, r) => s + r.tagged, 0);
      if (now >= offered || now === delivered) break;
      delivered = now;
    }
    const totals = await Promise.all(counters.map(async (c) => finalReport(c)));
    const after = await snapshot(lab);

    const delta = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(b).map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
    const acc = accountingFrom(delta(before.gw, after.gw));
    const got = totals.reduce((s, r) => s + r.tagged, 0);
    const duplicates = totals.reduce((s, r) => s + r.duplicates, 0);
    const lost = Math.max(0, offered - got);
    const gwOverflow = (after.gwUdp.RcvbufErrors ?? 0) - (before.gwUdp.RcvbufErrors ?? 0);
    const colOverflow = after.colUdp.reduce((s, u, k) => s + (u.RcvbufErrors ?? 0) - (before.colUdp[k].RcvbufErrors ?? 0), 0);
    const step: RateStep = {
      targetPps: opts.rate,
      seconds,
      size: opts.size ?? Probe.PAYLOAD_SIZE,
      offered,
      achievedPps,
      mirrored: after.mirrored - before.mirrored,
      gatewayRx: acc.rx,
      forwarded: acc.forwarded,
      gatewayDrops: acc.drops,
      delivered: got,
      duplicates,
      lost,
      lossPercent: offered ? (100 * lost) / offered : 0,
      rcvbufErrors: { gateway: gwOverflow, collectors: colOverflow },
      lossless: lost === 0 && duplicates === 0,
      senderLimited: achievedPps < 0.95 * opts.rate,
      note: '',
    };
    step.note = explain(step);
    return step;
  } finally {
    await Promise.all(counters.map((c) => c.stop({ timeoutMs: 2000 })));
  }
}

function explain(s: RateStep): string {
  const notes: string[] = [];
  if (s.senderLimited) notes.push(`the sender reached ${n(s.achievedPps)}/s only`);
  if (s.lost > 0) {
    const where: string[] = [];
    if (s.mirrored < s.offered) where.push(`mirror copied ${s.offered - s.mirrored} fewer`);
    if (s.rcvbufErrors.gateway > 0) where.push(`gateway socket overflowed ${s.rcvbufErrors.gateway}`);
    const drops = Object.entries(s.gatewayDrops);
    if (drops.length) where.push(`gateway dropped ${drops.map(([r, n]) => `${n} ${r}`).join(', ')}`);
    if (s.rcvbufErrors.collectors > 0) where.push(`collector socket overflowed ${s.rcvbufErrors.collectors}`);
    notes.push(where.length ? where.join('; ') : 'lost between gateway and collector');
  }
  if (s.duplicates) notes.push(`${s.duplicates} duplicates`);
  return notes.join('; ');
}

async function report(c: LabProcess): Promise<CounterReport> {
  const seen = c.stdout.length;
  c.write('report\n');
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    const lines = c.stdout.slice(seen).split('\n').filter((l) => l.includes('"event":"report"'));
    if (lines.length) return JSON.parse(lines[0]) as CounterReport;
    await sleep(20);
  }
  throw new LabError(`${c.name}: no report within 3 s`);
}

async function finalReport(c: LabProcess): Promise<CounterReport> {
  await c.stop({ timeoutMs: 3000 });
  const line = c.stdout.split('\n').find((l) => l.includes('"event":"final"'));
  if (!line) throw new LabError(`${c.name}: exited without its totals${c.stderr.trim() ? `: ${c.stderr.trim()}` : ''}`);
  return JSON.parse(line) as CounterReport;
}

/** Default ladder: doubling from 5k to 80k datagrams per second. */
export const DEFAULT_LADDER = [5_000, 10_000, 20_000, 40_000, 80_000];

/** The rate a step proved lossless: its target, or what the sender achieved when it fell short. */
export function provenRate(s: RateStep): number {
  return s.senderLimited ? s.achievedPps : s.targetPps;
}

export interface LadderResult {
  steps: RateStep[];
  /** The highest rate proven lossless (see {@link provenRate}), or null when every step lost packets. */
  highestLossless: number | null;
}

/**
 * Runs the probe at each rate in turn and finds the highest one without loss. Steps after two
 * lossy steps in a row are skipped unless `all`.
 */
export async function rateLadder(
  lab: Lab,
  opts: { rates?: readonly number[]; seconds?: number; size?: number; senders?: number; all?: boolean },
  onStep: (s: RateStep) => void = () => {},
): Promise<LadderResult> {
  const steps: RateStep[] = [];
  let lossyInRow = 0;
  for (const rate of opts.rates ?? DEFAULT_LADDER) {
    if (lossyInRow >= 2 && !opts.all) break;
    const s = await rateProbe(lab, { rate, seconds: opts.seconds, size: opts.size, senders: opts.senders });
    steps.push(s);
    onStep(s);
    lossyInRow = s.lossless ? 0 : lossyInRow + 1;
    await sleep(300); // queues drain between steps
  }
  const ok = steps.filter((s) => s.lossless).map(provenRate);
  return { steps, highestLossless: ok.length ? Math.max(...ok) : null };
}

const n = (v: number) => v.toLocaleString('en-US');

/** The table's header. */
export function formatRateHeader(): string {
  return [
    '  target/s   offered  achieved/s   mirrored      gw rx  forwarded  delivered     lost  loss %  result',
    '  --------  --------  ----------  ---------  ---------  ---------  ---------  -------  ------  ------',
  ].join('\n');
}

/** One step, aligned with the header. */
export function formatRateRow(s: RateStep): string {
  const cols = [
    n(s.targetPps).padStart(8),
    n(s.offered).padStart(8),
    n(s.achievedPps).padStart(10),
    n(s.mirrored).padStart(9),
    n(s.gatewayRx).padStart(9),
    n(s.forwarded).padStart(9),
    n(s.delivered).padStart(9),
    n(s.lost).padStart(7),
    s.lossPercent.toFixed(2).padStart(6),
    s.lossless ? 'ok' : 'LOSS',
  ];
  return `  ${cols.join('  ')}${s.note ? `  (${s.note})` : ''}`;
}

/** What the ladder found, in a sentence or two. */
export function formatRateSummary(r: LadderResult): string {
  if (r.highestLossless === null) return '  no step was lossless';
  const best = r.steps.filter((s) => s.lossless).reduce((a, b) => (provenRate(b) > provenRate(a) ? b : a));
  const size = best.size;
  const mbit = (r.highestLossless * (size + 28) * 8) / 1e6;
  const lines = [`  highest lossless rate: ${n(r.highestLossless)} datagrams/s (${mbit.toFixed(0)} Mbit/s of ${size}-byte datagrams)`];
  const lossy = r.steps.some((s) => !s.lossless);
  if (best.senderLimited && !lossy) lines.push('  the sender was the limit: the mirror and the gateway lost nothing at any rate it reached');
  else if (!lossy) lines.push('  every step was lossless: the limit lies above the top of the ladder');
  return lines.join('\n');
}

export function formatRateTable(r: LadderResult): string {
  return [formatRateHeader(), ...r.steps.map(formatRateRow), '', formatRateSummary(r)].join('\n');
}
