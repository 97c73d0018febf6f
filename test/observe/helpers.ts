/**
 * Shared by the observability tests: a real gateway process on loopback (raw egress, so the
 * exporter's source survives to a test socket), a test backend, mirrored traffic sent as AWS
 * delivers it, the CLI run as a child process, and /metrics parsed with a Prometheus text parser.
 *
 * Everything binds 127.0.0.1 only. Each test file owns a block of ports (PORTS below), so files
 * can run in parallel; ports sit below the kernel's ephemeral range (32768+) to stay clear of
 * sockets other processes open.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import YAML from 'yaml';
import { buildMirrorFrame, mirrorFrameLength, type MirrorFrameSpec } from '../../src/gen/mirror.js';
import { generateScenario, type ScenarioFrame, type ScenarioOptions } from '../../src/gen/scenario.js';

/** The repository root (this file runs from build/test/observe/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = join(ROOT, 'build/src/cli.js');

/** Port blocks, one per test file: base+0.. base+9. */
export const PORTS = {
  metrics: 28410,
  gaps: 28420,
  status: 28430,
  monitor: 28440,
  trace: 28450,
  runtime: 28460,
  tmux: 28470,
  auth: 28480,
} as const;

/** Outer Ethernet (14) + IPv4 (20) + UDP (8): what the kernel strips before our socket sees the VXLAN part. */
export const OUTER_HEADERS = 42;
/** Everything in a mirror frame before the inner UDP payload: outer 42 + VXLAN 8 + Ethernet 14 + IPv4 20 + UDP 8. */
export const INNER_HEADERS = OUTER_HEADERS + 8 + 14 + 20 + 8;

/** Why these tests cannot run here, or false: the gateway's raw egress needs root (CAP_NET_RAW). */
export const skipObserve: string | false = process.getuid?.() !== 0 ? 'observability tests run a gateway with raw egress and need root' : false;

/** Throws naming the Debian package when `tool` is not installed. */
export function requireTool(tool: string, pkg: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`missing ${tool}: apt-get install ${pkg}`);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a truthy value; throws `what` (with the last value) after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T> | T, timeoutMs = 5000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last) ?? String(lastErr)})`);
    await sleep(everyMs);
  }
}

// ---- configuration -------------------------------------------------------------------------------

export interface GatewaySetup {
  listenPort: number;
  controlPort: number;
  backendPorts: number[];
  /** Accepted VNIs (default [123 "prod"]). */
  sessions?: { vni: number; name?: string }[];
  workers?: number;
  topExporters?: number;
  token?: string;
  /** Overrides merged into the destination "fdi". */
  destination?: Record<string, unknown>;
  /** Top-level keys added to the config (allowlist, ...). */
  extra?: Record<string, unknown>;
}

/** A gateway config on loopback: every inner UDP datagram goes to destination "fdi". */
export function gatewayConfig(s: GatewaySetup): Record<string, unknown> {
  return {
    listen: { address: '127.0.0.1', port: s.listenPort, genevePort: 0 },
    sessions: s.sessions ?? [{ vni: 123, name: 'prod' }],
    rules: [{ name: 'telemetry', match: { protocol: 'udp' }, destination: 'fdi' }],
    destinations: {
      fdi: { backends: s.backendPorts.map((p) => `127.0.0.1:${p}`), balance: 'hash', ...(s.destination ?? {}) },
    },
    egress: { mode: 'raw' },
    control: {
      listen: `127.0.0.1:${s.controlPort}`,
      ...(s.topExporters !== undefined ? { topExporters: s.topExporters } : {}),
      ...(s.token !== undefined ? { token: s.token } : {}),
    },
    workers: s.workers ?? 1,
    ...(s.extra ?? {}),
  };
}

/** A scratch directory removed by the returned function. */
export function scratchDir(name: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `mirrorgate-observe-${name}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeConfig(path: string, config: unknown): void {
  writeFileSync(path, YAML.stringify(config));
}

// ---- processes -----------------------------------------------------------------------------------

const children = new Set<ChildProcess>();
// Last resort if a test dies between start and stop: never leave a gateway behind.
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Stops `child`: SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
export function stopProcess(child: ChildProcess, graceMs = 6000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolveStop) => {
    const done = () => {
      clearTimeout(timer);
      children.delete(child);
      resolveStop({ code: child.exitCode, signal: child.signalCode });
    };
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', done);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.kill('SIGTERM');
  });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as a child process (asynchronously: the test keeps sending meanwhile). */
export function runCli(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mirrorgate ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 15000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 15000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolveRun({ code, signal, stdout, stderr });
    });
  });
}

/** A gateway started with `mirrorgate run -c CONFIG`, ready (GET /readyz 200) when start resolves. */
export class TestGateway {
  stderr = '';
  stdout = '';

