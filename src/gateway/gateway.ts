/**
 * The live gateway's main thread: owns the configuration, the workers, reloads and the control
 * API, and never touches a packet. Workers get whole configurations and swap their tables between
 * batches; their counters live in shared memory that this thread sums on demand.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Config } from '../control/config.js';
import { loadConfigIsolated } from './config-worker.js';
import { ConfigError, MirrorgateError } from '../control/errors.js';
import type { Logger } from '../control/log.js';
import { Counters, CounterLayout, sumSnapshots } from '../core/counters.js';
import type { PacketTrace } from '../core/trace.js';
import type { TraceFilter } from '../core/trace-filter.js';
import { loadError, nativeAvailable, PacketSender, RawSender, rcvbufAdvice } from '../io/native/index.js';
import { TcProgram } from '../io/native/tc.js';
import { readInterface, readXdpDrops, XdpProgram, type XdpInterface } from '../io/native/xdp.js';
import { accountingFrom, type Accounting } from '../pipeline/accounting.js';
import { BACKEND_SLOTS, type SharedState } from '../pipeline/build.js';
import { ExporterTable, topExporters, type ExporterStats } from '../flow/exporters.js';
import { KeyedCounters } from '../core/keyed-counters.js';
import { InstanceLock } from './instance-lock.js';
import { readSocketDrops, socketInode } from '../io/socket-drops.js';
import { NextHopWatcher } from './next-hop-watch.js';
import type { HopResolution } from '../io/next-hop.js';
import { HealthMonitor } from '../health/monitor.js';
import { FastPath, type FastPathView } from './fast-path.js';
import { ControlSlot, type FromWorker, type ToWorker, type WorkerSetup } from './messages.js';

/**
 * Workers for `workers: auto`: one per core but one. The kernel's receive and transmit work for
 * the same packets (NIC or veth queues, UDP delivery) needs a core too; a worker on every core
 * competes with it and costs more per packet (on 2 cores, 7.9 µs against 5.2 µs at 85k pps).
 */
export function autoWorkers(cores: number): number {
  return Math.max(1, cores - 1);
}

export interface GatewayOptions {
  configPath: string;
  log: Logger;
  /** Packets per receive batch (recvmmsg takes at most 256). */
  batchSize?: number;
}

interface WorkerHandle {
  index: number;
  worker: Worker;
  port: MessagePort;
  control: Int32Array;
  counters: Counters | null;
  shared: SharedState | null;
  generation: number;
  stopped: boolean;
  /** Its XDP sockets while it runs, for the kernel's drop counts. */
  xdpFds: number[];
}

export type ReloadResult = { ok: true; generation: number } | { ok: false; problems: string[] };

const READY_TIMEOUT_MS = 10_000;
const WORKER_YOUNG_GENERATION_MB = 4;
/** Packets a worker traces at most when a filter picks among them. */
const TRACE_LIMIT = 1000;
const APPLY_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 5_000;

export class Gateway {
  config: Config;
  generation = 1;
  readonly startedAt = new Date();
  readonly reloads = { success: 0, failure: 0 };
  lastReloadProblems: string[] = [];
  private readonly workers: WorkerHandle[] = [];
  /** The workers' receive sockets, by inode, for the kernel's drop counts. */
  private readonly socketInodes = new Set<number>();
  private readonly waiters = new Set<(m: FromWorker) => void>();
  private lock: InstanceLock | null = null;
  private readonly health: HealthMonitor;
  /** Backend counter slots by "destination/backend"; a slot is never reused for another backend. */
  readonly slots = new Map<string, number>();
  private stopping: Promise<void> | null = null;
  /** Packet egress only: the backends' next hops, read from the kernel's tables. */
  private nextHops: NextHopWatcher | null = null;
  /** XDP ingress only: the program on the mirror-target interface, and the workers' sockets. */
  private xdp: { iface: XdpInterface; program: XdpProgram } | null = null;
  /** Kernel drops at XDP sockets the workers have closed. */
  private closedXdpDrops = 0;
  /** listen.fastPath: flows a BPF program forwards itself, in the XDP program or at tc ingress. */
  private fast: FastPath | null = null;
  /** listen.fastPath hook tc: its program. */
  private tc: { iface: string; program: TcProgram } | null = null;

