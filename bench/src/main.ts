/**
 * `npm run bench`: builds its own hosts in network namespaces (generator → gateway → sink), offers
 * AWS-mirrored NetFlow at a ladder of rates to each system under test, and writes
 * bench/results/latest.json and latest.md. Needs root; see bench/README.md.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AgentClient } from './agent.js';
import type { GenResult } from './gen.js';
import { ADDR, EXPORTERS, IF, NS, VETH_RING, VNI } from './layout.js';
import { createBase, have, lossCounters, lossDelta, NAPI_POLICIES, napiPolicy, napiThreads, setLinkQueue, setNapiPolicy, teardownAll, type NapiPolicy } from './netns.js';
import { MIN_PAYLOAD } from './packets.js';
import { cpuPercent, cpuSample, foreignCpu, foreignDelta, machineInfo, processCpuSeconds, treeCpuSeconds, treeRssMB } from './proc.js';
import { nodeCosts, perfRecord, perfTop, round, summarizeProfiles, type NodeCost, type PerfSummary } from './profile.js';
import { lossless, renderMarkdown, stepRow, summarize, type Results, type SoakResult, type StepResult, type SystemResult } from './report.js';
import type { SinkReport } from './sink.js';
import { ALL_SYSTEMS, setPmacctBufferSize, sleep, startSystem, SYSTEMS, type RunningSystem, type SystemName } from './systems.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const AGENT_DIR = dirname(fileURLToPath(import.meta.url));

const DEFAULT_LADDER = [1_000, 20_000, 50_000, 85_000, 100_000, 120_000, 140_000, 160_000, 200_000, 250_000, 300_000];
const QUICK_LADDER = [20_000, 85_000, 160_000];

const QUIET_BUDGET_TEXT = '15 min';
const USAGE = `usage: npm run bench -- [options]   (as root)
  --quick                 one short ladder (${QUICK_LADDER.join(', ')} pps, 1.5 s steps), no profile
  --systems a,b,...       of ${ALL_SYSTEMS.join(', ')} (default: all)
  --rates 20k,50k,...     the ladder (default ${DEFAULT_LADDER.map((r) => `${r / 1000}k`).join(',')})
  --step-seconds N        seconds per step (default 3)
  --payload BYTES         NetFlow v9 datagram size, even (default 1400)
  --soak SECONDS          also run --soak-system at --soak-rate for SECONDS and report the RSS slope
  --soak-rate PPS         (default 85000)
  --soak-system NAME      which mirrorgate system to soak (default mirrorgate; mirrorgate-big holds
                          the 100k-prefix allowlist and 1,000 rules)
  --no-profile            skip the V8 CPU profile of mirrorgate
  --profile-rate PPS      rate for the profile (default: mirrorgate's highest lossless rate, at least 85k)
  --profile-system NAME   which mirrorgate system to profile (default mirrorgate)
  --pmacct-buffer BYTES   nfacctd plugin_buffer_size (default 65536; 0 = nfacctd's default)
  --napi-policy P         scheduling of the veth receive threads: other (default) | nice (-10) | fifo (chrt -f 50)
  --link-queue N          packets each sending veth end may queue while its peer's ${VETH_RING}-frame receive
                          ring is full (a pfifo qdisc: the ring pushes back instead of dropping);
                          0 = veth's default, no queue (default 768: with the ring, an ENA's default
                          1024 receive descriptors)
  --quiet-wait SECONDS    before each step, wait up to this long for other work on the machine to stop
                          (default 60; at most ${QUIET_BUDGET_TEXT} over the whole run)
  --out DIR               results directory (default bench/results)
`;

function parseRate(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(s.trim());
  if (!m) throw new Error(`bad rate ${s}`);
  return Math.round(Number(m[1]) * (m[2].toLowerCase() === 'k' ? 1e3 : m[2].toLowerCase() === 'm' ? 1e6 : 1));
}

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    systems: { type: 'string' },
    rates: { type: 'string' },
    'step-seconds': { type: 'string' },
    payload: { type: 'string', default: '1400' },
    soak: { type: 'string' },
    'soak-rate': { type: 'string', default: '85000' },
    'soak-system': { type: 'string', default: 'mirrorgate' },
    'no-profile': { type: 'boolean', default: false },
    'profile-rate': { type: 'string' },
    'profile-system': { type: 'string', default: 'mirrorgate' },
    'pmacct-buffer': { type: 'string', default: '65536' },
    'quiet-wait': { type: 'string', default: '60' },
    'napi-policy': { type: 'string', default: 'other' },
    'link-queue': { type: 'string', default: '768' },
    out: { type: 'string', default: join(ROOT, 'bench/results') },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: false,
});

if (opt.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (process.getuid?.() !== 0) {
  process.stderr.write(`bench: needs root (network namespaces, raw sockets)\n${USAGE}`);
  process.exit(1);
}

const missingTools = ['ip', 'ethtool', 'timeout'].filter((t) => !have(t));
if (missingTools.length) {
  process.stderr.write(`bench: missing ${missingTools.join(', ')} (Debian: iproute2, ethtool, coreutils)\n`);
  process.exit(1);
}

const quick = opt.quick ?? false;
const ladder = opt.rates ? opt.rates.split(',').map(parseRate) : quick ? QUICK_LADDER : DEFAULT_LADDER;
const stepSeconds = Number(opt['step-seconds'] ?? (quick ? 1.5 : 3));
const payload = Number(opt.payload);
const soakSeconds = opt.soak ? Number(opt.soak) : 0;
const soakRate = parseRate(opt['soak-rate'] ?? '85000');
const doProfile = !opt['no-profile'] && !quick;
const quietWaitS = Number(opt['quiet-wait']);
if (!(NAPI_POLICIES as readonly string[]).includes(opt['napi-policy'] ?? '')) throw new Error(`--napi-policy: expected ${NAPI_POLICIES.join(' | ')}`);
setNapiPolicy(opt['napi-policy'] as NapiPolicy);
const linkQueue = Number(opt['link-queue']);
if (!(Number.isInteger(linkQueue) && linkQueue >= 0 && linkQueue <= 100_000)) throw new Error(`--link-queue: expected 0..100000 packets, got ${opt['link-queue']}`);
setLinkQueue(linkQueue);
const QUIET_PERCENT = 12;
/** Other processes' CPU during a step (percent of one core) above which it is measured again. */
const DISTURBED_PERCENT = 10;
const RETRIES = 2;
const outDir = resolve(opt.out ?? join(ROOT, 'bench/results'));
setPmacctBufferSize(Number(opt['pmacct-buffer']));
const requested = (opt.systems ? opt.systems.split(',').map((s) => s.trim()) : ALL_SYSTEMS) as SystemName[];
for (const s of requested) if (!(s in SYSTEMS)) throw new Error(`unknown system ${s}; expected some of ${ALL_SYSTEMS.join(', ')}`);
const profileSystem = opt['profile-system'] as SystemName;
if (!profileSystem.startsWith('mirrorgate') || !(profileSystem in SYSTEMS)) throw new Error(`--profile-system: expected a mirrorgate system, got ${profileSystem}`);
const soakSystem = opt['soak-system'] as SystemName;
if (!soakSystem.startsWith('mirrorgate') || !(soakSystem in SYSTEMS)) throw new Error(`--soak-system: expected a mirrorgate system, got ${soakSystem}`);
if (!(payload >= MIN_PAYLOAD && payload <= 1450 && payload % 2 === 0)) throw new Error(`--payload: expected an even size ${MIN_PAYLOAD}..1450, got ${payload}`);
if (!(stepSeconds > 0 && stepSeconds <= 60)) throw new Error(`--step-seconds: expected 0..60, got ${stepSeconds}`);
if (!(soakSeconds >= 0 && soakSeconds <= 3600)) throw new Error(`--soak: expected at most 3600 s, got ${soakSeconds}`);

