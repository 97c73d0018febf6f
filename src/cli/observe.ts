/**
 * Watching a running gateway: `monitor` (a live dashboard, like the seed loader's PPS table) and
 * `runtime` (per-node cost, like VPP's `show runtime`). Both read the control API only.
 */
import type { Command } from 'commander';
import type { statusOf } from '../gateway/status.js';
import { controlCommand, controlRequest, type ControlOptions } from './live.js';

type Status = ReturnType<typeof statusOf>;

interface Sample {
  at: number;
  counters: Record<string, number>;
  status: Status;
}

export interface Rates {
  seconds: number;
  rxPps: number;
  vxlanPps: number;
  forwardedPps: number;
  txPps: number;
  dropPps: number;
  errorPps: number;
  /** Received packets that were DNATed to a backend, %. */
  natHitPct: number;
  backends: { destination: string; backend: string; up: boolean; pps: number }[];
}

export function rates(a: Sample, b: Sample): Rates {
  const dt = Math.max((b.at - a.at) / 1000, 1e-3);
  const d = (name: string) => ((b.counters[name] ?? 0) - (a.counters[name] ?? 0)) / dt;
  const sumPrefix = (c: Record<string, number>, prefix: string) =>
    Object.entries(c).reduce((s, [k, v]) => (k.startsWith(prefix) ? s + v : s), 0);
  const dropPps = (sumPrefix(b.counters, 'drop.') - sumPrefix(a.counters, 'drop.')) / dt;
  const rx = d('rx_packets');
  const dnat = d('node.dnat.packets');
  const before = new Map(a.status.destinations.flatMap((x) => x.backends.map((bk) => [`${x.name}/${bk.backend}`, bk.packets])));
  return {
    seconds: dt,
    rxPps: rx,
    vxlanPps: d('node.vxlan-decap.packets') + d('node.geneve-decap.packets'),
    forwardedPps: d('tx.forwarded'),
    txPps: d('tx.packets'),
    dropPps,
    errorPps: d('tx.errors'),
    natHitPct: rx > 0 ? Math.min(100, (100 * dnat) / rx) : 0,
    backends: b.status.destinations.flatMap((x) =>
      x.backends.map((bk) => ({ destination: x.name, backend: bk.backend, up: bk.up, pps: (bk.packets - (before.get(`${x.name}/${bk.backend}`) ?? 0)) / dt })),
    ),
  };
}

export interface Thresholds {
  /** The rate the deployment is sized for (the seed's 85K line). */
  targetPps: number;
  /** Drops above this share of received packets turn the status red. */
  maxDropPct: number;
}

export type Health = 'OK' | 'WARN' | 'CRIT';

/** Red: errors, a backend down, or drops over the limit; yellow: any drop, or traffic over target. */
export function judge(r: Rates, t: Thresholds): Health {
  const dropPct = r.rxPps > 0 ? (100 * r.dropPps) / r.rxPps : 0;
  if (r.errorPps > 0 || r.backends.some((b) => !b.up) || dropPct > t.maxDropPct) return 'CRIT';
  if (r.dropPps > 0 || r.rxPps > t.targetPps) return 'WARN';
  return 'OK';
}

const colour = { OK: '\x1b[32m', WARN: '\x1b[33m', CRIT: '\x1b[31m' } as const;
const reset = '\x1b[0m';
const n = (v: number) => Math.round(v).toLocaleString('en-US');

export function plainLine(r: Rates, h: Health): string {
  const backends = r.backends.map((b) => `${b.destination}/${b.backend}=${n(b.pps)}${b.up ? '' : '(down)'}`).join(' ');
  return `${new Date().toISOString()} rx_pps=${n(r.rxPps)} vxlan_pps=${n(r.vxlanPps)} nat_hit=${r.natHitPct.toFixed(1)}% fwd_pps=${n(r.forwardedPps)} tx_pps=${n(r.txPps)} drop_pps=${n(r.dropPps)} err_pps=${n(r.errorPps)} status=${h} ${backends}`.trimEnd();
}

export function dashboard(r: Rates, h: Health, s: Status, t: Thresholds): string {
  const bar = (v: number) => {
    const width = 40;
    const filled = Math.min(width, Math.round((v / Math.max(t.targetPps, 1)) * width * 0.8));
    const target = Math.round(width * 0.8);
    return Array.from({ length: width }, (_, k) => (k === target ? '|' : k < filled ? '█' : '·')).join('');
  };
  const lines = [
    `mirrorgate monitor — pid ${s.pid}, generation ${s.generation}, ${s.workers} workers, up ${s.uptimeSeconds} s    ${colour[h]}● ${h}${reset}`,
    '',
    `  received      ${n(r.rxPps).padStart(10)} pps  ${bar(r.rxPps)}  target ${n(t.targetPps)}`,
    `  VXLAN/GENEVE  ${n(r.vxlanPps).padStart(10)} pps`,
    `  NAT hit       ${r.natHitPct.toFixed(1).padStart(10)} %`,
    `  forwarded     ${n(r.forwardedPps).padStart(10)} pps`,
    `  transmitted   ${n(r.txPps).padStart(10)} pps`,
    `  dropped       ${n(r.dropPps).padStart(10)} pps`,
    `  tx errors     ${n(r.errorPps).padStart(10)} pps`,
    '',
    '  backends',
    ...r.backends.map((b) => `    ${b.up ? `${colour.OK}UP  ${reset}` : `${colour.CRIT}DOWN${reset}`} ${`${b.destination}/${b.backend}`.padEnd(32)} ${n(b.pps).padStart(10)} pps`),
    '',
    '  top drops (total)',
    ...Object.entries(s.accounting.drops)
      .sort((x, y) => y[1] - x[1])
      .slice(0, 5)
      .map(([reason, v]) => `    ${reason.padEnd(28)} ${n(v).padStart(12)}`),
    '',
    '  Ctrl-C to quit',
  ];
  return lines.join('\n');
}