  private constructor(
    private readonly options: GatewayOptions,
    config: Config,
  ) {
    this.config = config;
    this.health = new HealthMonitor({ log: options.log });
    this.health.on('change', (c) => {
      if (c.to === 'down' && this.allDown(c.destination)) {
        const policy = this.config.destinations[c.destination]?.whenAllDown === 'drop' ? 'dropping its traffic' : 'still sending to the last-known set';
        this.log.error({ destination: c.destination }, `every backend of destination ${c.destination} is down; ${policy}`);
      }
      for (const w of this.workers) if (!w.stopped) this.post(w, { type: 'health', destination: c.destination, backend: c.backend, up: c.to === 'up' });
      this.fast?.invalidate();
    });
  }

  private allDown(destination: string): boolean {
    const states = this.health.states()[destination] ?? {};
    return Object.values(states).every((s) => s.state === 'down');
  }

  /** Starts or updates health checks for `config` and tells the workers every backend's state. */
  private syncHealth(config: Config): void {
    this.health.update(
      Object.entries(config.destinations).flatMap(([destination, d]) =>
        d.backends.map((b) => ({ destination, backend: b.text, host: b.address, port: b.port || (d.health.port ?? 0), check: d.health })),
      ),
    );
    for (const b of this.backendHealth()) {
      for (const w of this.workers) if (!w.stopped) this.post(w, { type: 'health', destination: b.destination, backend: b.backend, up: b.up });
    }
  }

  /** Health of every backend of the running configuration. */
  backendHealth(): { destination: string; backend: string; up: boolean; since: number; detail: string }[] {
    const states = this.health.states();
    return Object.entries(this.config.destinations).flatMap(([destination, d]) =>
      d.backends.map((b) => {
        const s = states[destination]?.[b.text];
        return { destination, backend: b.text, up: s ? s.state === 'up' : true, since: s?.since ?? this.startedAt.getTime(), detail: s?.lastDetail ?? '' };
      }),
    );
  }

  /** Packet egress: each backend address's next hop as last read; null in other modes. */
  nextHopResolutions(): HopResolution[] | null {
    return this.nextHops?.current ?? null;
  }

  get log(): Logger {
    return this.options.log;
  }

  get configPath(): string {
    return resolve(this.options.configPath);
  }

