/**
 * Shared by the destination lab tests (health-checked backends, failover, replicate, weights,
 * sampling). Lab set-up, teardown and the root check come from test/lab/helpers.ts; what is
 * here is what those tests add on top:
 *
 *   - a health endpoint per collector (node's http server answering 200 on /healthz), killed and
 *     restarted to fail and revive a backend;
 *   - extra exporter addresses on the exporter host (secondaries of 198.18.0.0/24);
 *   - a softflowd recording (REAL NetFlow v9 datagrams, templates every 16th datagram) and the
 *     replayer (replayer.ts) that sends it from many exporter addresses, paced and in lockstep;
 *   - a small pcap reader for what tcpdump saw at each collector, and a NetFlow v9 header/flowset
 *     classifier, so a test can tell which exporter datagram (by sequence number) reached which
 *     collector and whether it carried templates, independently of mirrorgate's own codecs;
 *   - readers for /api/status backends, /metrics' mirrorgate_backend_up and the gateway's log.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GatewayConfigDoc, GatewayStatus, Lab } from '../../src/lab/lab.js';
import { writeFlowCapture } from '../../src/lab/flows.js';
import { Nfcapd, runSoftflowd, Tcpdump } from '../../src/lab/peers.js';
import { Iface, type LabHost } from '../../src/lab/plan.js';
import { LabError, run, until, type LabProcess } from '../../src/lab/process.js';

export { reapStaleTestLabs, requireTools, skipLab, sleep, testLab } from '../lab/helpers.js';

/** The port each collector's health endpoint listens on. */
export const HEALTH_PORT = 8080;
/** NetFlow: the exporters send here and nfcapd listens here (the lab's rule keeps the port). */
export const NETFLOW_PORT = 2055;

/** The health block of the brief: http /healthz, 300 ms apart, 200 ms timeout, rise 2, fall 2. */
export const HEALTH = { check: 'http', port: HEALTH_PORT, path: '/healthz', interval: 300, timeout: 200, rise: 2, fall: 2 } as const;
/** A backend leaves the hash within fall × interval + timeout (the health module's contract). */
export const DOWN_BOUND_MS = HEALTH.fall * HEALTH.interval + HEALTH.timeout;
/** ... and rejoins within rise × interval (plus the last probe's latency). */
export const UP_BOUND_MS = HEALTH.rise * HEALTH.interval;
/** From a health change on the main thread to every worker hashing with it (mailbox, ≤ 20 ms idle wait). */
export const APPLY_MS = 200;

export interface NetflowDestination {
  balance?: 'hash' | 'round-robin' | 'replicate';
  /** Per collector; default 1 each. */
  weights?: number[];
  whenAllDown?: 'send' | 'drop';
  sample?: number;
  /** Default: {@link HEALTH}. */
  health?: Record<string, unknown>;
}

/**
 * The lab's gateway config with its `netflow` destination replaced: one backend per collector
 * (port 2055), the health block of the brief, and the given balance/weights/policies.
 */
export function netflowConfig(lab: Lab, d: NetflowDestination = {}): GatewayConfigDoc {
  const doc = lab.gatewayConfig();
  const backends = Array.from({ length: lab.collectors }, (_, k) => ({ address: lab.collector(k), port: NETFLOW_PORT, weight: d.weights?.[k] ?? 1 }));
  // GatewayConfigDoc types backends as strings; the schema also takes { address, port, weight }.
  (doc.destinations as Record<string, unknown>).netflow = {
    backends,
    balance: d.balance ?? 'hash',
    mtu: lab.mtu,
    health: d.health ?? { ...HEALTH },
    ...(d.whenAllDown ? { whenAllDown: d.whenAllDown } : {}),
    ...(d.sample ? { sample: d.sample } : {}),
  };
  return doc;
}

/** "198.18.(20+k).10:2055": collector k's backend name in status and metrics. */
export const backendName = (lab: Lab, k: number): string => `${lab.collector(k)}:${NETFLOW_PORT}`;

