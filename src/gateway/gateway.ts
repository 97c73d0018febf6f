/**
 * The live gateway's main thread: owns the configuration, the workers, reloads and the control
 * API, and never touches a packet. Workers get whole configurations and swap their tables between
 * batches; their counters live in shared memory that this thread sums on demand.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { loadConfig, type Config } from '../control/config.js';
import { ConfigError, MirrorgateError } from '../control/errors.js';
import type { Logger } from '../control/log.js';
import { Counters, CounterLayout, sumSnapshots } from '../core/counters.js';
import type { PacketTrace } from '../core/trace.js';
import { loadError, nativeAvailable, RawSender } from '../io/native/index.js';
import { accountingFrom, type Accounting } from '../pipeline/accounting.js';
import { InstanceLock } from './instance-lock.js';
import { ControlSlot, type FromWorker, type ToWorker, type WorkerSetup } from './messages.js';

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
  generation: number;
  stopped: boolean;
}

export type ReloadResult = { ok: true; generation: number } | { ok: false; problems: string[] };

const READY_TIMEOUT_MS = 10_000;
const APPLY_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 5_000;

export class Gateway {
  config: Config;
  generation = 1;
  readonly startedAt = new Date();
  readonly reloads = { success: 0, failure: 0 };
  lastReloadProblems: string[] = [];
  private readonly workers: WorkerHandle[] = [];
  private readonly waiters = new Set<(m: FromWorker) => void>();
  private lock: InstanceLock | null = null;
  private stopping: Promise<void> | null = null;

  private constructor(
    private readonly options: GatewayOptions,
    config: Config,
  ) {
    this.config = config;
  }

  get log(): Logger {
    return this.options.log;
  }

  get configPath(): string {
    return resolve(this.options.configPath);
  }

  static async start(options: GatewayOptions): Promise<Gateway> {
    const config = loadConfig(options.configPath);
    preflight(config);
    const gw = new Gateway(options, config);
    gw.lock = await InstanceLock.acquire(config.listen.port, {
      pid: process.pid,
      config: gw.configPath,
      control: `${config.control.listen.host}:${config.control.listen.port}`,
      since: gw.startedAt.toISOString(),
    });
    try {
      await gw.spawnWorkers();
    } catch (err) {
      await gw.stop();
      throw err;
    }
    gw.log.info(
      { listen: `${config.listen.address}:${config.listen.port}`, workers: gw.workers.length, egress: config.egress.mode, config: gw.configPath },
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

  private async spawnWorkers(): Promise<void> {
    const n = this.config.workers === 'auto' ? availableParallelism() : this.config.workers;
    const readyAll: Promise<void>[] = [];
    for (let index = 0; index < n; index++) {
      const channel = new MessageChannel();
      const controlBuffer = new SharedArrayBuffer(8);
      const setup: WorkerSetup = {
        index,
        config: this.config,
        generation: this.generation,
        batchSize: this.options.batchSize ?? 256,
        control: controlBuffer,
        port: channel.port2,
      };
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: setup, transferList: [channel.port2] });
      const handle: WorkerHandle = { index, worker, port: channel.port1, control: new Int32Array(controlBuffer), counters: null, generation: this.generation, stopped: false };
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
      for (const name of m.counterNames) layout.slot(name);
      handle.counters = new Counters(layout, m.counters);
    } else if (m.type === 'applied') handle.generation = m.generation;
    else if (m.type === 'error') this.log.error({ worker: m.index, code: m.code }, m.message);
    else if (m.type === 'stopped') handle.stopped = true;
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
      next = loadConfig(this.options.configPath);
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
    for (const w of live) this.post(w, { type: 'tables', config: next, generation });
    await Promise.all(applied);
    this.config = next;
    this.generation = generation;
    this.reloads.success++;
    this.lastReloadProblems = [];
    this.log.info({ generation, rules: next.rules.length, destinations: Object.keys(next.destinations).length }, 'configuration reloaded');
    return { ok: true, generation };
  }

  /** Counters summed over workers, by name. */
  counters(): Record<string, number> {
    return sumSnapshots(this.workers.flatMap((w) => (w.counters ? [w.counters.snapshot()] : [])));
  }

  accounting(): Accounting {
    return accountingFrom(this.counters());
  }

  /** Traces the next `count` packets (spread over workers) and returns what was seen within `waitMs`. */
  async trace(count: number, waitMs: number): Promise<PacketTrace[]> {
    const live = this.workers.filter((w) => !w.stopped);
    for (const w of live) this.post(w, { type: 'trace', count });
    await new Promise((r) => setTimeout(r, waitMs));
    const collected = live.map((w) => this.waitFor((m) => m.type === 'traces' && m.index === w.index, APPLY_TIMEOUT_MS));
    for (const w of live) this.post(w, { type: 'trace-collect' });
    const traces = (await Promise.all(collected)).flatMap((m) => (m.type === 'traces' ? m.traces : []));
    return traces.sort((a, b) => a.timestampNs - b.timestampNs).slice(0, count);
  }

  /** Asks every worker to drain its socket and stop; resolves when all have (or timed out). */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const live = this.workers.filter((w) => !w.stopped);
      const exits = live.map((w) => new Promise<void>((r) => (w.stopped ? r() : w.worker.once('exit', () => r()))));
      for (const w of live) Atomics.store(w.control, ControlSlot.STOP, 1);
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS).unref());
      if ((await Promise.race([Promise.all(exits), timeout])) === 'timeout') {
        this.log.warn('workers did not stop in time; terminating them');
        await Promise.all(live.map((w) => w.worker.terminate()));
      }
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
  if (config.egress.mode === 'raw') new RawSender({ family: 4 }).close();
}

/** Fields a running gateway cannot change in place. */
function restartOnlyChanges(a: Config, b: Config): string[] {
  const changed: string[] = [];
  if (a.listen.address !== b.listen.address) changed.push('listen.address');
  if (a.listen.port !== b.listen.port) changed.push('listen.port');
  if (a.workers !== b.workers) changed.push('workers');
  if (a.reassembly.maxDatagrams !== b.reassembly.maxDatagrams) changed.push('reassembly.maxDatagrams');
  if (a.egress.mode !== b.egress.mode) changed.push('egress.mode');
  if (a.control.listen.host !== b.control.listen.host || a.control.listen.port !== b.control.listen.port) changed.push('control.listen');
  return changed;
}
