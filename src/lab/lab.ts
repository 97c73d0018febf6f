/**
 * A mirror lab in network namespaces: exporters send telemetry to a monitored host, the kernel
 * mirrors what arrives into VXLAN exactly as AWS VPC Traffic Mirroring does, and mirrorgate in
 * the gateway namespace delivers it to collectors with the exporter's source kept. See plan.ts
 * for the addresses.
 *
 * Every step of up() checks before it acts, so up() is safe to repeat; down() removes every
 * namespace with the lab's prefix and every process in them, whether or not this object made
 * them (after a crash, `mirrorgate lab down` finds them by name).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { validateConfig } from '../control/config.js';
import type { statusOf } from '../gateway/status.js';
import {
  Addr,
  checkPrefix,
  collectorAddress,
  gatewayLinkAddress,
  Iface,
  isLabNamespace,
  MAX_COLLECTORS,
  namespaceName,
  TelemetryPort,
  TELEMETRY_PORTS,
  type LabHost,
} from './plan.js';
import { LabError, LabProcess, run, sleep, until, type ExecOptions, type ExecResult, type ExitStatus, type SpawnProcessOptions } from './process.js';

export interface LabOptions {
  /** Namespace name prefix (default `mglab`): hosts are `<prefix>-exp`, `-mon`, `-gw`, `-col<k>`. */
  prefix?: string;
  /** VNI of the mirror session (default 4242; AWS picks a random one, never assume 1). */
  vni?: number;
  /** Collector hosts, 1-3 (default 1). */
  collectors?: number;
  /** MTU of the gateway→collector links and of the gateway's destinations (default 1500). */
  mtu?: number;
  /** Gateway workers (default 'auto'). */
  workers?: number | 'auto';
  /** Where configs, captures and logs go (default `$TMPDIR/mirrorgate-<prefix>`). */
  dir?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** MTU of the exporter↔monitored↔gateway links: a 2852-byte datagram and its VXLAN copy pass whole. */
export const MIRROR_PATH_MTU = 9000;
/** VXLAN over IPv4 adds 50 bytes (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14). */
const VXLAN_OVERHEAD = 50;

/** The gateway config document, as written to the file (YAML). */
export type GatewayConfigDoc = Record<string, unknown> & {
  listen: Record<string, unknown>;
  rules: { name: string; match: Record<string, unknown>; destination: string }[];
  destinations: Record<string, { backends: string[]; balance?: string; mtu?: number; df?: string }>;
};

/** GET /api/status, as the gateway writes it. */
export type GatewayStatus = ReturnType<typeof statusOf>;

export interface ControlAnswer {
  /** HTTP status; 0 when nothing answered. */
  status: number;
  body?: unknown;
  error?: string;
}

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** The CLI built beside this module (dist/cli.js, or build/src/cli.js under tests). */
export const CLI_PATH = join(HERE, '..', 'cli.js');
export const AGENT_PATH = join(HERE, 'agent.js');

export class Lab {
  readonly prefix: string;
  readonly vni: number;
  readonly collectors: number;
  readonly mtu: number;
  readonly workers: number | 'auto';
  readonly dir: string;
  /** The gateway started by {@link startGateway} in this process, if any. */
  gatewayProcess: LabProcess | null = null;
  private readonly log: (line: string) => void;
  private readonly processes = new Set<LabProcess>();
  private aborted = false;

  constructor(opts: LabOptions = {}) {
    this.prefix = opts.prefix ?? 'mglab';
    const bad = checkPrefix(this.prefix);
    if (bad) throw new LabError(bad);
    this.vni = opts.vni ?? 4242;
    if (!Number.isInteger(this.vni) || this.vni < 0 || this.vni > 0xffffff) throw new LabError(`expected a VNI 0-16777215, got ${opts.vni}`);
    this.collectors = opts.collectors ?? 1;
    if (!Number.isInteger(this.collectors) || this.collectors < 1 || this.collectors > MAX_COLLECTORS) {
      throw new LabError(`expected 1-${MAX_COLLECTORS} collectors, got ${opts.collectors}`);
    }
    this.mtu = opts.mtu ?? 1500;
    if (!Number.isInteger(this.mtu) || this.mtu < 576 || this.mtu > MIRROR_PATH_MTU) throw new LabError(`expected an MTU 576-${MIRROR_PATH_MTU}, got ${opts.mtu}`);
    this.workers = opts.workers ?? 'auto';
    this.dir = opts.dir ?? join(tmpdir(), `mirrorgate-${this.prefix}`);
    this.log = opts.log ?? (() => {});
  }