// ---- health endpoints ----

/** A tiny HTTP server: 200 on /healthz, 404 elsewhere. CommonJS, for `node -e`. */
const HEALTH_SERVER = `
const http = require('node:http');
const [address, port] = process.argv.slice(1);
const server = http.createServer((req, res) => {
  res.statusCode = req.url === '/healthz' ? 200 : 404;
  res.setHeader('connection', 'close');
  res.end(res.statusCode === 200 ? 'ok\\n' : 'not found\\n');
});
server.listen(Number(port), address, () => console.log(JSON.stringify({ event: 'ready', address, port: Number(port) })));
process.on('SIGTERM', () => process.exit(0));
`;

/** The health endpoint of one collector; {@link kill} makes its probes fail (ECONNREFUSED). */
export class HealthEndpoint {
  private process: LabProcess | null = null;
  constructor(
    private readonly lab: Lab,
    readonly collector: number,
  ) {}

  get host(): LabHost {
    return this.lab.collectorHost(this.collector);
  }

  get running(): boolean {
    return this.process?.running ?? false;
  }

  /** Starts the server in the collector's namespace and waits until it listens. */
  async start(): Promise<void> {
    if (this.running) return;
    const p = this.lab.spawn(this.host, process.execPath, ['-e', HEALTH_SERVER, this.lab.collector(this.collector), String(HEALTH_PORT)], {
      name: `health endpoint on ${this.host}`,
    });
    await p.waitForLine(/"event":"ready"/, { stream: 'stdout', timeoutMs: 10_000 });
    this.process = p;
  }

  /** Kills the server (SIGKILL: a collector host dying, not a graceful stop). Returns the time the signal went. */
  async kill(): Promise<number> {
    const p = this.process;
    this.process = null;
    const at = Date.now();
    if (p) await p.stop({ signal: 'SIGKILL', timeoutMs: 2000 });
    return at;
  }

  /** Starts it again; returns the time it was listening again. */
  async revive(): Promise<number> {
    await this.start();
    return Date.now();
  }
}

/** Starts a health endpoint on every collector. */
export async function startHealthEndpoints(lab: Lab): Promise<HealthEndpoint[]> {
  const all = Array.from({ length: lab.collectors }, (_, k) => new HealthEndpoint(lab, k));
  for (const h of all) await h.start();
  return all;
}

// ---- exporter addresses ----

/** `n` exporter addresses from 198.18.0.`first` on (the lab's own are .11-.14). */
export function exporterAddresses(n: number, first = 100): string[] {
  if (first + n - 1 > 254) throw new LabError(`198.18.0.${first} + ${n} addresses leave the /24`);
  return Array.from({ length: n }, (_, i) => `198.18.0.${first + i}`);
}

/** Adds `addresses` as secondaries of the exporter's uplink (198.18.0.0/24, all allowlisted). */
export async function addExporterAddresses(lab: Lab, addresses: readonly string[]): Promise<void> {
  const lines = addresses.map((a) => `addr replace ${a}/24 dev ${Iface.EXPORTER_UPLINK}`).join('\n');
  await lab.exec('exporter', 'ip', ['-batch', '-'], { input: `${lines}\n` });
}

// ---- pcap ----