  private constructor(
    readonly child: ChildProcess,
    readonly configPath: string,
    readonly control: string,
    readonly listenPort: number,
    readonly token: string | undefined,
  ) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
  }

  static async start(configPath: string, setup: GatewaySetup, timeoutMs = 15000): Promise<TestGateway> {
    writeConfig(configPath, gatewayConfig(setup));
    return TestGateway.startFile(configPath, setup.controlPort, setup.listenPort, setup.token, timeoutMs);
  }

  /** Starts a gateway on a config file already written. */
  static async startFile(configPath: string, controlPort: number, listenPort: number, token?: string, timeoutMs = 15000): Promise<TestGateway> {
    const child = spawn(process.execPath, [CLI, 'run', '-c', configPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const gw = new TestGateway(child, configPath, `127.0.0.1:${controlPort}`, listenPort, token);
    try {
      await waitFor(
        'GET /readyz 200',
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`gateway exited (${child.exitCode ?? child.signalCode})`);
          const r = await fetch(`http://${gw.control}/readyz`);
          return r.status === 200;
        },
        timeoutMs,
        100,
      );
    } catch (err) {
      await stopProcess(child);
      throw new Error(`gateway did not become ready: ${(err as Error).message}\nstderr:\n${gw.stderr}`);
    }
    return gw;
  }

  get pid(): number {
    return this.child.pid!;
  }

  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return stopProcess(this.child);
  }

  /** A control API request; `auth` false leaves out the bearer header even when a token is set. */
  request(method: string, path: string, auth = true): Promise<Response> {
    const headers: Record<string, string> = auth && this.token ? { authorization: `Bearer ${this.token}` } : {};
    return fetch(`http://${this.control}${path}`, { method, headers });
  }

  async json<T = unknown>(method: string, path: string): Promise<{ status: number; body: T }> {
    const r = await this.request(method, path);
    return { status: r.status, body: (await r.json()) as T };
  }

  async counters(): Promise<Record<string, number>> {
    return (await this.json<Record<string, number>>('GET', '/api/counters')).body;
  }

  async status(): Promise<Status> {
    return (await this.json<Status>('GET', '/api/status')).body;
  }

  async metrics(): Promise<Metrics> {
    const r = await this.request('GET', '/metrics');
    if (r.status !== 200) throw new Error(`GET /metrics: ${r.status}`);
    return new Metrics(await r.text());
  }

  /** Waits until the workers have counted `n` received packets (and stay there briefly). */
  async waitForRx(n: number, timeoutMs = 5000): Promise<Record<string, number>> {
    await waitFor(`rx_packets >= ${n}`, async () => ((await this.counters()).rx_packets ?? 0) >= n, timeoutMs);
    await sleep(100); // anything extra would show now
    return this.counters();
  }
}

/** The /api/status document, as much of it as the tests read. */
export interface Status {
  pid: number;
  config: string;
  generation: number;
  reloads: { success: number; failure: number };
  lastReloadProblems: string[];
  workers: number;
  ready: boolean;
  destinations: { name: string; backends: { backend: string; up: boolean; packets: number }[] }[];
  sessions: { vni: number; name: string; packets: number; bytes: number }[];
  exporters: { rows: { exporter: string; packets: number; bytes: number; gaps: number; lost: number; malformed: number; resets: number }[]; untracked: number };
  accounting: { rx: number; forwarded: number; tx: number; drops: Record<string, number>; balanced: boolean };
}

// ---- metrics -------------------------------------------------------------------------------------

/** /metrics parsed by parse-prometheus-text-format, with lookups by name and labels. */
export class Metrics {
  readonly families: Map<string, PrometheusFamily>;

  constructor(readonly text: string) {
    this.families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  }

  family(name: string): PrometheusFamily {
    const f = this.families.get(name);
    if (!f) throw new Error(`no metric family ${name} in /metrics`);
    return f;
  }

  /** Every sample of `name` as { labels, value }. */
  samples(name: string): { labels: Record<string, string>; value: number }[] {
    return this.family(name).metrics.map((m) => ({ labels: m.labels ?? {}, value: Number(m.value) }));
  }

  /** The value of the one sample of `name` whose labels include `labels`; undefined if none. */
  find(name: string, labels: Record<string, string> = {}): number | undefined {
    const hits = this.samples(name).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    if (hits.length > 1) throw new Error(`${name}${JSON.stringify(labels)} matches ${hits.length} samples`);
    return hits[0]?.value;
  }

  /** Like find, but the sample must exist. */
  value(name: string, labels: Record<string, string> = {}): number {
    const v = this.find(name, labels);
    if (v === undefined) throw new Error(`no sample ${name}${JSON.stringify(labels)}; have ${JSON.stringify(this.samples(name))}`);
    return v;
  }

  /** Label values of `label` over the samples of `name`. */
  labelValues(name: string, label: string): string[] {
    return this.samples(name).map((s) => s.labels[label]);
  }