const WARMUP_S = quick ? 1 : 2;
const DRAIN_MS = 400;
const STOP_AFTER_LOSSY = 2;
const workDir = join(outDir, 'run.tmp');

// Every run is bounded: the plan's length with a generous margin, then everything is torn down.
const planSeconds =
  requested.length * ((ladder.length + 1) * (RETRIES + 1) * (stepSeconds + 4.5) + 25) + (doProfile ? 90 : 0) + (soakSeconds ? soakSeconds + 60 : 0) + 60;
/** Waiting for a quiet machine takes at most this long over the whole run. */
const QUIET_BUDGET_S = 900;
let quietSpentMs = 0;
const lifetimeS = Math.ceil(planSeconds * 1.5 + QUIET_BUDGET_S + 120);

let gen: AgentClient | null = null;
let sink: AgentClient | null = null;
let running: RunningSystem | null = null;
let tornDown = false;

function teardown(): void {
  if (tornDown) return;
  tornDown = true;
  gen?.kill();
  sink?.kill();
  for (const p of running?.pids() ?? []) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  teardownAll();
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}: tearing down\n`);
    teardown();
    process.exit(130);
  });
}
process.on('exit', teardown);
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: still running after ${lifetimeS} s: giving up\n`);
  teardown();
  process.exit(2);
}, lifetimeS * 1000);
watchdog.unref();