/** A UDP datagram (first fragment or whole) tcpdump saw. */
export interface SeenDatagram {
  /** Capture time, epoch microseconds. */
  tUs: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

const ip4 = (b: Buffer, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

/**
 * The IPv4/UDP datagrams of a classic pcap file (Ethernet or raw IP), in capture order. Only
 * unfragmented datagrams are returned (the tests' datagrams are far below every MTU).
 */
export function readUdpDatagrams(file: string): SeenDatagram[] {
  const buf = readFileSync(file);
  if (buf.length < 24) return [];
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const nano = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20);
  const out: SeenDatagram[] = [];
  for (let off = 24; off + 16 <= buf.length; ) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const caplen = u32(off + 8);
    const start = off + 16;
    off = start + caplen;
    if (off > buf.length) break; // a record still being written
    let l3 = start;
    if (linkType === 1) {
      let type = buf.readUInt16BE(start + 12);
      l3 = start + 14;
      if (type === 0x8100) {
        type = buf.readUInt16BE(start + 16);
        l3 += 4;
      }
      if (type !== 0x0800) continue;
    } else if (linkType !== 101 && linkType !== 228) continue;
    if (l3 + 20 > off || buf[l3] >> 4 !== 4 || buf[l3 + 9] !== 17) continue;
    if ((buf.readUInt16BE(l3 + 6) & 0x3fff) !== 0) continue; // a fragment
    const l4 = l3 + (buf[l3] & 0x0f) * 4;
    const end = Math.min(off, l3 + buf.readUInt16BE(l3 + 2));
    out.push({
      tUs: sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac),
      src: ip4(buf, l3 + 12),
      dst: ip4(buf, l3 + 16),
      srcPort: buf.readUInt16BE(l4),
      dstPort: buf.readUInt16BE(l4 + 2),
      payload: buf.subarray(l4 + 8, end),
    });
  }
  return out;
}

// ---- NetFlow v9 ----

/** What a NetFlow v9 datagram holds, from its header and flowset IDs (RFC 3954 §5). */
export interface V9Info {
  sequence: number;
  sourceId: number;
  /** Template or options-template flowsets (IDs 0 and 1). */
  templates: boolean;
  /** Data flowsets (IDs ≥ 256). */
  data: boolean;
}

export function v9Info(p: Buffer): V9Info | null {
  if (p.length < 20 || p.readUInt16BE(0) !== 9) return null;
  let templates = false;
  let data = false;
  for (let q = 20; q + 4 <= p.length; ) {
    const id = p.readUInt16BE(q);
    const len = p.readUInt16BE(q + 2);
    if (id <= 1) templates = true;
    else if (id >= 256) data = true;
    if (len < 4) break;
    q += len;
  }
  return { sequence: p.readUInt32BE(12), sourceId: p.readUInt32BE(16), templates, data };
}

/** A datagram a collector received from an exporter, classified. */
export interface Arrival extends V9Info {
  collector: number;
  exporter: string;
  tUs: number;
  /** Position in the collector's capture. */
  order: number;
}

/** NetFlow v9 datagrams each collector's tcpdump saw, classified, in capture order per collector. */
export function arrivals(files: readonly string[]): Arrival[] {
  return files.flatMap((file, collector) =>
    readUdpDatagrams(file).flatMap((d, order) => {
      const info = d.dstPort === NETFLOW_PORT ? v9Info(d.payload) : null;
      return info ? [{ ...info, collector, exporter: d.src, tUs: d.tUs, order }] : [];
    }),
  );
}

// ---- collectors: nfcapd and tcpdump on each ----

/** One run of nfcapd on a collector, and the flows it stored (exporter:srcPort). */
export interface NfcapdRun {
  collector: number;
  nfcapd: Nfcapd;
  /** Epoch ms: listening from (after start returned) until (before stop was asked). */
  from: number;
  until: number;
  flows: Set<string>;
  /** nfcapd's "Sequence failures" per exporter address (nfdump -E), read when the run stopped. */
  sequenceFailures: Map<string, number>;
}

/** Per exporter address, the sequence failures nfcapd recorded in `files` (`nfdump -E FILE`). */
export async function sequenceFailures(files: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const f of files) {
    const r = await run('nfdump', ['-E', f]);
    for (const m of r.stdout.matchAll(/IP:\s*(\S+),.*Sequence failures:\s*(\d+)/g)) out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[2]));
  }
  return out;
}

/** `exporter:srcPort`: a flow record's identity (the recording's source ports are unique). */
export const flowKey = (exporter: string, srcPort: number): string => `${exporter}:${srcPort}`;

/**
 * nfcapd (the real collector) and tcpdump (what arrived, in order) on every collector. nfcapd
 * can be restarted, as a collector process that restarts and so loses its templates; each run
 * keeps its own directory and the window it listened in.
 */