export function registerObserveCommands(program: Command): void {
  controlCommand(program, 'monitor')
    .description('live dashboard of a running gateway, refreshed every second (plain lines when not a terminal)')
    .option('--target <pps>', 'the rate the deployment is sized for', '85000')
    .option('--max-drop-pct <pct>', 'drop share that turns the status red', '1')
    .option('--interval <ms>', 'refresh interval', '1000')
    .option('--count <n>', 'stop after N refreshes (default: until Ctrl-C)')
    .action(async (opts: ControlOptions & { target: string; maxDropPct: string; interval: string; count?: string }) => {
      const t: Thresholds = { targetPps: Number(opts.target), maxDropPct: Number(opts.maxDropPct) };
      const tty = process.stdout.isTTY === true;
      const sample = async (): Promise<Sample> => {
        const [counters, status] = await Promise.all([
          controlRequest(opts, 'GET', '/api/counters') as Promise<Record<string, number>>,
          controlRequest(opts, 'GET', '/api/status') as Promise<Status>,
        ]);
        return { at: Date.now(), counters, status };
      };
      let prev = await sample();
      const limit = opts.count ? Number(opts.count) : Infinity;
      let stop = false;
      process.once('SIGINT', () => (stop = true));
      if (tty) process.stdout.write('\x1b[?25l'); // hide the cursor while redrawing
      try {
        for (let k = 0; k < limit && !stop; k++) {
          await new Promise((r) => setTimeout(r, Number(opts.interval)));
          const cur = await sample();
          const r = rates(prev, cur);
          const h = judge(r, t);
          if (tty) process.stdout.write(`\x1b[H\x1b[2J${dashboard(r, h, cur.status, t)}\n`);
          else process.stdout.write(`${plainLine(r, h)}\n`);
          prev = cur;
        }
      } finally {
        if (tty) process.stdout.write('\x1b[?25h');
      }
    });

  controlCommand(program, 'runtime')
    .description("per-node packets, batches, average batch size and ns per packet (VPP's show runtime)")
    .option('--json', 'print the table as JSON')
    .action(async (opts: ControlOptions & { json?: boolean }) => {
      const counters = (await controlRequest(opts, 'GET', '/api/counters')) as Record<string, number>;
      const rows = runtimeRows(counters);
      if (opts.json) return void process.stdout.write(`${JSON.stringify(rows)}\n`);
      process.stdout.write(formatRuntime(rows, counters.rx_packets ?? 0));
    });
}

export interface RuntimeRow {
  node: string;
  packets: number;
  batches: number;
  packetsPerBatch: number;
  nsPerPacket: number;
}

export function runtimeRows(counters: Record<string, number>): RuntimeRow[] {
  const rows: RuntimeRow[] = [];
  for (const [key, packets] of Object.entries(counters)) {
    const m = /^node\.(.+)\.packets$/.exec(key);
    if (!m) continue;
    const batches = counters[`node.${m[1]}.batches`] ?? 0;
    const ns = counters[`node.${m[1]}.ns`] ?? 0;
    rows.push({ node: m[1], packets, batches, packetsPerBatch: batches ? packets / batches : 0, nsPerPacket: packets ? ns / packets : 0 });
  }
  return rows;
}

export function formatRuntime(rows: RuntimeRow[], received: number): string {
  const head = `${'node'.padEnd(18)} ${'packets'.padStart(14)} ${'batches'.padStart(12)} ${'pkts/batch'.padStart(11)} ${'ns/pkt'.padStart(9)}`;
  const body = rows.map(
    (r) => `${r.node.padEnd(18)} ${r.packets.toLocaleString('en-US').padStart(14)} ${r.batches.toLocaleString('en-US').padStart(12)} ${r.packetsPerBatch.toFixed(1).padStart(11)} ${r.nsPerPacket.toFixed(0).padStart(9)}`,
  );
  const total = rows.reduce((s, r) => s + r.nsPerPacket * r.packets, 0) / Math.max(1, received);
  return [head, ...body, `${'per received packet'.padEnd(18)} ${''.padStart(14)} ${''.padStart(12)} ${''.padStart(11)} ${total.toFixed(0).padStart(9)}`, ''].join('\n');
}
