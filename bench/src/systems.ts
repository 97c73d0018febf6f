/**
 * The systems under test. Each one builds the gateway host its own way and says which processes
 * are "the gateway" (for CPU and RSS); the generator and the sink are the same for all.
 *
 * - mirrorgate-w1 / mirrorgate: `node dist/cli.js run` with workers: 1 / workers: auto.
 * - mirrorgate-packet: workers: auto, egress.mode: packet (frames straight to the collector link).
 * - mirrorgate-xdp: workers: auto, raw egress, listen.xdp on the gateway's ingress link (mirror
 *   frames taken off it by an XDP program into an AF_XDP socket).
 * - mirrorgate-fast: as mirrorgate-xdp with packet egress and the fast path in the XDP program
 *   (listen.fastPath hook xdp): flows already decided are forwarded by the program itself (its
 *   work is the kernel's softirq time, so compare machine CPU, not the gateway process's).
 * - mirrorgate-tc: workers: auto, socket ingress, packet egress and the fast path at the ingress
 *   link's tc hook (listen.fastPath hook tc): the same program on the kernel's skb, in front of
 *   the sockets.
 * - mirrorgate-big: workers: auto with a 100k-prefix allowlist and 1,000 rules (the matching
 *   rule last among 1,000 candidates for port 2055: the worst case for classification).
 * - kernel: a VXLAN device (the session's VNI, the monitored ENI's MAC), ip_forward and nftables
 *   DNAT to the collector.
 * - pmacct: the same VXLAN device, the monitored address local, and nfacctd with a transparent
 *   tee plugin re-sending each datagram to the collector from the exporter's address.
 * - direct: no gateway: the generator sends the inner packets straight to the collector.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ADDR, CONTROL, IF, NS, VNI } from './layout.js';
import { createGateway, deleteGateway, installDnat, sh, sleepSync } from './netns.js';
import { commOf, processTree } from './proc.js';

export type SystemName = 'mirrorgate-w1' | 'mirrorgate' | 'mirrorgate-packet' | 'mirrorgate-xdp' | 'mirrorgate-fast' | 'mirrorgate-tc' | 'mirrorgate-big' | 'kernel' | 'pmacct' | 'direct';
export const ALL_SYSTEMS: SystemName[] = ['direct', 'kernel', 'pmacct', 'mirrorgate-w1', 'mirrorgate', 'mirrorgate-packet', 'mirrorgate-xdp', 'mirrorgate-fast', 'mirrorgate-tc', 'mirrorgate-big'];

export interface SystemInfo {
  name: SystemName;
  description: string;
  /** Traffic the generator offers: AWS mirror format, or inner packets straight to the collector. */
  traffic: 'mirror' | 'direct';
  /** Programs it needs on PATH. */
  needs: string[];
}

export const SYSTEMS: Record<SystemName, SystemInfo> = {
  direct: { name: 'direct', description: 'ceiling: generator → sink directly (inner packets, no gateway)', traffic: 'direct', needs: [] },
  kernel: { name: 'kernel', description: 'Linux: vxlan device (VNI, monitored MAC) + ip_forward + nftables DNAT', traffic: 'mirror', needs: ['nft'] },
  pmacct: { name: 'pmacct', description: 'pmacct nfacctd tee plugin (tee_transparent) behind the kernel vxlan device', traffic: 'mirror', needs: ['nfacctd'] },
  'mirrorgate-w1': { name: 'mirrorgate-w1', description: 'mirrorgate, workers: 1, raw egress', traffic: 'mirror', needs: ['curl'] },
  mirrorgate: { name: 'mirrorgate', description: 'mirrorgate, workers: auto (cores − 1), raw egress', traffic: 'mirror', needs: ['curl'] },
  'mirrorgate-packet': {
    name: 'mirrorgate-packet',
    description: 'mirrorgate, workers: auto, packet egress (frames straight to the collector link)',
    traffic: 'mirror',
    needs: ['curl'],
  },
  'mirrorgate-xdp': {
    name: 'mirrorgate-xdp',
    description: 'mirrorgate, workers: auto, raw egress, XDP ingress (AF_XDP socket on the ingress link)',
    traffic: 'mirror',
    needs: ['curl'],
  },
  'mirrorgate-fast': {
    name: 'mirrorgate-fast',
    description: 'mirrorgate, workers: auto, packet egress, XDP ingress with the fast path in the XDP program (known flows forwarded in the program)',
    traffic: 'mirror',
    needs: ['curl'],
  },
  'mirrorgate-tc': {
    name: 'mirrorgate-tc',
    description: 'mirrorgate, workers: auto, packet egress, socket ingress with the fast path at tc ingress (known flows forwarded in the program)',
    traffic: 'mirror',
    needs: ['curl'],
  },
  'mirrorgate-big': {
    name: 'mirrorgate-big',
    description: 'mirrorgate, workers: auto, raw egress, 100k-prefix allowlist + 1,000 rules (match last)',
    traffic: 'mirror',
    needs: ['curl'],
  },
};