  /** A lab brought up earlier (by `mirrorgate lab up` in another process), from its saved options. */
  static attach(prefix = 'mglab', opts: Pick<LabOptions, 'dir' | 'log'> = {}): Lab {
    const dir = opts.dir ?? join(tmpdir(), `mirrorgate-${prefix}`);
    const file = join(dir, 'lab.json');
    if (!existsSync(file)) throw new LabError(`no lab "${prefix}" is up (${file} is missing); run \`mirrorgate lab up${prefix === 'mglab' ? '' : ` --prefix ${prefix}`}\` first`);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as LabOptions;
    return new Lab({ ...saved, prefix, dir, log: opts.log });
  }

  // ---- names and addresses ----

  /** The namespace of a host. */
  ns(host: LabHost): string {
    return namespaceName(this.prefix, host);
  }

  get hosts(): LabHost[] {
    return ['exporter', 'monitored', 'gateway', ...Array.from({ length: this.collectors }, (_, k) => `collector${k}` as LabHost)];
  }

  /** The exporter's primary address, 198.18.0.11. */
  get exporter(): string {
    return Addr.EXPORTERS[0];
  }

  /** All exporter addresses: 198.18.0.11 (primary) and the secondaries .12-.14. */
  get exporters(): readonly string[] {
    return Addr.EXPORTERS;
  }

  /** The monitored host the exporters send to, 198.18.0.1. */
  get monitored(): string {
    return Addr.MONITORED;
  }

  /** The gateway's address on the mirror link, 198.18.10.2. */
  get gateway(): string {
    return Addr.GATEWAY;
  }

  /** Collector k's address, 198.18.(20+k).10. */
  collector(k = 0): string {
    this.checkCollector(k);
    return collectorAddress(k);
  }

  /** "198.18.(20+k).10:port". */
  collectorEndpoint(k: number, port: number): string {
    return `${this.collector(k)}:${port}`;
  }

  /** The host name of collector k. */
  collectorHost(k = 0): LabHost {
    this.checkCollector(k);
    return `collector${k}`;
  }

  /** A file in the lab's work directory. */
  file(name: string): string {
    return join(this.dir, name);
  }

  private checkCollector(k: number): void {
    if (!Number.isInteger(k) || k < 0 || k >= this.collectors) throw new LabError(`collector ${k} does not exist (the lab has ${this.collectors})`);
  }

  // ---- running things in hosts ----

  /** Runs a command in a host to completion (default time limit 30 s). */
  async exec(host: LabHost, cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    this.checkNotAborted();
    return run('ip', ['netns', 'exec', this.ns(host), cmd, ...args], opts);
  }

  /**
   * Starts a long-running command in a host. The process is this lab's: down() stops it.
   * (`ip netns exec` execs the command, so the child's pid is the command's own.)
   */
  spawn(host: LabHost, cmd: string, args: readonly string[] = [], opts: SpawnProcessOptions = {}): LabProcess {
    this.checkNotAborted();
    const p = new LabProcess('ip', ['netns', 'exec', this.ns(host), cmd, ...args], { name: `${cmd} on ${host}`, ...opts });
    this.processes.add(p);
    void p.exited.then(() => this.processes.delete(p));
    return p;
  }

  /** Starts one of the lab's helper programs (agent.ts) in a host. */
  spawnAgent(host: LabHost, args: readonly string[], opts: SpawnProcessOptions = {}): LabProcess {
    return this.spawn(host, process.execPath, [AGENT_PATH, ...args], { name: `agent ${args[0]} on ${host}`, ...opts });
  }