function startAgent(name: 'gen' | 'sink', ns: string): AgentClient {
  return new AgentClient(name, 'ip', ['netns', 'exec', ns, 'timeout', '-s', 'TERM', '-k', '5', String(lifetimeS), process.execPath, join(AGENT_DIR, `${name}.js`)]);
}

let stepId = 1;
const NPROC = availableParallelism();

/**
 * Other work on this machine (tests, builds) skews every figure: before a step, wait until the
 * machine is quiet (at most --quiet-wait seconds) and return the load seen.
 */
async function waitQuiet(): Promise<number> {
  const started = performance.now();
  const deadline = started + Math.min(quietWaitS * 1000, Math.max(0, QUIET_BUDGET_S * 1000 - quietSpentMs));
  let warned = false;
  for (;;) {
    const a = cpuSample();
    await sleep(1000);
    const bg = cpuPercent(a, cpuSample());
    if (bg <= QUIET_PERCENT || performance.now() > deadline) {
      quietSpentMs += performance.now() - started;
      if (bg > QUIET_PERCENT) log(`  (machine still ${bg.toFixed(0)}% busy with other work: measuring anyway)`);
      return bg;
    }
    if (!warned) log(`  (machine ${bg.toFixed(0)}% busy with other work: waiting up to ${quietWaitS} s)`);
    warned = true;
  }
}
let genPid = 0;
let sinkPid = 0;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

interface StepOptions {
  record?: boolean;
  during?: (t0: number) => Promise<void>;
}

/**
 * One rate step against a running system. A step during which other processes on the machine
 * used more than DISTURBED_PERCENT of a core is measured again (at most RETRIES times).
 */
async function step(sys: RunningSystem, rate: number, seconds: number, opts: StepOptions = {}): Promise<StepResult> {
  let r = await measureStep(sys, rate, seconds, opts);
  for (let attempt = 2; r.foreignCpuPercent > DISTURBED_PERCENT && attempt <= RETRIES + 1 && !opts.during; attempt++) {
    log(`  (other processes used ${r.foreignCpuPercent.toFixed(0)}% of a core during the step: measuring again)`);
    r = await measureStep(sys, rate, seconds, opts);
    r.attempts = attempt;
  }
  if (opts.record !== false) log(`${stepRow(r)}${Object.keys(r.lostWhere).length ? `  lost: ${JSON.stringify(r.lostWhere)}` : ''}`);
  return r;
}