export class Collectors {
  readonly runs: NfcapdRun[] = [];
  private readonly dumps: Tcpdump[] = [];
  private stopped = false;

  private constructor(private readonly lab: Lab) {}

  static async start(lab: Lab): Promise<Collectors> {
    const c = new Collectors(lab);
    for (let k = 0; k < lab.collectors; k++) {
      c.dumps.push(await Tcpdump.start(lab, lab.collectorHost(k), {
        iface: Iface.COLLECTOR,
        filter: `udp and dst port ${NETFLOW_PORT}`,
        name: `collector${k}`,
        snaplen: 2048,
        bufferKiB: 8192,
      }));
      await c.startNfcapd(k);
    }
    return c;
  }

  private async startNfcapd(k: number): Promise<NfcapdRun> {
    const n = this.runs.filter((r) => r.collector === k).length;
    const nfcapd = await Nfcapd.start(this.lab, { collector: k, port: NETFLOW_PORT, name: `col${k}-run${n}` });
    const r: NfcapdRun = { collector: k, nfcapd, from: Date.now(), until: Infinity, flows: new Set(), sequenceFailures: new Map() };
    this.runs.push(r);
    return r;
  }

  private current(k: number): NfcapdRun {
    const r = this.runs.filter((x) => x.collector === k && x.until === Infinity).at(-1);
    if (!r) throw new LabError(`collector ${k} has no nfcapd running`);
    return r;
  }

  private async finishRun(r: NfcapdRun): Promise<void> {
    r.until = Date.now();
    await r.nfcapd.stop();
    for (const f of await r.nfcapd.flows()) r.flows.add(flowKey(f.exporter, f.srcPort));
    r.sequenceFailures = await sequenceFailures(r.nfcapd.files());
  }

  /** Stops collector k's nfcapd (SIGTERM writes its file) and starts a fresh one: no templates. */
  async restartNfcapd(k: number): Promise<NfcapdRun> {
    await this.finishRun(this.current(k));
    return this.startNfcapd(k);
  }

  /** What has arrived so far (tcpdump -U writes each packet at once). */
  arrivals(): Arrival[] {
    return arrivals(this.dumps.map((d) => d.file));
  }

  /** Waits until the captures stop growing, then stops tcpdump and every nfcapd and reads their flows. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    let last = -1;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 150));
      const now = this.dumps.reduce((n, d) => n + d.records(), 0);
      if (now === last) break;
      last = now;
    }
    for (const d of this.dumps) await d.stop();
    for (const r of this.runs) if (r.until === Infinity) await this.finishRun(r);
  }

  /** The nfcapd run of collector k that was listening at `tUs` (epoch µs), if any. */
  runAt(k: number, tUs: number): NfcapdRun | undefined {
    const ms = tUs / 1000;
    return this.runs.find((r) => r.collector === k && r.from <= ms && ms <= r.until);
  }

  /** Every flow collector k's nfcapd runs stored. */
  flows(k: number): Set<string> {
    return new Set(this.runs.filter((r) => r.collector === k).flatMap((r) => [...r.flows]));
  }
}

// ---- a softflowd recording ----

/** NetFlow v9 datagrams as softflowd sent them, with what each carries. */
export interface Recording {
  /** JSON file the replayer reads. */
  file: string;
  datagrams: Buffer[];
  /** v9 sequence number of each datagram. */
  sequence: number[];
  /** Whether each datagram carries templates (softflowd: the first and every 16th after it). */
  templates: boolean[];
  /** Source ports of the flow records in each datagram, by sequence number (tshark's reading). */
  flowPorts: Map<number, number[]>;
  /** Recording index (= replayer tick) of each sequence number. */
  indexOf: Map<number, number>;
}

/** The flows a data-carrying datagram from `exporter` with this sequence number holds. */
export function flowsOf(recording: Recording, exporter: string, sequence: number): string[] {
  return (recording.flowPorts.get(sequence) ?? []).map((p) => flowKey(exporter, p));
}