  /** Runs a helper program to completion and returns its JSON lines. */
  async runAgent(host: LabHost, args: readonly string[], opts: ExecOptions = {}): Promise<Record<string, unknown>[]> {
    const r = await this.exec(host, process.execPath, [AGENT_PATH, ...args], opts);
    return r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Runs the mirrorgate CLI in a host (e.g. `status --json` in the gateway). */
  cli(host: LabHost, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return this.exec(host, process.execPath, [CLI_PATH, ...args], opts);
  }

  /** Waits until something listens on UDP `port` in `host`. */
  async waitUdpListening(host: LabHost, port: number, timeoutMs = 10_000): Promise<void> {
    await until(`UDP port ${port} listening on ${host}`, async () => {
      const r = await this.exec(host, 'ss', ['-Huln', `sport = :${port}`], { allowFailure: true });
      return r.stdout.trim() !== '';
    }, timeoutMs, 50);
  }

  /** The host's UDP counters from /proc/net/snmp (InDatagrams, NoPorts, InErrors, RcvbufErrors...). */
  async udpStats(host: LabHost): Promise<Record<string, number>> {
    const text = (await this.exec(host, 'cat', ['/proc/net/snmp'])).stdout;
    const lines = text.split('\n').filter((l) => l.startsWith('Udp:'));
    const names = lines[0]?.split(/\s+/).slice(1) ?? [];
    const values = lines[1]?.split(/\s+/).slice(1).map(Number) ?? [];
    return Object.fromEntries(names.map((n, i) => [n, values[i]]));
  }

  /**
   * Makes the exporter send to the monitored host from `address` (one of {@link exporters}):
   * softflowd and nfreplay cannot choose their source, so the route chooses it for them.
   */
  async setExporterSource(address: string): Promise<void> {
    if (!this.exporters.includes(address)) throw new LabError(`${address} is not an exporter address (${this.exporters.join(', ')})`);
    await this.ip('exporter', ['route', 'replace', `${Addr.MONITORED}/32`, 'dev', Iface.EXPORTER_UPLINK, 'src', address]);
  }

  // ---- lifecycle ----

  /**
   * Stops this object from running anything more in the lab (for a signal handler that is about
   * to call down() while other steps are still under way).
   */
  abort(): void {
    this.aborted = true;
  }

  private checkNotAborted(): void {
    if (this.aborted) throw new LabError(`lab ${this.prefix} was aborted`);
  }

  /** Takes the link to collector k down or up (on the gateway's side), e.g. to fail a backend. */
  async setCollectorLink(k: number, up: boolean): Promise<void> {
    this.checkCollector(k);
    await this.ip('gateway', ['link', 'set', Iface.gatewayToCollector(k), up ? 'up' : 'down']);
  }

  /** True when all of the lab's namespaces exist. */
  async isUp(): Promise<boolean> {
    const have = new Set(await listNamespaces());
    return this.hosts.every((h) => have.has(this.ns(h)));
  }

  /** Builds (or completes) the lab's hosts, links, mirror and the monitored host's UDP sink. */
  async up(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    chmodSync(this.dir, 0o755); // the non-root test runs the gateway as nobody with a config here
    const saved = { vni: this.vni, collectors: this.collectors, mtu: this.mtu, workers: this.workers, owner: process.pid, createdAt: new Date().toISOString() };
    writeFileSync(this.file('lab.json'), `${JSON.stringify(saved, null, 2)}\n`);
    const have = new Set(await listNamespaces());
    // Collectors beyond the count asked for (an earlier up with more): remove them.
    for (const ns of have) {
      const m = ns.startsWith(`${this.prefix}-col`) ? /^col(\d+)$/.exec(ns.slice(this.prefix.length + 1)) : null;
      if (m && Number(m[1]) >= this.collectors) {
        this.log(`removing ${ns}: the lab now has ${this.collectors} collector${this.collectors > 1 ? 's' : ''}`);
        await killNamespaceProcesses(ns);
        await run('ip', ['netns', 'del', ns]);
      }
    }
    for (const host of this.hosts) {
      const ns = this.ns(host);
      if (!have.has(ns)) {
        this.log(`namespace ${ns} (${host})`);
        await run('ip', ['netns', 'add', ns]);
      }
      await this.ip(host, ['link', 'set', 'lo', 'up']);
      // No IPv6: its neighbour discovery would be mirrored too and blur the counts.
      await this.sysctl(host, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 });
    }

    // exporter ↔ monitored: the routers' path to the instance.
    await this.veth('exporter', Iface.EXPORTER_UPLINK, 'monitored', Iface.MONITORED_ENI, MIRROR_PATH_MTU);
    for (const a of this.exporters) await this.ip('exporter', ['addr', 'replace', `${a}/24`, 'dev', Iface.EXPORTER_UPLINK]);
    // A router's NIC completes its UDP checksums, and AWS mirrors the packet as it arrived. A veth
    // would hand the monitored host (and so the mirror) a checksum left for offload to finish:
    // the exporters compute theirs in software, like real ones on the wire.
    await this.exec('exporter', 'ethtool', ['-K', Iface.EXPORTER_UPLINK, 'tx', 'off']);
    await this.ip('monitored', ['addr', 'replace', `${Addr.MONITORED}/24`, 'dev', Iface.MONITORED_ENI]);

    // monitored ↔ gateway: the mirror target's subnet.
    await this.veth('monitored', Iface.MONITORED_TO_GATEWAY, 'gateway', Iface.GATEWAY_UPLINK, MIRROR_PATH_MTU);
    await this.ip('monitored', ['addr', 'replace', `${Addr.MIRROR_SOURCE}/24`, 'dev', Iface.MONITORED_TO_GATEWAY]);
    await this.ip('gateway', ['addr', 'replace', `${Addr.GATEWAY}/24`, 'dev', Iface.GATEWAY_UPLINK]);

    // gateway ↔ collector k.
    for (let k = 0; k < this.collectors; k++) {
      const host = this.collectorHost(k);
      await this.veth('gateway', Iface.gatewayToCollector(k), host, Iface.COLLECTOR, this.mtu);
      await this.ip('gateway', ['addr', 'replace', `${gatewayLinkAddress(k)}/24`, 'dev', Iface.gatewayToCollector(k)]);
      await this.ip(host, ['addr', 'replace', `${collectorAddress(k)}/24`, 'dev', Iface.COLLECTOR]);
      // The packets come from the exporters, to which the collector has no route.
      await this.sysctl(host, { 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0, [`net.ipv4.conf.${Iface.COLLECTOR}.rp_filter`]: 0 });
    }

    await this.mirror();
    await this.startSink();
    this.log(`lab ${this.prefix} is up: ${this.hosts.map((h) => this.ns(h)).join(', ')}`);
  }