  static async start(options: GatewayOptions): Promise<Gateway> {
    const config = await loadConfigIsolated(options.configPath);
    preflight(config);
    const gw = new Gateway(options, config);
    gw.lock = await InstanceLock.acquire(config.listen.port, {
      pid: process.pid,
      config: gw.configPath,
      control: `${config.control.listen.host}:${config.control.listen.port}`,
      since: gw.startedAt.toISOString(),
    });
    try {
      const x = config.listen.xdp;
      const f = config.listen.fastPath;
      if (f) gw.fast = new FastPath(gw.log, f.hook);
      if (x) {
        const iface = readInterface(x.interface);
        const ports = [config.listen.port, config.listen.genevePort];
        const fast = f?.hook === 'xdp' ? gw.fast?.maps : undefined;
        gw.xdp = { iface, program: new XdpProgram({ iface, address: config.listen.address, ports, frameSize: x.frameSize, fast }) };
      }
      if (f?.hook === 'tc' && gw.fast) {
        const iface = readInterface(f.interface!, 'listen.fastPath.interface', 'MG_ERR_TC');
        gw.tc = { iface: iface.name, program: new TcProgram({ iface, address: config.listen.address, vxlanPort: config.listen.port, fast: gw.fast.maps }) };
        if (gw.tc.program.via === 'filter') {
          gw.log.warn(
            { interface: iface.name, pref: gw.tc.program.filterPref },
            'this kernel has no tcx links: the tc fast path is a clsact filter, which stays attached if mirrorgate is killed (the next start replaces it)',
          );
        }
      }
      await gw.spawnWorkers();
      gw.syncHealth(config);
      if (config.egress.mode === 'packet') {
        gw.nextHops = new NextHopWatcher(gw.log, (hops) => {
          for (const w of gw.workers) if (!w.stopped) gw.post(w, { type: 'nexthops', hops });
          gw.fast?.invalidate();
        });
        await gw.nextHops.start(backendAddresses(config));
      }
    } catch (err) {
      await gw.stop();
      throw err;
    }
    gw.log.info(
      {
        listen: `${config.listen.address}:${config.listen.port}`,
        ingress: gw.xdp ? `xdp on ${gw.xdp.iface.name}` : 'sockets',
        ...(gw.fast ? { fastPath: `${gw.fast.hook}${gw.tc?.program.via === 'filter' ? ' (clsact filter)' : ''} on ${gw.tc?.iface ?? gw.xdp?.iface.name}` } : {}),
        workers: gw.workers.length,
        egress: config.egress.mode,
        config: gw.configPath,
      },
      'gateway running',
    );
    return gw;
  }

  get workerCount(): number {
    return this.workers.length;
  }

  get ready(): boolean {
    return this.stopping === null && this.workers.length > 0 && this.workers.every((w) => w.counters !== null && !w.stopped);
  }

  private assignSlots(config: Config): Map<string, number> {
    for (const [name, d] of Object.entries(config.destinations)) {
      for (const b of d.backends) {
        const key = `${name}/${b.text}`;
        if (!this.slots.has(key) && this.slots.size < BACKEND_SLOTS) this.slots.set(key, this.slots.size);
      }
    }
    return new Map(this.slots);
  }

  private async spawnWorkers(): Promise<void> {
    const n = this.config.workers === 'auto' ? autoWorkers(availableParallelism()) : this.config.workers;
    const readyAll: Promise<void>[] = [];
    for (let index = 0; index < n; index++) {
      const channel = new MessageChannel();
      const controlBuffer = new SharedArrayBuffer(8);
      const setup: WorkerSetup = {
        index,
        workers: n,
        config: this.config,
        generation: this.generation,
        slots: this.assignSlots(this.config),
        batchSize: this.options.batchSize ?? 256,
        control: controlBuffer,
        port: channel.port2,
        xdp: this.xdp && { iface: this.xdp.iface, mapFd: this.xdp.program.mapFd, queues: xdpQueues(this.xdp.iface.queues, n, index) },
      };
      const worker = new Worker(new URL('./worker.js', import.meta.url), {
        workerData: setup,
        transferList: [channel.port2],
        // The data path allocates (almost) nothing: a small young generation keeps RSS down.
        resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      });
      const handle: WorkerHandle = { index, worker, port: channel.port1, control: new Int32Array(controlBuffer), counters: null, shared: null, generation: this.generation, stopped: false, xdpFds: [] };
      this.workers.push(handle);
      worker.on('message', (m: FromWorker) => this.onMessage(handle, m));
      worker.on('error', (err) => this.log.error({ worker: index, err: err.message }, 'worker failed'));
      worker.on('exit', (code) => {
        handle.stopped = true;
        if (!this.stopping) this.log.error({ worker: index, code }, 'worker exited unexpectedly');
      });
      readyAll.push(
        this.waitFor((m) => m.index === index && (m.type === 'ready' || m.type === 'error'), READY_TIMEOUT_MS).then((m) => {
          if (m.type === 'error') throw new MirrorgateError(m.code, m.message);
        }),
      );
    }
    await Promise.all(readyAll);
  }

