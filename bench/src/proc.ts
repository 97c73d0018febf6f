/** What /proc says about the machine and about processes under test. */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  kernel: string;
  node: string;
  memTotalMB: number;
  hostname: string;
}

export function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? /^Hardware\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown';
  const mem = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return {
    nproc: availableParallelism(),
    cpuModel: model.trim(),
    kernel: `${readFileSync('/proc/sys/kernel/ostype', 'utf8').trim()} ${release()}`,
    node: process.version,
    memTotalMB: mem ? Math.round(Number(mem) / 1024) : 0,
    hostname: readFileSync('/proc/sys/kernel/hostname', 'utf8').trim(),
  };
}

/** Aggregate CPU jiffies from the first line of /proc/stat. */
export interface CpuSample {
  busy: number;
  total: number;
}

export function cpuSample(): CpuSample {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guest is inside user already.
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { busy: total - idle - iowait, total };
}

/** Share of all CPUs busy between two samples, in percent of the whole machine. */
export function cpuPercent(a: CpuSample, b: CpuSample): number {
  const dt = b.total - a.total;
  return dt > 0 ? (100 * (b.busy - a.busy)) / dt : 0;
}

export const CLK_TCK = 100;

/** utime + stime of a process (all its threads), in seconds; null when it is gone. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after "pid (comm) ": state=0 ... utime=11 stime=12
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** VmRSS in MB; null when the process is gone. */
export function rssMB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Direct children of a process (from /proc/PID/task/TID/children). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    /* gone */
  }
  return out;
}

/** The process and all its descendants. */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...childrenOf(all[i]));
  return all;
}

export function commOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Sums CPU seconds over a set of processes (missing ones count 0). */
export function treeCpuSeconds(pids: number[]): number {
  return pids.reduce((a, p) => a + (processCpuSeconds(p) ?? 0), 0);
}

export function treeRssMB(pids: number[]): number {
  return pids.reduce((a, p) => a + (rssMB(p) ?? 0), 0);
}

/**
 * CPU seconds of every user-space process (kernel threads excluded) not in `ours`, with the CPU of
 * the children it has reaped: other work on the machine. A test run's short-lived processes end
 * between two snapshots; their time still shows, in their parent's. (A child that ran before the
 * first snapshot too is then counted whole: a step is measured again rather than too seldom.)
 */
export function foreignCpu(ours: Set<number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (ours.has(pid) || pid === 2) continue;
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === 2) continue; // a kernel thread
      out.set(pid, (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK);  // utime stime cutime cstime
    } catch {
      /* gone */
    }
  }
  return out;
}

/** CPU seconds other processes used between two foreignCpu() snapshots. */
export function foreignDelta(a: Map<number, number>, b: Map<number, number>): number {
  let sum = 0;
  for (const [pid, v] of b) sum += v - (a.get(pid) ?? 0);
  return sum;
}