  /** The kernel's copy of AWS mirroring: tc ingress on the ENI, mirred into a VXLAN device. */
  private async mirror(): Promise<void> {
    const details = await this.ip('monitored', ['-d', 'link', 'show', 'dev', Iface.MIRROR], { allowFailure: true });
    const exists = details.code === 0;
    const right = exists && new RegExp(`vxlan id ${this.vni} `).test(details.stdout);
    if (exists && !right) {
      this.log(`mirror VNI changed to ${this.vni}: recreating ${Iface.MIRROR}`);
      await this.ip('monitored', ['link', 'del', Iface.MIRROR]);
    }
    if (!right) {
      this.log(`mirror: ${Iface.MIRROR} VXLAN VNI ${this.vni} ${Addr.MIRROR_SOURCE} → ${Addr.GATEWAY}:${Addr.VXLAN_PORT}`);
      await this.ip('monitored', [
        'link', 'add', Iface.MIRROR, 'type', 'vxlan', 'id', String(this.vni),
        'remote', Addr.GATEWAY, 'local', Addr.MIRROR_SOURCE, 'dstport', String(Addr.VXLAN_PORT), 'dev', Iface.MONITORED_TO_GATEWAY,
      ]);
    }
    await this.ip('monitored', ['link', 'set', Iface.MIRROR, 'mtu', String(MIRROR_PATH_MTU - VXLAN_OVERHEAD), 'up']);

    const qdisc = await run('tc', ['-n', this.ns('monitored'), 'qdisc', 'show', 'dev', Iface.MONITORED_ENI, 'ingress']);
    if (!/ingress/.test(qdisc.stdout)) {
      await run('tc', ['-n', this.ns('monitored'), 'qdisc', 'add', 'dev', Iface.MONITORED_ENI, 'ingress']);
    }
    const filters = await run('tc', ['-n', this.ns('monitored'), 'filter', 'show', 'dev', Iface.MONITORED_ENI, 'ingress']);
    if (!new RegExp(`mirror to device ${Iface.MIRROR}\\b`, 'i').test(filters.stdout)) {
      this.log(`mirror: tc ingress on ${Iface.MONITORED_ENI} → mirred egress mirror dev ${Iface.MIRROR}`);
      await run('tc', [
        '-n', this.ns('monitored'), 'filter', 'add', 'dev', Iface.MONITORED_ENI, 'parent', 'ffff:', 'protocol', 'all',
        'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'mirror', 'dev', Iface.MIRROR,
      ]);
    }
  }