  private onMessage(handle: WorkerHandle, m: FromWorker): void {
    if (m.type === 'ready') {
      const layout = new CounterLayout();
      for (const name of m.shared.counterNames) layout.slot(name);
      handle.counters = new Counters(layout, m.shared.counters);
      handle.shared = m.shared;
      this.fast?.attachWorker(m.index, m.shared.streamOwners);
      for (const fd of m.socketFds) {
        const inode = socketInode(fd);
        if (inode !== null) this.socketInodes.add(inode);
      }
      handle.xdpFds = m.xdp.map((x) => x.fd);
      if (m.xdp.length) this.log.info({ worker: m.index, interface: this.xdp?.iface.name, queues: m.xdp.map((x) => x.queue), zeroCopy: m.xdp.every((x) => x.zeroCopy) }, 'XDP ingress ready');
      const advice = m.index === 0 ? rcvbufAdvice(m.rcvbufBytes) : null; // every worker's socket gets the same
      if (advice) this.log.warn({ rcvbufBytes: m.rcvbufBytes }, advice);
    } else if (m.type === 'applied') handle.generation = m.generation;
    else if (m.type === 'fast-flows') this.fast?.propose(m.rows, m.index, m.generation, this.generation, this.config, this.nextHops?.current ?? [], this.slots);
    else if (m.type === 'error') this.log.error({ worker: m.index, code: m.code }, m.message);
    else if (m.type === 'stopped') {
      handle.stopped = true;
      this.closedXdpDrops += m.xdpDrops;
      handle.xdpFds = [];
    }
    for (const w of [...this.waiters]) w(m);
  }