/** A started system. */
export interface RunningSystem {
  info: SystemInfo;
  /** Processes that make up the gateway now (empty: the kernel does the work). */
  pids(): number[];
  /** mirrorgate's summed counters, or null for other systems. */
  counters(): Record<string, number> | null;
  stop(): Promise<void>;
  notes: string[];
}

export interface StartOptions {
  workDir: string;
  /** The mirrorgate package root (dist/cli.js). */
  root: string;
  /** Upper bound on the system's lifetime in seconds (the `timeout` wrapper). */
  lifetimeS: number;
  /** Write V8 CPU profiles of the gateway (main thread and workers) here. */
  cpuProfDir?: string;
}

export async function startSystem(name: SystemName, opts: StartOptions): Promise<RunningSystem> {
  const info = SYSTEMS[name];
  mkdirSync(opts.workDir, { recursive: true });
  switch (name) {
    case 'direct':
      return { info, pids: () => [], counters: () => null, stop: async () => {}, notes: [] };
    case 'kernel': {
      createGateway({ vxlan: true, forward: true });
      installDnat();
      return { info, pids: () => [], counters: () => null, stop: async () => deleteGateway(), notes: [] };
    }
    case 'pmacct':
      return startPmacct(info, opts);
    default:
      return startMirrorgate(info, opts);
  }
}

// ---------------------------------------------------------------------------------------------
// mirrorgate

function mirrorgateConfig(name: SystemName, workDir: string): string {
  const workers = name === 'mirrorgate-w1' ? '1' : 'auto';
  const egress = name === 'mirrorgate-packet' || name === 'mirrorgate-fast' || name === 'mirrorgate-tc' ? 'packet' : 'raw';
  const xdp =
    name === 'mirrorgate-xdp'
      ? `, xdp: { interface: ${IF.gwFromGen} }`
      : name === 'mirrorgate-fast'
        ? `, xdp: { interface: ${IF.gwFromGen} }, fastPath: { hook: xdp }`
        : name === 'mirrorgate-tc'
          ? `, fastPath: { hook: tc, interface: ${IF.gwFromGen} }`
          : '';
  if (name !== 'mirrorgate-big') {
    return `# generated by bench/ for ${name}
listen: { address: 0.0.0.0, port: 4789, sources: [${ADDR.mirrorSourceCidr}]${xdp} }
sessions: [ { vni: ${VNI}, name: bench } ]
allowlist: [${ADDR.exporterCidr}]
rules:
  - name: netflow
    match: { protocol: udp, dstPort: ${ADDR.monitoredPort} }
    destination: collector
destinations:
  collector: { backends: ['${ADDR.collector}:${ADDR.collectorPort}'], balance: hash, mtu: 1500 }
egress: { mode: ${egress} }
control: { listen: ${CONTROL} }
workers: ${workers}
`;
  }
  // 100,000 exporter addresses (/32s from 198.18.0.0 up: the 256 offered exporters included).
  const lines: string[] = ['# 100,000 exporters, generated by bench/'];
  for (let i = 0; i < 100_000; i++) {
    const v = 0xc6120000 + i;
    lines.push(`${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`);
  }
  writeFileSync(join(workDir, 'exporters.txt'), `${lines.join('\n')}\n`);
  const rules: string[] = [];
  for (let i = 0; i < 999; i++) {
    const v = 0xc6130000 + i * 16; // 198.19.x.y/28, one per customer
    rules.push(
      `  - { name: customer-${i}, match: { protocol: udp, srcCidr: ${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/28, dstPort: [${ADDR.monitoredPort}, 9995] }, destination: pool-${i % 10} }`,
    );
  }
  rules.push(`  - { name: netflow, match: { protocol: udp, srcCidr: ${ADDR.exporterCidr}, dstPort: ${ADDR.monitoredPort} }, destination: collector }`);
  const pools: string[] = [];
  for (let p = 0; p < 10; p++) pools.push(`  pool-${p}: { backends: ['198.18.4.${20 + p}:2055', '198.18.4.${40 + p}:2055'], balance: hash }`);
  return `# generated by bench/ for ${name}
listen: { address: 0.0.0.0, port: 4789, sources: [${ADDR.mirrorSourceCidr}] }
sessions: [ { vni: ${VNI}, name: bench } ]
allowlist: { file: exporters.txt }
rules:
${rules.join('\n')}
destinations:
  collector: { backends: ['${ADDR.collector}:${ADDR.collectorPort}'], balance: hash, mtu: 1500 }
${pools.join('\n')}
egress: { mode: raw }
control: { listen: ${CONTROL} }
workers: ${workers}
`;
}

/** GET on the gateway's control API from inside its namespace. */
export function controlGet(path: string): unknown {
  const out = sh('ip', ['netns', 'exec', NS.gw, 'curl', '-sf', '--max-time', '3', `http://${CONTROL}${path}`], { allowFail: true });
  if (!out) return null;
  try {
    return JSON.parse(out);
  } catch {
    return null;
  }
}