  /** Packets and bytes the tc mirror action has copied so far. */
  async mirroredByKernel(): Promise<{ packets: number; bytes: number }> {
    const r = await run('tc', ['-n', this.ns('monitored'), '-s', 'filter', 'show', 'dev', Iface.MONITORED_ENI, 'ingress']);
    const m = /Sent (\d+) bytes (\d+) pkt/.exec(r.stdout);
    return { packets: Number(m?.[2] ?? 0), bytes: Number(m?.[1] ?? 0) };
  }

  /** The monitored host's UDP sink, so that no port-unreachable goes back to the exporters. */
  private async startSink(): Promise<void> {
    const pidFile = this.file('sink.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      const where = await run('ip', ['netns', 'identify', String(pid)], { allowFailure: true });
      if (where.code === 0 && where.stdout.trim() === this.ns('monitored')) return;
    }
    const sink = this.spawnAgent('monitored', ['sink', '--address', Addr.MONITORED, '--ports', TELEMETRY_PORTS.join(',')], {
      detached: true,
      logFile: this.file('sink.log'),
    });
    this.processes.delete(sink); // it belongs to the lab, not to this process: down() finds it by namespace
    writeFileSync(pidFile, String(sink.pid));
    for (const port of TELEMETRY_PORTS) await this.waitUdpListening('monitored', port);
    this.log(`monitored host: UDP sink on ${Addr.MONITORED} ports ${TELEMETRY_PORTS.join(', ')}`);
  }