async function measureStep(sys: RunningSystem, rate: number, seconds: number, opts: StepOptions): Promise<StepResult> {
  const id = stepId++;
  const background = await waitQuiet();
  await sink!.request('reset', { step: id });
  const lossNs = sys.info.traffic === 'mirror' ? [NS.gen, NS.gw, NS.sink] : [NS.gen, NS.sink];
  const loss0 = lossCounters(lossNs);
  const before = sys.counters();
  const pids = sys.pids();
  const hasGateway = sys.info.traffic === 'mirror';
  const gwRx = hasGateway ? napiThreads(IF.gwFromGen) : [];
  const sinkGroup = [sinkPid, ...napiThreads(IF.sinkFromGw), ...napiThreads(IF.sinkDirect)];
  const ours = new Set([process.pid, genPid, sinkPid, ...pids]);
  const foreign0 = foreignCpu(ours);
  const cpu0 = cpuSample();
  const gw0 = treeCpuSeconds(pids);
  const rx0 = treeCpuSeconds(gwRx);
  const gen0 = processCpuSeconds(genPid) ?? 0;
  const sink0 = treeCpuSeconds(sinkGroup);
  const t0 = performance.now();
  const run = gen!.request<GenResult>('run', { mode: sys.info.traffic, rate, durationMs: seconds * 1000, step: id, payload }, seconds * 1000 + 30_000);
  if (opts.during) await opts.during(t0);
  const g = await run;
  const cpu1 = cpuSample();
  const wall = (performance.now() - t0) / 1000;
  const gw1 = treeCpuSeconds(pids);
  const rx1 = treeCpuSeconds(gwRx);
  const gen1 = processCpuSeconds(genPid) ?? 0;
  const sink1 = treeCpuSeconds(sinkGroup);
  const foreign = (100 * foreignDelta(foreign0, foreignCpu(ours))) / wall;
  const rss = pids.length ? treeRssMB(pids) : null;
  await sleep(DRAIN_MS);
  const s = await sink!.request<SinkReport>('report');
  const after = sys.counters();
  const lostWhere = lossDelta(loss0, lossCounters(lossNs));
  const elapsed = g.elapsedNs / 1e9;
  const delivered = s.received;
  // Offered: what the generator handed to its link. A refusal there means the receiving host's
  // ring (the gateway's, or the sink's for direct) was full: that host's loss, as on a real NIC.
  const offered = g.sent + g.refused;
  const machineCpu = cpuPercent(cpu0, cpu1);
  const genCpu = (100 * (gen1 - gen0)) / wall;
  const sinkCpu = (100 * (sink1 - sink0)) / wall;
  const gwProcCpu = (100 * (gw1 - gw0)) / wall;
  const gwRxCpu = (100 * (rx1 - rx0)) / wall;
  const gwCpu = hasGateway ? gwProcCpu + gwRxCpu : null;
  const r: StepResult = {
    system: sys.info.name,
    step: id,
    targetPps: rate,
    durationS: round(elapsed, 3),
    offered,
    delivered,
    offeredPps: Math.round(offered / elapsed),
    deliveredPps: Math.round(delivered / elapsed),
    lossPercent: offered > 0 ? round((100 * (offered - delivered)) / offered, 3) : 0,
    kept: s.kept,
    keptPercent: delivered > 0 ? round((100 * s.kept) / delivered, 2) : null,
    sources: s.sources,
    machineCpuPercent: round(machineCpu, 1),
    gatewayCpuUsPerPkt: hasGateway && delivered > 0 ? round(((gw1 - gw0 + rx1 - rx0) * 1e6) / delivered, 3) : null,
    gatewayCpuPercent: gwCpu === null ? null : round(gwCpu, 1),
    gatewayProcessCpuPercent: hasGateway ? round(gwProcCpu, 1) : null,
    gatewayRxThreadCpuPercent: hasGateway ? round(gwRxCpu, 1) : null,
    genCpuPercent: round(genCpu, 1),
    sinkCpuPercent: round(sinkCpu, 1),
    unattributedCpuPercent: round(Math.max(0, machineCpu * NPROC - genCpu - sinkCpu - (gwCpu ?? 0)), 1),
    backgroundCpuPercent: round(background, 1),
    foreignCpuPercent: round(foreign, 1),
    attempts: 1,
    rssMB: rss === null ? null : round(rss, 1),
    latencyUs: s.latencyUs ? { ...s.latencyUs, mean: round(s.latencyUs.mean, 1) } : null,
    genRefused: g.refused,
    genBehind: g.behind,
    genStalls: g.stalls,
    genMaxDue: g.maxDue,
    stale: s.stale,
    oddLength: s.oddLength,
    lostWhere,
  };
  if (before && after) {
    const d = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    const drops: Record<string, number> = {};
    for (const k of Object.keys(after)) if (k.startsWith('drop.') && d(k) > 0) drops[k.slice(5)] = d(k);
    r.gateway = { rx: d('rx_packets'), forwarded: d('tx.forwarded'), txPackets: d('tx.packets'), txErrors: d('tx.errors'), busyWaits: d('tx.busy_waits'), drops, nodes: nodeCosts(before, after) };
  }
  return r;
}