async function startMirrorgate(info: SystemInfo, opts: StartOptions): Promise<RunningSystem> {
  const dir = join(opts.workDir, info.name);
  mkdirSync(dir, { recursive: true });
  const cfg = join(dir, 'config.yaml');
  writeFileSync(cfg, mirrorgateConfig(info.name, dir));
  createGateway({});
  const nodeArgs = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${resolve(opts.cpuProfDir)}`] : [];
  const log = createWriteStream(join(dir, 'gateway.log'));
  const child = spawn(
    'ip',
    ['netns', 'exec', NS.gw, 'timeout', '-s', 'TERM', '-k', '10', String(opts.lifetimeS), process.execPath, ...nodeArgs, join(opts.root, 'dist/cli.js'), 'run', '-c', cfg],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = exitPromise(child);
  const deadline = Date.now() + 20_000;
  let ready = false;
  while (Date.now() < deadline && child.exitCode === null) {
    const c = controlGet('/api/counters') as Record<string, number> | null;
    if (c && 'rx_packets' in c) {
      ready = true;
      break;
    }
    await sleep(200);
  }
  if (!ready) {
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    deleteGateway();
    throw new Error(`${info.name} did not become ready; see ${join(dir, 'gateway.log')}`);
  }
  const nodePid = findDescendant(child.pid!, (comm) => comm === 'node' || comm.startsWith('node'));
  if (nodePid === null) throw new Error(`${info.name}: cannot find the node process under pid ${child.pid}`);
  return {
    info,
    pids: () => [nodePid],
    counters: () => controlGet('/api/counters') as Record<string, number> | null,
    notes: [],
    stop: async () => {
      try {
        process.kill(nodePid, 'SIGTERM');
      } catch {
        /* gone */
      }
      // A CPU profile is written at exit: give it time.
      await Promise.race([exited, sleep(30_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
      deleteGateway();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// pmacct

async function startPmacct(info: SystemInfo, opts: StartOptions): Promise<RunningSystem> {
  const dir = join(opts.workDir, 'pmacct');
  mkdirSync(dir, { recursive: true });
  const receivers = join(dir, 'tee_receivers.lst');
  writeFileSync(receivers, `id=1\tip=${ADDR.collector}:${ADDR.collectorPort}\n`);
  const conf = join(dir, 'nfacctd.conf');
  writeFileSync(
    conf,
    `! generated by bench/: a transparent NetFlow replicator
daemonize: false
nfacctd_ip: ${ADDR.monitored}
nfacctd_port: ${ADDR.monitoredPort}
nfacctd_pipe_size: 67108864
logfile: ${join(dir, 'nfacctd.log')}
plugins: tee[fwd]
tee_receivers[fwd]: ${receivers}
tee_transparent[fwd]: true
tee_pipe_size[fwd]: 67108864
plugin_pipe_size[fwd]: 134217728
${pmacctBufferSize > 0 ? `plugin_buffer_size[fwd]: ${pmacctBufferSize}\n` : ''}`,
  );
  createGateway({ vxlan: true, localMonitored: true });
  const log = createWriteStream(join(dir, 'nfacctd.out'));
  const child = spawn('ip', ['netns', 'exec', NS.gw, 'timeout', '-s', 'TERM', '-k', '10', String(opts.lifetimeS), 'nfacctd', '-f', conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = exitPromise(child);
  const deadline = Date.now() + 15_000;
  let ready = false;
  while (Date.now() < deadline && child.exitCode === null) {
    const ss = sh('ip', ['netns', 'exec', NS.gw, 'ss', '-lunH', 'sport', `= :${ADDR.monitoredPort}`], { allowFail: true });
    if (ss.includes(`${ADDR.monitored}:${ADDR.monitoredPort}`)) {
      ready = true;
      break;
    }
    await sleep(200);
  }
  // The tee plugin is a child process started right after the core binds.
  await sleep(500);
  if (!ready || child.exitCode !== null) {
    child.kill('SIGTERM');
    deleteGateway();
    throw new Error(`nfacctd did not start; see ${dir}/nfacctd.log and nfacctd.out`);
  }
  const pids = (): number[] => processTree(child.pid!).filter((p) => commOf(p)?.startsWith('nfacctd'));
  return {
    info,
    pids,
    counters: () => null,
    notes: [`nfacctd ${pids().length} processes (core + tee plugin), plugin_buffer_size ${pmacctBufferSize}`],
    stop: async () => {
      for (const p of pids()) {
        try {
          process.kill(p, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
      deleteGateway();
    },
  };
}

/** nfacctd's core→plugin buffer; set by main from --pmacct-buffer. */
export let pmacctBufferSize = 65536;
export function setPmacctBufferSize(bytes: number): void {
  pmacctBufferSize = bytes;
}

// ---------------------------------------------------------------------------------------------

function findDescendant(pid: number, match: (comm: string) => boolean): number | null {
  for (let tries = 0; tries < 50; tries++) {
    for (const p of processTree(pid)) {
      const comm = commOf(p);
      if (p !== pid && comm !== null && match(comm)) return p;
    }
    sleepSync(100);
  }
  return null;
}

function exitPromise(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once('exit', () => r());
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
