/**
 * Where mirrorgate's time goes: V8 CPU profiles (node --cpu-prof, one file per thread) reduced to
 * self time per function, and the graph's own per-node counters (node.<name>.ns / .packets).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface FunctionCost {
  function: string;
  /** Self time in ms over the whole profile. */
  selfMs: number;
  /** Share of the thread's busy (non-idle) samples, percent. */
  busyPercent: number;
  /** Self time per packet the profiled gateway received, ns. */
  nsPerPacket: number | null;
}

export interface ThreadProfile {
  file: string;
  thread: string;
  durationMs: number;
  busyMs: number;
  top: FunctionCost[];
}

export interface ProfileSummary {
  dir: string;
  packets: number;
  threads: ThreadProfile[];
  /** All worker threads merged. */
  workers: FunctionCost[];
}

/** Idle: V8's own idle marker, and the workers' poll(2) wait in the native addon. */
const IDLE = new Set(['(idle)', 'wait', 'waitEither', 'waitAsync']);

function frameName(f: CallFrame): string {
  const file = f.url ? basename(f.url.replace(/^file:\/\//, '')) : '';
  const name = f.functionName || '(anonymous)';
  return file ? `${name} ${file}:${f.lineNumber + 1}` : name;
}

function selfTimes(p: CpuProfile): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, number>();
  if (p.samples && p.timeDeltas && p.samples.length === p.timeDeltas.length) {
    // Each delta is the time before the sample; attribute sample i the time until the next one.
    for (let i = 0; i < p.samples.length; i++) {
      const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
      const n = byId.get(p.samples[i]);
      if (!n) continue;
      const k = frameName(n.callFrame);
      ms.set(k, (ms.get(k) ?? 0) + dt);
    }
  } else {
    const total = p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
    const per = (p.endTime - p.startTime) / 1000 / total;
    for (const n of p.nodes) {
      const k = frameName(n.callFrame);
      ms.set(k, (ms.get(k) ?? 0) + (n.hitCount ?? 0) * per);
    }
  }
  return ms;
}

function isIdle(key: string): boolean {
  const fn = key.split(' ')[0];
  return IDLE.has(fn);
}

function rank(ms: Map<string, number>, packets: number, topN: number): { busyMs: number; top: FunctionCost[] } {
  let busyMs = 0;
  for (const [k, v] of ms) if (!isIdle(k)) busyMs += v;
  const top = [...ms.entries()]
    .filter(([k]) => !isIdle(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([k, v]) => ({
      function: k,
      selfMs: round(v, 1),
      busyPercent: round((100 * v) / (busyMs || 1), 1),
      nsPerPacket: packets > 0 ? round((v * 1e6) / packets, 1) : null,
    }));
  return { busyMs, top };
}

/**
 * Reads every .cpuprofile in `dir`. Files are named CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile;
 * thread id 0 is the main thread, the others are workers.
 */
export function summarizeProfiles(dir: string, packets: number, topN = 20): ProfileSummary {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  const threads: ThreadProfile[] = [];
  const merged = new Map<string, number>();
  for (const f of files) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
    const tid = Number(f.split('.').at(-3));
    const ms = selfTimes(p);
    const isWorker = tid > 0;
    if (isWorker) for (const [k, v] of ms) merged.set(k, (merged.get(k) ?? 0) + v);
    const { busyMs, top } = rank(ms, isWorker ? packets : 0, topN);
    threads.push({ file: f, thread: isWorker ? `worker (tid ${tid})` : 'main', durationMs: round((p.endTime - p.startTime) / 1000, 0), busyMs: round(busyMs, 0), top });
  }
  return { dir, packets, threads, workers: rank(merged, packets, topN).top };
}

export interface NodeCost {
  node: string;
  packets: number;
  batches: number;
  nsPerPacket: number;
  packetsPerBatch: number;
}

/** ns per packet per graph node from two counter snapshots (after − before). */
export function nodeCosts(before: Record<string, number>, after: Record<string, number>): NodeCost[] {
  const out: NodeCost[] = [];
  for (const k of Object.keys(after)) {
    const m = /^node\.(.+)\.ns$/.exec(k);
    if (!m) continue;
    const name = m[1];
    const d = (key: string) => (after[key] ?? 0) - (before[key] ?? 0);
    const packets = d(`node.${name}.packets`);
    if (packets <= 0) continue;
    const batches = d(`node.${name}.batches`);
    out.push({
      node: name,
      packets,
      batches,
      nsPerPacket: round(d(k) / packets, 1),
      packetsPerBatch: round(packets / (batches || 1), 1),
    });
  }
  return out;
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export interface PerfSummary {
  /** The gateway process, all threads. */
  gateway: PerfRow[];
  /** The kernel thread receiving on the gateway's ingress link. */
  rxThread: PerfRow[];
}

export interface PerfRow {
  percent: number;
  dso: string;
  symbol: string;
}

/** Records on-CPU samples of the whole machine (software cpu-clock event) for `seconds`. */
export function perfRecord(file: string, seconds: number): Promise<boolean> {
  return new Promise((done) => {
    const p = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '1999', '-a', '-o', file, '--', 'sleep', String(seconds)], { stdio: 'ignore' });
    const timer = setTimeout(() => p.kill('SIGKILL'), (seconds + 30) * 1000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      done(code === 0);
    });
    p.on('error', () => done(false));
  });
}

/** Top symbols of one process (all threads) or one thread, in percent of its own samples. */
export function perfTop(file: string, filter: { pid?: number; tid?: number }, n: number): PerfRow[] {
  const args = ['report', '-i', file, '--stdio', '--no-children', '--percentage', 'relative', '--sort', 'dso,sym', '--percent-limit', '0.3'];
  if (filter.pid !== undefined) args.push(`--pid=${filter.pid}`);
  if (filter.tid !== undefined) args.push(`--tid=${filter.tid}`);
  const r = spawnSync('perf', args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  const rows: PerfRow[] = [];
  for (const line of (r.stdout ?? '').split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.+?)\s*$/.exec(line);
    if (m) rows.push({ percent: Number(m[1]), dso: m[2], symbol: m[3] });
    if (rows.length >= n) break;
  }
  return rows;
}