async function runSystem(name: SystemName): Promise<SystemResult> {
  const info = SYSTEMS[name];
  const result: SystemResult = { system: name, description: info.description, traffic: info.traffic, notes: [], steps: [] };
  const missing = info.needs.filter((p) => !have(p));
  if (missing.length) {
    result.error = `skipped: ${missing.join(', ')} not installed`;
    log(`${name}: ${result.error}`);
    return result;
  }
  log(`\n== ${name}: ${info.description}`);
  try {
    running = await startSystem(name, { workDir, root: ROOT, lifetimeS });
    result.notes.push(...running.notes);
    // Warm-up (JIT, neighbour caches, socket buffers); not recorded.
    await step(running, Math.min(50_000, ladder[0] * 2), WARMUP_S, { record: false });
    let lossy = 0;
    const rates = name === 'mirrorgate-big' ? ladder.filter((r) => r <= 85_000).slice(-1) : ladder;
    for (const rate of rates.length ? rates : [ladder[0]]) {
      const s = await step(running, rate, stepSeconds);
      result.steps.push(s);
      if (s.genStalls) result.notes.push(`${s.targetPps} pps: the generator woke ${s.genStalls} times to more than a ring (${VETH_RING} frames) due, at most ${s.genMaxDue}`);
      if (s.genBehind > 0) result.notes.push(`${s.targetPps} pps: the generator fell more than 20 ms behind and left ${s.genBehind} packets unsent (not offered)`);
      if (s.gateway && s.gateway.txErrors > 0) result.notes.push(`${s.targetPps} pps: ${s.gateway.txErrors} egress send errors`);
      if (s.gateway && s.gateway.busyWaits > 0) result.notes.push(`${s.targetPps} pps: ${s.gateway.busyWaits} waits for a full egress queue`);
      if (s.lossPercent > 1 && ++lossy >= STOP_AFTER_LOSSY) break;
    }
  } catch (err) {
    result.error = (err as Error).message;
    log(`${name}: ${result.error}`);
  } finally {
    await running?.stop();
    running = null;
  }
  return result;
}

/** RSS over a long run at a steady rate; slope by least squares. */
async function soak(): Promise<SoakResult> {
  log(`\n== soak: ${soakSystem} at ${soakRate} pps for ${soakSeconds} s`);
  running = await startSystem(soakSystem, { workDir, root: ROOT, lifetimeS });
  const samples: { t: number; rssMB: number }[] = [];
  let s: StepResult | null = null;
  try {
    await step(running, 50_000, WARMUP_S, { record: false });
    const sys = running;
    s = await step(sys, soakRate, soakSeconds, {
      during: async (t0) => {
        const end = t0 + soakSeconds * 1000;
        while (performance.now() < end) {
          const rss = treeRssMB(sys.pids());
          samples.push({ t: round((performance.now() - t0) / 1000, 1), rssMB: round(rss, 2) });
          await sleep(Math.min(5000, Math.max(0, end - performance.now())));
        }
      },
    });
  } finally {
    await running.stop();
    running = null;
  }
  const slope = (pts: { t: number; rssMB: number }[]): number => {
    if (pts.length < 2) return 0;
    const n = pts.length;
    const mt = pts.reduce((a, p) => a + p.t, 0) / n;
    const mr = pts.reduce((a, p) => a + p.rssMB, 0) / n;
    const num = pts.reduce((a, p) => a + (p.t - mt) * (p.rssMB - mr), 0);
    const den = pts.reduce((a, p) => a + (p.t - mt) ** 2, 0);
    return den > 0 ? (num / den) * 60 : 0;
  };
  return {
    system: soakSystem,
    rate: soakRate,
    seconds: soakSeconds,
    samples,
    slopeMBPerMin: round(slope(samples), 4),
    slopeSecondHalfMBPerMin: round(slope(samples.slice(Math.floor(samples.length / 2))), 4),
    step: s,
  };
}

