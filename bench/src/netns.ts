/**
 * Builds and tears down the benchmark's hosts (see layout.ts). Everything is named mgbench-* and
 * torn down by name; processes left in a namespace by an earlier, interrupted run are ended by the
 * pids `ip netns pids` reports for that namespace only.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { ADDR, IF, MAC, NS, PREFIX, VNI } from './layout.js';

/** Runs a command; throws with its stderr when it fails. */
export function sh(cmd: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input, timeout: 30_000 });
  if ((r.status !== 0 || r.error) && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? ''}${r.stderr.trim()} (exit ${r.status})`);
  }
  return r.stdout ?? '';
}

export const ip = (...args: string[]): string => sh('ip', args);
/** Runs a command inside namespace `ns`. */
export const inNs = (ns: string, cmd: string, ...args: string[]): string => sh('ip', ['netns', 'exec', ns, cmd, ...args]);

function sysctl(ns: string, key: string, value: string | number): void {
  inNs(ns, 'sysctl', '-q', '-w', `${key}=${value}`);
}

/** Namespaces of ours that exist now. */
export function ourNamespaces(): string[] {
  const out = sh('ip', ['netns', 'list'], { allowFail: true });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n) => n && n.startsWith(`${PREFIX}-`));
}

/** Ends the processes inside one of our namespaces (TERM, then KILL after `graceMs`). */
export function killNamespaceProcesses(ns: string, graceMs = 3000): void {
  const pids = () =>
    sh('ip', ['netns', 'pids', ns], { allowFail: true })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((p) => p > 0 && p !== process.pid);
  let list = pids();
  if (list.length === 0) return;
  for (const p of list) tryKill(p, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (Date.now() < until && (list = pids()).length > 0) sleepSync(50);
  for (const p of list) tryKill(p, 'SIGKILL');
}

function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

export function deleteNamespace(ns: string): void {
  killNamespaceProcesses(ns);
  sh('ip', ['netns', 'del', ns], { allowFail: true });
}

/** Removes every mgbench-* namespace (and so every veth/vxlan device in it). */
export function teardownAll(): void {
  for (const ns of ourNamespaces()) deleteNamespace(ns);
}

function addNs(ns: string): void {
  ip('netns', 'add', ns);
  inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
  sysctl(ns, 'net.ipv4.conf.all.rp_filter', 0);
  sysctl(ns, 'net.ipv4.conf.default.rp_filter', 0);
}

/**
 * A veth pair a (in aNs) ↔ b (in bNs). b, the receiving end, gets NAPI (GRO on) in threaded mode:
 * its receive processing runs in its own kernel thread "napi/<b>-<id>", like a NIC's receive
 * queue, instead of inside the sender's sendmmsg call (veth's default, which would charge the
 * whole receiving host's work — for the kernel path: decapsulation, DNAT, forwarding — to the
 * generator). The thread runs at normal priority unless --napi-policy says otherwise: SCHED_FIFO
 * (softirq's precedence over user tasks) lets it poll the generator out of the CPU here.
 */
function vethPair(aNs: string, a: string, bNs: string, b: string): void {
  ip('link', 'add', a, 'netns', aNs, 'type', 'veth', 'peer', 'name', b, 'netns', bNs);
  for (const [ns, dev] of [[aNs, a], [bNs, b]] as const) {
    sysctl(ns, `net.ipv4.conf.${dev}.rp_filter`, 0);
    inNs(ns, 'ip', 'link', 'set', dev, 'up');
  }
  // veth hands a packet to the peer's NAPI only if the sender does no TSO (or the receiver does UDP GRO forwarding, which would merge datagrams).
  inNs(aNs, 'ethtool', '-K', a, 'tso', 'off');
  inNs(bNs, 'ethtool', '-K', b, 'gro', 'on');
  inNs(bNs, 'sh', '-c', `echo 1 > /sys/class/net/${b}/threaded`);
  if (linkQueue > 0) inNs(aNs, 'tc', 'qdisc', 'replace', 'dev', a, 'root', 'pfifo', 'limit', String(linkQueue));
  if (napiPolicy === 'fifo') for (const pid of napiThreads(b)) sh('chrt', ['-f', '-p', '50', String(pid)]);
  else if (napiPolicy === 'nice') for (const pid of napiThreads(b)) sh('renice', ['-n', '-10', '-p', String(pid)]);
}

/**
 * Packets a sending veth end may queue when its peer's receive ring (VETH_RING, 256 frames) is full. 0 keeps
 * veth's default (no qdisc: a full ring drops). With a qdisc the kernel stops the queue instead
 * and the packets wait, so ring + queue model a NIC's deeper receive ring (an ENA's default is
 * 1024 descriptors).
 */
export let linkQueue = 0;
export function setLinkQueue(n: number): void {
  linkQueue = n;
}

export const NAPI_POLICIES = ['other', 'nice', 'fifo'] as const;
export type NapiPolicy = (typeof NAPI_POLICIES)[number];

/** How the receive threads are scheduled (see vethPair). */
export let napiPolicy: NapiPolicy = 'other';
export function setNapiPolicy(p: NapiPolicy): void {
  napiPolicy = p;
}

/** Kernel threads doing a device's receive processing (threaded NAPI; comm is cut at 15 chars). */
export function napiThreads(dev: string): number[] {
  const want = `napi/${dev}-`.slice(0, 15);
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/comm`, 'utf8').startsWith(want)) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The generator and sink hosts and the direct link between them (present for the whole run). */
export function createBase(): void {
  addNs(NS.gen);
  addNs(NS.sink);
  inNs(NS.sink, 'ip', 'addr', 'add', `${ADDR.collector}/32`, 'dev', 'lo');
  vethPair(NS.gen, IF.genDirect, NS.sink, IF.sinkDirect);
  inNs(NS.gen, 'ip', 'addr', 'add', `${ADDR.genDirect}/24`, 'dev', IF.genDirect);
  inNs(NS.sink, 'ip', 'addr', 'add', `${ADDR.sinkDirect}/24`, 'dev', IF.sinkDirect);
  inNs(NS.gen, 'ip', 'route', 'add', `${ADDR.collector}/32`, 'via', ADDR.sinkDirect);
}