  private waitFor(match: (m: FromWorker) => boolean, timeoutMs: number): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(listener);
        reject(new MirrorgateError('MG_ERR_WORKER', `workers did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (m: FromWorker) => {
        if (!match(m)) return;
        clearTimeout(timer);
        this.waiters.delete(listener);
        resolve(m);
      };
      this.waiters.add(listener);
    });
  }

  private post(handle: WorkerHandle, message: ToWorker): void {
    handle.port.postMessage(message);
    Atomics.add(handle.control, ControlSlot.MAILBOX, 1);
  }

  /**
   * Re-reads the config file. An invalid file, or one that changes what only a restart can
   * change, is rejected whole and the running configuration keeps forwarding.
   */
  async reload(): Promise<ReloadResult> {
    let next: Config;
    try {
      next = await loadConfigIsolated(this.options.configPath);
      const restart = restartOnlyChanges(this.config, next);
      if (restart.length) throw new ConfigError(restart.map((f) => `${f}: changes only on restart; the running value is kept`), this.options.configPath);
    } catch (err) {
      const problems = err instanceof ConfigError ? [...err.problems] : [String((err as Error).message)];
      this.reloads.failure++;
      this.lastReloadProblems = problems;
      this.log.error({ problems, generation: this.generation }, 'reload rejected; running configuration kept');
      return { ok: false, problems };
    }
    const generation = this.generation + 1;
    const live = this.workers.filter((w) => !w.stopped);
    const applied = live.map((w) =>
      this.waitFor((m) => m.type === 'applied' && m.index === w.index && m.generation === generation, APPLY_TIMEOUT_MS),
    );
    const slots = this.assignSlots(next);
    for (const w of live) this.post(w, { type: 'tables', config: next, generation, slots });
    await Promise.all(applied);
    this.config = next;
    this.syncHealth(next);
    await this.nextHops?.refresh(backendAddresses(next));
    this.generation = generation;
    this.fast?.invalidate();
    this.reloads.success++;
    this.lastReloadProblems = [];
    this.log.info({ generation, rules: next.rules.length, destinations: Object.keys(next.destinations).length }, 'configuration reloaded');
    return { ok: true, generation };
  }

  /**
   * Counters summed over workers, by name, and `rx_socket_drops`: packets the kernel dropped at
   * the workers' receive sockets (UDP buffer or XDP ring full) before any worker saw them.
   */
  counters(): Record<string, number> {
    const sum = sumSnapshots([...this.workers.flatMap((w) => (w.counters ? [w.counters.snapshot()] : [])), ...(this.fast ? [this.fast.snapshot()] : [])]);
    sum.rx_socket_drops = readSocketDrops(this.socketInodes) + readXdpDrops(this.workers.flatMap((w) => w.xdpFds)) + this.closedXdpDrops;
    return sum;
  }

  accounting(): Accounting {
    return accountingFrom(this.counters());
  }

  /** Every worker's shared counters, and the fast path's. */
  private shared(): SharedState[] {
    const all = this.workers.flatMap((w) => (w.shared ? [w.shared] : []));
    if (this.fast) {
      this.fast.fold();
      all.push(this.fast.shared);
    }
    return all;
  }

  /** The fast path's state; null when it is off. */
  fastPath(): FastPathView | null {
    return this.fast?.view ?? null;
  }

  /** The top `n` exporters by packets over all workers, the rest folded into "other". */
  exporters(n: number): { rows: ExporterStats[]; untracked: number } {
    const tables = this.shared().map((s) => ExporterTable.read(s.exporters));
    return { rows: topExporters(tables, n), untracked: tables.reduce((sum, t) => sum + t.untracked, 0) };
  }

  /** Packets and bytes per mirror session (VNI). */
  sessions(): { vni: number; name: string; packets: number; bytes: number }[] {
    const total = new Map<number, [number, number]>();
    for (const s of this.shared()) {
      for (const [vni, [packets, bytes]] of KeyedCounters.read(s.sessions).rows) {
        const t = total.get(vni) ?? [0, 0];
        total.set(vni, [t[0] + packets, t[1] + bytes]);
      }
    }
    const names = new Map((this.config.sessions ?? []).map((x) => [x.vni, x.name ?? String(x.vni)]));
    return [...total].map(([vni, [packets, bytes]]) => ({ vni, name: names.get(vni) ?? String(vni), packets, bytes })).sort((a, b) => a.vni - b.vni);
  }

  /** Packets sent to each backend of the running configuration, by destination. */
  backendPackets(): { destination: string; backend: string; packets: number }[] {
    const shared = this.shared().map((s) => new Float64Array(s.backendPackets));
    return Object.entries(this.config.destinations).flatMap(([destination, d]) =>
      d.backends.map((b) => {
        const slot = this.slots.get(`${destination}/${b.text}`) ?? -1;
        return { destination, backend: b.text, packets: slot < 0 ? 0 : shared.reduce((sum, v) => sum + v[slot], 0) };
      }),
    );
  }

  /**
   * Traces the next packets (each worker up to `count`, or the tracer's limit when filtering) and
   * returns the first `count` that match `filter`, seen within `waitMs`.
   */
  trace(count: number, waitMs: number, filter: TraceFilter = () => true, filtering = false): Promise<PacketTrace[]> {
    // One trace session at a time: each owns the workers' tracers from arm to collect.
    const run = this.tracing.then(() => this.traceOnce(count, waitMs, filter, filtering));
    this.tracing = run.catch(() => undefined);
    return run;
  }

  private tracing: Promise<unknown> = Promise.resolve();
  private traceId = 0;

  private async traceOnce(count: number, waitMs: number, filter: TraceFilter, filtering: boolean): Promise<PacketTrace[]> {
    // The fast path's packets never reach a worker: it is off while the trace runs.
    this.fast?.pause();
    try {
      return await this.traceWorkers(count, waitMs, filter, filtering);
    } finally {
      this.fast?.resume();
    }
  }

  private async traceWorkers(count: number, waitMs: number, filter: TraceFilter, filtering: boolean): Promise<PacketTrace[]> {
    const id = ++this.traceId;
    const live = this.workers.filter((w) => !w.stopped);
    for (const w of live) this.post(w, { type: 'trace', id, count: filtering ? TRACE_LIMIT : count });
    await new Promise((r) => setTimeout(r, waitMs));
    const collected = live.map((w) => this.waitFor((m) => m.type === 'traces' && m.index === w.index && m.id === id, APPLY_TIMEOUT_MS));
    for (const w of live) this.post(w, { type: 'trace-collect', id });
    const traces = (await Promise.all(collected)).flatMap((m) => (m.type === 'traces' ? m.traces : []));
    return traces.filter(filter).sort((a, b) => a.timestampNs - b.timestampNs || a.id - b.id).slice(0, count);
  }

  /** Asks every worker to drain its socket and stop; resolves when all have (or timed out). */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // Without the program, frames arrive at the sockets the workers drain before they stop.
      this.xdp?.program.close();
      const left = this.tc?.program.close();
      if (left) this.log.error(left);
      this.fast?.close();
      const live = this.workers.filter((w) => !w.stopped);
      const exits = live.map((w) => new Promise<void>((r) => (w.stopped ? r() : w.worker.once('exit', () => r()))));
      for (const w of live) Atomics.store(w.control, ControlSlot.STOP, 1);
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS).unref());
      if ((await Promise.race([Promise.all(exits), timeout])) === 'timeout') {
        this.log.warn('workers did not stop in time; terminating them');
        await Promise.all(live.map((w) => w.worker.terminate()));
      }
      this.health.stop();
      this.nextHops?.stop();
      this.lock?.release();
      this.log.info({ ...this.accounting(), drops: this.accounting().drops }, 'gateway stopped');
    })();
    return this.stopping;
  }
}

/** Fails early, in the main thread, with what is missing: the addon, or the right to send raw. */
function preflight(config: Config): void {
  if (!nativeAvailable()) {
    throw new MirrorgateError('MG_ERR_NATIVE', `the native addon is not built (${loadError()}); run \`npm install\` with g++, make and python3 available`);
  }
  // Packet egress falls back to raw sockets for backends without a next hop.
  if (config.egress.mode !== 'udp') new RawSender({ family: 4 }).close();
  if (config.egress.mode === 'packet') new PacketSender(0).close();
}