async function profile(system: SystemName, rate: number): Promise<NonNullable<Results['profile']>> {
  const dir = join(outDir, 'profile', new Date().toISOString().replace(/[:.]/g, '-'));
  mkdirSync(dir, { recursive: true });
  log(`\n== profile: ${system} at ${rate} pps, V8 CPU profiles in ${dir}`);
  let s: StepResult | null = null;
  let nodes: NodeCost[] = [];
  let rx = 0;
  let perf: PerfSummary | null = null;
  const perfFile = join(dir, 'perf.data');
  const seconds = Math.max(stepSeconds, 5);
  try {
    running = await startSystem(system, { workDir, root: ROOT, lifetimeS, cpuProfDir: dir });
    await step(running, 50_000, WARMUP_S, { record: false });
    const gwPid = running.pids()[0];
    const rxTids = napiThreads(IF.gwFromGen);
    // perf (kernel and native frames) over the middle of the step, when it is installed.
    const withPerf = have('perf');
    s = await step(running, rate, seconds, {
      during: withPerf
        ? async () => {
            await sleep(500);
            if (await perfRecord(perfFile, seconds - 1.5)) {
              perf = { gateway: perfTop(perfFile, { pid: gwPid }, 30), rxThread: rxTids.length ? perfTop(perfFile, { tid: rxTids[0] }, 15) : [] };
            }
          }
        : undefined,
    });
    nodes = s.gateway?.nodes ?? [];
    rx = (running.counters() ?? {}).rx_packets ?? 0;
  } catch (err) {
    return { system, rate, step: s, nodes, cpu: null, perf, error: (err as Error).message };
  } finally {
    await running?.stop();
    running = null;
  }
  try {
    return { system, rate, step: s, nodes, cpu: summarizeProfiles(dir, rx), perf };
  } catch (err) {
    return { system, rate, step: s, nodes, cpu: null, perf, error: (err as Error).message };
  }
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  log(`bench: ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.kernel}, node ${machine.node}`);
  log(`bench: systems ${requested.join(', ')}; ladder ${ladder.join(', ')} pps; ${stepSeconds} s steps; payload ${payload} B; bounded to ${lifetimeS} s`);
  teardownAll(); // leftovers of an interrupted run
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  createBase();
  sink = startAgent('sink', NS.sink);
  gen = startAgent('gen', NS.gen);
  sinkPid = (await sink.request<{ pid: number }>('ping', {}, 20_000)).pid;
  genPid = (await gen.request<{ pid: number }>('ping', {}, 20_000)).pid;

  const systems: SystemResult[] = [];
  for (const name of requested) systems.push(await runSystem(name));

  let soakResult: SoakResult | undefined;
  if (soakSeconds > 0) soakResult = await soak();

  let prof: Results['profile'];
  if (doProfile && requested.some((n) => n.startsWith('mirrorgate'))) {
    const mg = systems.find((s) => s.system === profileSystem) ?? systems.find((s) => s.system === 'mirrorgate-w1');
    const best = mg?.steps.filter(lossless).reduce((a, s) => Math.max(a, s.targetPps), 0) ?? 0;
    const rate = opt['profile-rate'] ? parseRate(opt['profile-rate']) : Math.max(85_000, best);
    prof = await profile(profileSystem, rate);
  }

  const results: Results = {
    tool: 'mirrorgate bench/',
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    settings: {
      ladder,
      stepSeconds,
      payloadBytes: payload,
      offeredIpBytes: { mirror: payload + 28 + 14 + 8 + 8 + 20, direct: payload + 28 },
      exporters: EXPORTERS,
      mirrorSources: ADDR.mirrorSources.length,
      vni: VNI,
      lossThresholdPercent: 0.1,
      stopAfterLossySteps: STOP_AFTER_LOSSY,
      quick,
      linkQueue,
      napiPolicy,
    },
    systems,
    summary: summarize(systems, ladder),
    soak: soakResult,
    profile: prof,
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  const md = renderMarkdown(results);
  writeFileSync(join(outDir, 'latest.md'), md);
  await gen.request('exit').catch(() => {});
  await sink.request('exit').catch(() => {});
  process.stdout.write(`\n${md}`);
  log(`bench: wrote ${join(outDir, 'latest.json')} and latest.md`);
}

main()
  .catch((err) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    teardown();
    // Keep configs and logs when something failed.
    if (!process.exitCode) rmSync(workDir, { recursive: true, force: true });
  });