/**
 * Records what `softflowd -r -v 9` exports for a capture of `flows` flows (32 records per
 * datagram, so about flows/32 datagrams), by tcpdump on the exporter's uplink. The flows' source
 * ports are unique (40000 + i), which ties every flow record nfcapd stores to one datagram; tshark
 * (not mirrorgate) reads the records. Run it before the gateway starts: nothing is delivered.
 */
export async function recordSoftflowd(lab: Lab, opts: { flows: number }): Promise<Recording> {
  const capture = lab.file('softflowd-input.pcap');
  writeFlowCapture(capture, { flows: opts.flows, packetsPerFlow: 2 });
  const dump = await Tcpdump.start(lab, 'exporter', {
    iface: Iface.EXPORTER_UPLINK,
    filter: `udp and dst host ${lab.monitored} and dst port ${NETFLOW_PORT}`,
    name: 'softflowd-recording',
    snaplen: 2048, // softflowd sends its whole export as one burst (see Tcpdump.start)
    bufferKiB: 8192,
  });
  let sent = 0;
  try {
    const r = await runSoftflowd(lab, { capture, version: 9, port: NETFLOW_PORT, source: lab.exporters[0] });
    if (r.failures || r.flows !== opts.flows) throw new LabError(`softflowd exported ${r.flows} of ${opts.flows} flows (${r.failures} failures)`);
    sent = r.datagrams;
    await until(`tcpdump to write softflowd's ${sent} datagrams`, () => dump.records() >= sent, 5000, 50).catch((err: Error) => {
      const seqs = readUdpDatagrams(dump.file).map((d) => v9Info(d.payload)?.sequence);
      throw new LabError(`${err.message} (it wrote ${dump.records()}: ${seqs.join(',')})`);
    });
  } finally {
    await dump.stop();
  }
  const datagrams = readUdpDatagrams(dump.file).map((d) => Buffer.from(d.payload));
  if (datagrams.length !== sent) throw new LabError(`recorded ${datagrams.length} of softflowd's ${sent} datagrams`);
  const infos = datagrams.map((d) => v9Info(d));
  if (infos.some((i) => i === null)) throw new LabError('the recording holds a datagram that is not NetFlow v9');

  const t = await run('tshark', [
    '-r', dump.file, '-n', '-d', `udp.port==${NETFLOW_PORT},cflow`, '-T', 'fields', '-E', 'separator=\t', '-E', 'aggregator=,', '-e', 'cflow.sequence', '-e', 'cflow.srcport',
  ], { timeoutMs: 60_000 });
  const flowPorts = new Map<number, number[]>();
  for (const line of t.stdout.split('\n')) {
    const [seq, ports] = line.split('\t');
    if (!seq) continue;
    flowPorts.set(Number(seq), ports ? ports.split(',').filter(Boolean).map(Number) : []);
  }
  const total = [...flowPorts.values()].reduce((n, p) => n + p.length, 0);
  if (total !== opts.flows) throw new LabError(`tshark read ${total} flow records in the recording, softflowd exported ${opts.flows}`);

  const file = lab.file('softflowd-recording.json');
  writeFileSync(file, JSON.stringify({ datagrams: datagrams.map((d) => d.toString('base64')) }));
  const sequence = infos.map((i) => i!.sequence);
  return { file, datagrams, sequence, templates: infos.map((i) => i!.templates), flowPorts, indexOf: new Map(sequence.map((s, i) => [s, i])) };
}

// ---- the replayer ----

export const REPLAYER_PATH = fileURLToPath(new URL('./replayer.js', import.meta.url));

/** One replayer tick: datagram `index` of the recording went out from every exporter at `t`. */
export interface Tick {
  index: number;
  t: number;
}

/** The replayer (replayer.ts) running in the exporter host. */
export class Replayer {
  private constructor(
    readonly process: LabProcess,
    readonly exporters: readonly string[],
    /** Each exporter's source port. */
    readonly ports: Record<string, number>,
  ) {}