  sum(name: string): number {
    return this.samples(name).reduce((s, x) => s + x.value, 0);
  }
}

// ---- traffic -------------------------------------------------------------------------------------

/** The frames of a generated scenario (all of them, or the first `limit`). */
export function scenarioFrames(opts: Partial<ScenarioOptions> & { exporters: readonly string[] }, limit = Infinity): ScenarioFrame[] {
  const out: ScenarioFrame[] = [];
  for (const f of generateScenario({ vni: 123, collector: '203.0.113.10', ...opts })) {
    if (out.length >= limit) break;
    out.push(f);
  }
  return out;
}

/** One mirror frame carrying `payload` from exporter `src:srcPort` to the collector `203.0.113.10:dstPort`. */
export function mirrorFrame(src: string, srcPort: number, dstPort: number, payload: Uint8Array, vni = 123): Buffer {
  const spec: MirrorFrameSpec = {
    outerSrc: '198.18.1.1',
    outerDst: '198.18.255.1',
    outerSrcPort: 49152 + (srcPort % 16384),
    vni,
    innerSrcMac: 0x02_42_c6_12_00_01,
    innerDstMac: 0x02_42_c6_12_ff_fe,
    innerSrc: src,
    innerDst: '203.0.113.10',
    innerSrcPort: srcPort,
    innerDstPort: dstPort,
    payload,
  };
  const frame = Buffer.alloc(mirrorFrameLength(spec));
  buildMirrorFrame(spec, frame, 0);
  return frame;
}

/** The part of a mirror frame a UDP socket sends: VXLAN header + inner frame. */
export const vxlanPart = (frame: Buffer) => frame.subarray(OUTER_HEADERS);

/**
 * Sends the VXLAN part of each frame to the gateway, in order, pacing so no socket buffer
 * overflows. With `sockets` > 1 each frame leaves from one of that many sockets chosen by the
 * frame's outer UDP source port, which AWS derives from the inner flow: a flow keeps one socket
 * (so one worker, as SO_REUSEPORT hashes the 4-tuple) while flows spread over workers.
 */
export async function sendFrames(port: number, frames: readonly Buffer[], sockets = 1): Promise<void> {
  const socks = await Promise.all(
    Array.from({ length: sockets }, async () => {
      const sock = dgram.createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      return sock;
    }),
  );
  try {
    let k = 0;
    for (const f of frames) {
      const sock = socks[f.readUInt16BE(34) % sockets];
      await new Promise<void>((r, j) => sock.send(vxlanPart(f), port, '127.0.0.1', (err) => (err ? j(err) : r())));
      if (++k % 16 === 0) await sleep(1);
    }
  } finally {
    for (const sock of socks) sock.close();
  }
}

/** Sends `frames` round and round at about `pps` until the returned stop() is awaited. */
export function startTraffic(port: number, frames: readonly Buffer[], pps = 400): { stop: () => Promise<number> } {
  const sock = dgram.createSocket('udp4');
  let sent = 0;
  let next = 0;
  const perTick = Math.max(1, Math.round(pps / 50));
  const timer = setInterval(() => {
    for (let k = 0; k < perTick; k++) {
      sock.send(vxlanPart(frames[next]), port, '127.0.0.1');
      next = (next + 1) % frames.length;
      sent++;
    }
  }, 20);
  return {
    stop: async () => {
      clearInterval(timer);
      await sleep(50);
      sock.close();
      return sent;
    },
  };
}

/** A collector socket on 127.0.0.1 recording every datagram with its source. */
export class Backend {
  readonly received: { address: string; port: number; payload: Buffer }[] = [];

  private constructor(
    readonly socket: dgram.Socket,
    readonly port: number,
  ) {
    socket.on('message', (payload, r) => this.received.push({ address: r.address, port: r.port, payload }));
  }

  static async bind(port: number): Promise<Backend> {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
    await new Promise<void>((r, j) => {
      socket.once('error', j);
      socket.bind(port, '127.0.0.1', () => r());
    });
    return new Backend(socket, port);
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * The usual fixture: one test backend on port base+1 and a gateway listening on base, control on
 * base+2, configured in `scratch`. Stop it with `stopGatewayWithBackend`.
 */
export async function startGatewayWithBackend(
  scratch: { dir: string },
  base: number,
  extra: Partial<GatewaySetup> = {},
): Promise<{ backend: Backend; gw: TestGateway }> {
  const backend = await Backend.bind(base + 1);
  const gw = await TestGateway.start(join(scratch.dir, 'gateway.yaml'), { listenPort: base, controlPort: base + 2, backendPorts: [base + 1], ...extra });
  return { backend, gw };
}

export async function stopGatewayWithBackend(gw: TestGateway | undefined, backend: Backend | undefined, scratch: { remove: () => void }): Promise<void> {
  await gw?.stop();
  backend?.close();
  scratch.remove();
}