  /**
   * Removes everything the lab made: stops its processes, then any process left in its
   * namespaces, deletes the namespaces (and with them every veth and the VXLAN device) and the
   * work directory. Works on a half-built or crashed lab; safe to repeat.
   */
  async down(opts: { keepFiles?: boolean } = {}): Promise<void> {
    const problems: string[] = [];
    await Promise.all([...this.processes].map((p) => p.stop({ timeoutMs: 3000 }).catch((e: Error) => problems.push(e.message))));
    this.gatewayProcess = null;
    const namespaces = (await listNamespaces()).filter((ns) => isLabNamespace(this.prefix, ns));
    for (const ns of namespaces) {
      try {
        await killNamespaceProcesses(ns);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    for (const ns of namespaces) {
      const r = await run('ip', ['netns', 'del', ns], { allowFailure: true });
      if (r.code !== 0 && (await listNamespaces()).includes(ns)) problems.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
      else this.log(`removed namespace ${ns}`);
    }
    if (!opts.keepFiles) rmSync(this.dir, { recursive: true, force: true });
    if (problems.length) throw new LabError(`lab ${this.prefix}: teardown incomplete:\n  ${problems.join('\n  ')}`);
  }

  // ---- the gateway ----

  /**
   * The gateway config for this lab: VXLAN from the monitored host, the lab's VNI, exporters
   * in 198.18.0.0/24, and one destination per protocol with a backend on every collector.
   */
  gatewayConfig(): GatewayConfigDoc {
    const backends = (port: number) => Array.from({ length: this.collectors }, (_, k) => this.collectorEndpoint(k, port));
    return {
      listen: { address: '0.0.0.0', port: Addr.VXLAN_PORT, sources: [Addr.MIRROR_NET] },
      sessions: [{ vni: this.vni, name: `lab-${this.prefix}` }],
      allowlist: [Addr.EXPORTER_NET],
      rules: [
        { name: 'netflow', match: { protocol: 'udp', dstPort: [TelemetryPort.NETFLOW, TelemetryPort.NETFLOW_ALT] }, destination: 'netflow' },
        { name: 'ipfix', match: { protocol: 'udp', dstPort: TelemetryPort.IPFIX }, destination: 'ipfix' },
        { name: 'sflow', match: { protocol: 'udp', dstPort: TelemetryPort.SFLOW }, destination: 'sflow' },
      ],
      destinations: {
        netflow: { backends: backends(TelemetryPort.NETFLOW), balance: 'hash', mtu: this.mtu },
        ipfix: { backends: backends(TelemetryPort.IPFIX), balance: 'hash', mtu: this.mtu },
        sflow: { backends: backends(TelemetryPort.SFLOW), balance: 'hash', mtu: this.mtu },
      },
      egress: { mode: 'raw' },
      control: { listen: Addr.CONTROL },
      workers: this.workers,
    };
  }

  /** Where the gateway's config lives. */
  get gatewayConfigPath(): string {
    return this.file('gateway.yaml');
  }

  /**
   * Writes the gateway's config file (default: {@link gatewayConfig}). It is validated first
   * unless `validate: false` (for tests that need a bad one).
   */
  writeGatewayConfig(doc: GatewayConfigDoc = this.gatewayConfig(), opts: { validate?: boolean } = {}): string {
    if (opts.validate !== false) {
      const r = validateConfig(JSON.parse(JSON.stringify(doc)), this.dir);
      if ('problems' in r) throw new LabError(`the lab's gateway config is invalid:\n  ${r.problems.join('\n  ')}`);
    }
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(this.gatewayConfigPath, `# written by mirrorgate lab (${this.prefix})\n${YAML.stringify(doc)}`, { mode: 0o644 });
    return this.gatewayConfigPath;
  }

  /**
   * Writes the gateway's config (`config`, default {@link gatewayConfig}), starts `mirrorgate
   * run -c <config>` in the gateway namespace and waits until its control API listens. `detached` leaves it running after
   * this process exits (`lab up`); down() stops it either way.
   */
  async startGateway(opts: { config?: GatewayConfigDoc; detached?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<LabProcess> {
    this.writeGatewayConfig(opts.config);
    const logFile = this.file('gateway.log');
    const logStart = existsSync(logFile) ? statSync(logFile).size : 0; // the log is appended to: read only this run's lines
    const p = this.spawn('gateway', process.execPath, [CLI_PATH, 'run', '-c', this.gatewayConfigPath], {
      name: 'mirrorgate run (gateway)',
      logFile,
      detached: opts.detached,
      env: { ...process.env, ...opts.env },
    });
    if (opts.detached) {
      this.processes.delete(p);
      writeFileSync(this.file('gateway.pid'), String(p.pid));
      await until('the gateway to start', async () => {
        const log = existsSync(logFile) ? readFileSync(logFile).subarray(logStart).toString('utf8') : '';
        if (log.includes('control API listening')) return true;
        if (!isAlive(p.pid)) throw new LabError(`the gateway exited during start:\n${log.trim().split('\n').slice(-5).join('\n')}`);
        return false;
      }, 20_000);
    } else {
      this.gatewayProcess = p;
      await p.waitForLine(/control API listening/, { stream: 'stderr', timeoutMs: 20_000 });
    }
    this.log(`gateway: mirrorgate run -c ${this.gatewayConfigPath} (pid ${p.pid}) in ${this.ns('gateway')}`);
    return p;
  }

  /** The pid of a gateway started detached (by `lab up`) that still runs in the gateway namespace, or null. */
  async detachedGatewayPid(): Promise<number | null> {
    const file = this.file('gateway.pid');
    if (!existsSync(file)) return null;
    const pid = Number(readFileSync(file, 'utf8'));
    const where = await run('ip', ['netns', 'identify', String(pid)], { allowFailure: true });
    return where.code === 0 && where.stdout.trim() === this.ns('gateway') ? pid : null;
  }

  /** Stops the gateway started by this process: SIGTERM, it drains and exits. */
  async stopGateway(): Promise<ExitStatus | null> {
    const p = this.gatewayProcess;
    this.gatewayProcess = null;
    return p ? p.stop({ timeoutMs: 10_000 }) : null;
  }

  /** Calls the gateway's control API from inside its namespace. */
  async control(method: 'GET' | 'POST', path: string): Promise<ControlAnswer> {
    const [answer] = await this.runAgent('gateway', ['control', method, path, '--address', Addr.CONTROL], { timeoutMs: 15_000 });
    if (!answer) throw new LabError(`control API ${method} ${path}: no answer from the agent`);
    return answer as unknown as ControlAnswer;
  }

  /** GET /api/status. */
  async status(): Promise<GatewayStatus> {
    return this.controlJson('GET', '/api/status') as Promise<GatewayStatus>;
  }

  /** GET /api/counters: every counter, summed over workers. */
  async counters(): Promise<Record<string, number>> {
    return this.controlJson('GET', '/api/counters') as Promise<Record<string, number>>;
  }

  private async controlJson(method: 'GET' | 'POST', path: string): Promise<unknown> {
    const a = await this.control(method, path);
    if (a.status !== 200) throw new LabError(`control API ${method} ${path}: ${a.status === 0 ? `no gateway answers (${a.error})` : `HTTP ${a.status} ${JSON.stringify(a.body)}`}`);
    return a.body;
  }

  // ---- plumbing ----

  private async ip(host: LabHost, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.checkNotAborted();
    return run('ip', ['-n', this.ns(host), ...args], opts);
  }

  private async sysctl(host: LabHost, settings: Record<string, number>): Promise<void> {
    await this.exec(host, 'sysctl', ['-q', '-w', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
  }

  /** A veth pair between two hosts (made directly in their namespaces, never in ours), both ends up. */
  private async veth(hostA: LabHost, ifA: string, hostB: LabHost, ifB: string, mtu: number): Promise<void> {
    const a = await this.ip(hostA, ['link', 'show', 'dev', ifA], { allowFailure: true });
    if (a.code !== 0) {
      this.log(`link ${this.ns(hostA)}:${ifA} ↔ ${this.ns(hostB)}:${ifB} (mtu ${mtu})`);
      await this.ip(hostA, ['link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', this.ns(hostB)]);
    }
    await this.ip(hostA, ['link', 'set', ifA, 'mtu', String(mtu), 'up']);
    await this.ip(hostB, ['link', 'set', ifB, 'mtu', String(mtu), 'up']);
  }
}

/**
 * The process that built the lab with `prefix` (from its lab.json), when it still runs and is not
 * this one: a test or `lab test` in progress. Null for labs left by `lab up` or by a crash.
 */
export function labOwner(prefix: string, dir = join(tmpdir(), `mirrorgate-${prefix}`)): number | null {
  try {
    const { owner } = JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8')) as { owner?: number };
    return typeof owner === 'number' && owner !== process.pid && isAlive(owner) ? owner : null;
  } catch {
    return null;
  }
}

/** Names of all network namespaces (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);
}

/** Prefixes of the labs on this host: those with all of the exporter, monitored and gateway namespaces. */
export async function labPrefixes(): Promise<string[]> {
  const all = new Set(await listNamespaces());
  const found: string[] = [];
  for (const ns of all) {
    const m = /^(.+)-exp$/.exec(ns);
    if (m && all.has(`${m[1]}-mon`) && all.has(`${m[1]}-gw`) && checkPrefix(m[1]) === null) found.push(m[1]);
  }
  return found;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops every process inside `ns`, by pid: SIGTERM, then SIGKILL after 3 s. */
async function killNamespaceProcesses(ns: string): Promise<void> {
  const pids = async () =>
    (await run('ip', ['netns', 'pids', ns], { allowFailure: true })).stdout
      .split('\n')
      .map(Number)
      .filter((p) => p > 0 && p !== process.pid);
  const first = await pids();
  if (first.length === 0) return;
  for (const pid of first) signal(pid, 'SIGTERM');
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && (await pids()).length > 0) await sleep(100);
  const left = await pids();
  for (const pid of left) signal(pid, 'SIGKILL');
  if (left.length) await sleep(200);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