  /**
   * Starts sending the recording from each of `exporters` (bound to it, one socket each) to the
   * monitored host, `rate` datagrams per second per exporter, datagram i from all at tick i.
   */
  static async start(lab: Lab, recording: Recording, opts: { exporters: readonly string[]; rate: number; count?: number }): Promise<Replayer> {
    const p = lab.spawn('exporter', process.execPath, [
      REPLAYER_PATH, 'replay', '--recording', recording.file, '--from', opts.exporters.join(','), '--to', `${lab.monitored}:${NETFLOW_PORT}`,
      '--rate', String(opts.rate), '--count', String(opts.count ?? recording.datagrams.length),
    ], { name: 'replayer on exporter' });
    const ready = await p.waitForLine(/"event":"ready"/, { stream: 'stdout', timeoutMs: 10_000 });
    return new Replayer(p, opts.exporters, (JSON.parse(ready) as { ports: Record<string, number> }).ports);
  }

  /** Waits until datagram `index` has gone out; returns its tick. */
  async tick(index: number, timeoutMs = 60_000): Promise<Tick> {
    const line = await this.process.waitForLine(new RegExp(`"event":"tick","index":${index},`), { stream: 'stdout', timeoutMs });
    return JSON.parse(line) as Tick;
  }

  /** Every tick so far. */
  ticks(): Tick[] {
    return this.lines().filter((l) => l.event === 'tick') as unknown as Tick[];
  }