/**
 * The gateway host, new for each system under test: linked to the generator (mirror target
 * address) and to the sink (route to the collector). `kernelPath` adds what the Linux stack needs
 * to do the job itself: a VXLAN device for the session's VNI wearing the monitored ENI's MAC.
 */
export function createGateway(opts: { vxlan?: boolean; forward?: boolean; localMonitored?: boolean } = {}): void {
  addNs(NS.gw);
  vethPair(NS.gen, IF.genToGw, NS.gw, IF.gwFromGen);
  vethPair(NS.gw, IF.gwToSink, NS.sink, IF.sinkFromGw);
  for (const a of ADDR.mirrorSources) inNs(NS.gen, 'ip', 'addr', 'add', `${a}/24`, 'dev', IF.genToGw);
  inNs(NS.gw, 'ip', 'addr', 'add', `${ADDR.gwOuter}/24`, 'dev', IF.gwFromGen);
  inNs(NS.gw, 'ip', 'addr', 'add', `${ADDR.gwToSink}/24`, 'dev', IF.gwToSink);
  inNs(NS.sink, 'ip', 'addr', 'add', `${sinkSideAddress()}/24`, 'dev', IF.sinkFromGw);
  inNs(NS.gw, 'ip', 'route', 'add', `${ADDR.collector}/32`, 'via', sinkSideAddress());
  sysctl(NS.gw, 'net.ipv4.ip_forward', opts.forward ? 1 : 0);
  if (opts.vxlan) {
    inNs(NS.gw, 'ip', 'link', 'add', IF.vxlan, 'type', 'vxlan', 'id', String(VNI), 'dstport', '4789', 'local', ADDR.gwOuter, 'dev', IF.gwFromGen, 'nolearning');
    inNs(NS.gw, 'ip', 'link', 'set', IF.vxlan, 'address', MAC.monitoredText);
    sysctl(NS.gw, `net.ipv4.conf.${IF.vxlan}.rp_filter`, 0);
    inNs(NS.gw, 'ip', 'link', 'set', IF.vxlan, 'up');
    if (opts.localMonitored) inNs(NS.gw, 'ip', 'addr', 'add', `${ADDR.monitored}/32`, 'dev', IF.vxlan);
  }
}

/** The sink's address on the gateway link (next hop to the collector). */
export function sinkSideAddress(): string {
  return '198.18.4.2';
}

export function deleteGateway(): void {
  killNamespaceProcesses(NS.gw);
  // Namespace deletion is asynchronous: remove the links now so the next gateway can reuse the names.
  sh('ip', ['-n', NS.gen, 'link', 'del', IF.genToGw], { allowFail: true });
  sh('ip', ['-n', NS.sink, 'link', 'del', IF.sinkFromGw], { allowFail: true });
  deleteNamespace(NS.gw);
}

/** nftables DNAT in the gateway namespace: monitored address:2055 → collector:2055. */
export function installDnat(): void {
  const rules = `table ip mgbench {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${ADDR.monitored} udp dport ${ADDR.monitoredPort} dnat to ${ADDR.collector}:${ADDR.collectorPort}
  }
}
`;
  sh('ip', ['netns', 'exec', NS.gw, 'nft', '-f', '-'], { input: rules });
}

/** Whether a program is on PATH. */
export function have(program: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Where packets are lost: per-namespace counters that say so. Link drops (a veth ring or queue
 * full), UDP receive-buffer overflows and other UDP receive errors, by "ns:counter".
 */
export function lossCounters(namespaces: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const ns of namespaces) {
    const links = sh('ip', ['-n', ns, '-s', '-j', 'link', 'show'], { allowFail: true });
    try {
      for (const l of JSON.parse(links || '[]') as { ifname: string; stats64?: { rx: { dropped: number; errors: number }; tx: { dropped: number; errors: number } } }[]) {
        if (!l.stats64 || l.ifname === 'lo') continue;
        out[`${ns}:${l.ifname}.rx_dropped`] = l.stats64.rx.dropped;
        out[`${ns}:${l.ifname}.tx_dropped`] = l.stats64.tx.dropped;
        out[`${ns}:${l.ifname}.rx_errors`] = l.stats64.rx.errors;
      }
    } catch {
      /* namespace gone */
    }
    const snmp = sh('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp'], { allowFail: true }).split('\n').filter((l) => l.startsWith('Udp:'));
    if (snmp.length === 2) {
      const names = snmp[0].split(/\s+/).slice(1);
      const vals = snmp[1].split(/\s+/).slice(1).map(Number);
      names.forEach((n, i) => {
        if (n === 'RcvbufErrors' || n === 'InErrors' || n === 'NoPorts' || n === 'InCsumErrors' || n === 'SndbufErrors') out[`${ns}:udp.${n}`] = vals[i];
      });
    }
  }
  return out;
}

/** Counters that grew between two lossCounters() snapshots. */
export function lossDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const x = v - (before[k] ?? 0);
    if (x > 0 && k in before) d[k] = x;
  }
  return d;
}