/** Frame-ring sockets a worker can wait on besides its two UDP sockets. */
const XDP_SOCKETS_PER_WORKER = 6;

/**
 * The receive queues worker `index` of `workers` serves: every workers-th one. Queues beyond
 * XDP_SOCKETS_PER_WORKER per worker have no socket; their frames take the kernel path.
 */
export function xdpQueues(queues: number, workers: number, index: number): number[] {
  const mine: number[] = [];
  for (let q = index; q < queues && mine.length < XDP_SOCKETS_PER_WORKER; q += workers) mine.push(q);
  return mine;
}

function backendAddresses(config: Config): string[] {
  return Object.values(config.destinations).flatMap((d) => d.backends.map((b) => b.address));
}

/** Fields a running gateway cannot change in place. */
function restartOnlyChanges(a: Config, b: Config): string[] {
  const changed: string[] = [];
  if (a.listen.address !== b.listen.address) changed.push('listen.address');
  if (a.listen.port !== b.listen.port) changed.push('listen.port');
  if (JSON.stringify(a.listen.xdp) !== JSON.stringify(b.listen.xdp)) changed.push('listen.xdp');
  if (JSON.stringify(a.listen.fastPath) !== JSON.stringify(b.listen.fastPath)) changed.push('listen.fastPath');
  if (a.workers !== b.workers) changed.push('workers');
  if (a.reassembly.maxDatagrams !== b.reassembly.maxDatagrams) changed.push('reassembly.maxDatagrams');
  if (a.egress.mode !== b.egress.mode) changed.push('egress.mode');
  if (a.control.listen.host !== b.control.listen.host || a.control.listen.port !== b.control.listen.port) changed.push('control.listen');
  return changed;
}