  private lines(): Record<string, unknown>[] {
    return this.process.stdout
      .split('\n')
      .filter((l) => l.startsWith('{') && l.endsWith('}'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Asks it to stop after the current tick and waits; returns how many ticks were sent. */
  async stop(): Promise<number> {
    this.process.write('stop\n');
    const s = await this.process.wait(10_000);
    if (s.code !== 0) throw new LabError(`replayer exited ${s.code ?? s.signal}: ${this.process.stderr.trim()}`);
    const final = this.lines().find((l) => l.event === 'final') as { ticks: number } | undefined;
    if (!final) throw new LabError('the replayer printed no final line');
    return final.ticks;
  }

  /** Waits for it to finish its count by itself; returns how many ticks were sent. */
  async finish(timeoutMs: number): Promise<number> {
    const s = await this.process.wait(timeoutMs);
    if (s.code !== 0) throw new LabError(`replayer exited ${s.code ?? s.signal}: ${this.process.stderr.trim()}`);
    return (this.lines().find((l) => l.event === 'final') as { ticks: number }).ticks;
  }
}

// ---- the lab agent's UDP counter and sender ----

/** What the agent's `count` reports: tagged datagrams by source address. */
export interface Tally {
  packets: number;
  tagged: number;
  duplicates: number;
  bySource: Record<string, number>;
}

/** The lab agent's `count` on collector k's telemetry port (instead of nfcapd): datagrams by source. */
export class UdpCounter {
  private reports = 0;
  private constructor(
    readonly collector: number,
    private readonly process: LabProcess,
  ) {}

  static async start(lab: Lab, k: number, opts: { tag: number; port?: number }): Promise<UdpCounter> {
    const p = lab.spawnAgent(lab.collectorHost(k), ['count', '--bind', lab.collectorEndpoint(k, opts.port ?? NETFLOW_PORT), '--tag', String(opts.tag)]);
    await p.waitForLine(/"event":"ready"/, { stream: 'stdout', timeoutMs: 10_000 });
    return new UdpCounter(k, p);
  }

  private lines(event: string): Tally[] {
    return this.process.stdout
      .split('\n')
      .filter((l) => l.includes(`"event":"${event}"`))
      .map((l) => JSON.parse(l) as Tally);
  }

  /** The totals so far. */
  async report(): Promise<Tally> {
    const n = ++this.reports;
    this.process.write('report\n');
    return until(`collector ${this.collector}'s counter to report`, () => this.lines('report')[n - 1], 5000, 10);
  }

  /** Stops it; the final totals. */
  async stop(): Promise<Tally> {
    await this.process.stop({ timeoutMs: 5000 });
    const final = this.lines('final')[0];
    if (!final) throw new LabError(`collector ${this.collector}'s counter printed no totals: ${this.process.stderr.trim()}`);
    return final;
  }
}

/** Starts the agent's paced sender in the exporter host: v5-shaped datagrams with `tag`, round-robin over `from`. */
export function startSender(lab: Lab, opts: { from: readonly string[]; port?: number; rate: number; seconds: number; tag: number }): LabProcess {
  return lab.spawnAgent('exporter', [
    'send', '--from', opts.from.join(','), '--to', `${lab.monitored}:${opts.port ?? NETFLOW_PORT}`,
    '--rate', String(opts.rate), '--seconds', String(opts.seconds), '--tag', String(opts.tag),
  ]);
}

/** Waits for a sender to finish; what it sent. */
export async function senderResult(sender: LabProcess, timeoutMs: number): Promise<{ sent: number; target: number; perSource: Record<string, number> }> {
  const s = await sender.wait(timeoutMs);
  if (s.code !== 0) throw new LabError(`sender exited ${s.code ?? s.signal}: ${sender.stderr.trim()}`);
  return JSON.parse(sender.stdout.trim().split('\n').at(-1)!) as { sent: number; target: number; perSource: Record<string, number> };
}

/** Per source: the collectors whose count grew between two sets of reports (index = collector). */
export function growth(before: readonly Tally[], after: readonly Tally[]): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  after.forEach((t, k) => {
    for (const [src, n] of Object.entries(t.bySource)) {
      const d = n - (before[k]?.bySource[src] ?? 0);
      if (d <= 0) continue;
      const m = out.get(src) ?? new Map<number, number>();
      m.set(k, d);
      out.set(src, m);
    }
  });
  return out;
}

// ---- the gateway's view ----

export type BackendStatus = GatewayStatus['destinations'][number]['backends'][number];

/** The netflow destination's backends in GET /api/status. */
export async function backendStatus(lab: Lab): Promise<BackendStatus[]> {
  const s = await lab.status();
  const d = s.destinations.find((x) => x.name === 'netflow');
  if (!d) throw new LabError('/api/status has no netflow destination');
  return d.backends;
}

/** mirrorgate_backend_up of the netflow destination's backends in /metrics, by backend. */
export async function backendUpMetric(lab: Lab): Promise<Record<string, number>> {
  const a = await lab.control('GET', '/metrics');
  if (a.status !== 200 || typeof a.body !== 'string') throw new LabError(`/metrics: HTTP ${a.status} ${a.error ?? ''}`);
  const out: Record<string, number> = {};
  for (const m of a.body.matchAll(/^mirrorgate_backend_up\{([^}]*)\}\s+(\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (labels.destination === 'netflow') out[labels.backend] = Number(m[2]);
  }
  return out;
}

/**
 * Polls /api/status until backend `name` is `up` (true/false); returns the status row and when
 * the poll saw it (each poll runs the control agent in the gateway namespace: ~0.1-0.3 s).
 */
export async function waitBackend(lab: Lab, name: string, up: boolean, timeoutMs = 10_000): Promise<{ row: BackendStatus; seenAt: number }> {
  return until(`backend ${name} ${up ? 'up' : 'down'} in /api/status`, async () => {
    const row = (await backendStatus(lab)).find((b) => b.backend === name);
    return row && row.up === up ? { row, seenAt: Date.now() } : undefined;
  }, timeoutMs, 20);
}

/** The gateway's log lines (pino JSON on stderr) from the process started by lab.startGateway(). */
export function gatewayLog(lab: Lab): { level: number; msg: string; [k: string]: unknown }[] {
  const text = lab.gatewayProcess?.stderr ?? '';
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as { level: number; msg: string }];
      } catch {
        return [];
      }
    });
}

/** pino's level numbers. */
export const Level = { INFO: 30, WARN: 40, ERROR: 50 } as const;
