/** The CLI's commands; each is a thin layer over a control-plane function. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, type Command } from 'commander';
import type { Config } from '../control/config.js';
import { formatTraces } from '../core/trace.js';
import type { ReplayResult } from '../replay.js';
import { formatAccounting } from './report.js';

// Commands load what they need when they run: `mirrorgate run` keeps zod, yaml and the
// generator out of the gateway's main thread (they cost memory it would keep for good).
const config = () => import('../control/config.js');
const scenario = () => import('../gen/capture.js');

export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEMO_CONFIG = join(PACKAGE_ROOT, 'examples', 'demo.yaml');

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive whole number, got ${JSON.stringify(value)}`);
  return n;
}

export function registerCommands(program: Command): void {
  program
    .command('check')
    .description('validate a config file: exit 0 if valid, else 1 with one line per problem')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
    .action(async (opts: { config: string }) => {
      const c = (await config()).loadConfig(opts.config);
      process.stdout.write(`${opts.config}: valid (${summarize(c)})\n`);
    });

  program
    .command('replay')
    .description('run the pipeline over a capture; OUT gets what would be transmitted (raw IP, LINKTYPE_RAW)')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
    .argument('<input>', 'capture to replay (pcap or pcapng; Ethernet, raw IP or Linux cooked)')
    .option('-o, --output <file>', 'write transmitted packets to this pcap')
    .option('--json', 'print one JSON object instead of the summary')
    .option('--trace <n>', 'trace the first N packets node by node', positiveInt)
    .option('--filter <terms>', 'with --trace: only packets matching all terms (drop, drop:REASON, sent, node:NAME, or text)')
    .action(async (input: string, opts: { config: string; output?: string; json?: boolean; trace?: number; filter?: string }) => {
      const c = (await config()).loadConfig(opts.config);
      const result = await runReplay(c, input, opts.output, opts.trace, !opts.json, opts.filter);
      printReplay(result, Boolean(opts.json));
    });

  program
    .command('gen')
    .description('write a capture in AWS mirror format (VXLAN) carrying NetFlow v5/v9, IPFIX and sFlow')
    .requiredOption('-o, --output <file>', 'capture to write (pcap, Ethernet)')
    .option('--vni <n>', 'VXLAN VNI of the mirror session', (v) => parseVni(v), 123)
    .option('--exporters <list>', 'comma-separated exporter addresses (default: 4 in 198.18.0.0/24)')
    .option('--collector <ip>', 'the address the exporters send to', '203.0.113.10')
    .option('--datagrams <n>', 'datagrams per exporter and protocol', positiveInt, 25)
    .option('--seed <n>', 'random seed', positiveInt, 1)
    .action(async (opts: { output: string; vni: number; exporters?: string; collector: string; datagrams: number; seed: number }) => {
      const n = (await scenario()).writeScenario(opts.output, {
        vni: opts.vni,
        exporters: opts.exporters?.split(',').map((s) => s.trim()),
        collector: opts.collector,
        datagramsPerExporter: opts.datagrams,
        seed: opts.seed,
      });
      process.stdout.write(`${opts.output}: ${n} mirrored packets (VNI ${opts.vni})\n`);
    });

  program
    .command('demo')
    .description('the quick start: generate a mirrored capture, replay it through the built-in config, report')
    .option('-d, --dir <dir>', 'where to write the demo files', 'mirrorgate-demo')
    .action(async (opts: { dir: string }) => {
      const { writeScenario } = await scenario();
      mkdirSync(opts.dir, { recursive: true });
      const configPath = join(opts.dir, 'mirrorgate.yaml');
      if (!existsSync(configPath)) writeFileSync(configPath, readFileSync(DEMO_CONFIG));
      const input = join(opts.dir, 'mirror.pcap');
      const output = join(opts.dir, 'out.pcap');
      const packets = writeScenario(input, { vni: 123, datagramsPerExporter: 25, seed: 1 });
      process.stdout.write(`generated ${input}: ${packets} packets mirrored by AWS (VXLAN, VNI 123)\n`);
      const c = (await config()).loadConfig(configPath);
      const result = await runReplay(c, input, output, 0, false);
      printReplay(result, false);
      process.stdout.write(
        `\nnext: edit ${configPath} and run\n  ${self()} replay -c ${configPath} ${input} -o ${output}\n` +
          `  tshark -r ${output}\n`,
      );
    });
}

/** How to invoke this CLI again: `mirrorgate` when installed, else the script as it was run. */
function self(): string {
  const script = process.argv[1] ?? '';
  return /node_modules[\\/]\.bin|[\\/]bin[\\/]mirrorgate$/.test(script) ? 'mirrorgate' : `node ${relative(process.cwd(), script) || script}`;
}

function parseVni(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffff) throw new InvalidArgumentError(`expected a VNI 0-16777215, got ${JSON.stringify(v)}`);
  return n;
}

async function runReplay(config: Config, input: string, output: string | undefined, trace: number | undefined, progress: boolean, traceFilter?: string): Promise<ReplayResult> {
  const { replay } = await import('../replay.js');
  return replay({
    config,
    input,
    output,
    trace,
    traceFilter,
    onProgress: progress && process.stderr.isTTY ? (n) => process.stderr.write(`\r${n.toLocaleString('en-US')} packets…`) : undefined,
  });
}

function printReplay(r: ReplayResult, json: boolean): void {
  if (json) {
    const { traces, ...rest } = r;
    process.stdout.write(`${JSON.stringify(traces.length ? r : rest)}\n`);
    return;
  }
  process.stdout.write(`replay ${r.input}${r.output ? ` → ${r.output}` : ''}: ${r.records} records${r.skipped ? ` (${r.skipped} skipped: link type not Ethernet/IPv4)` : ''}\n`);
  process.stdout.write(`${formatAccounting(r, (reason) => r.reasons[reason] ?? '')}\n`);
  if (r.traces.length) process.stdout.write(`\n${formatTraces(r.traces)}`);
}

function summarize(c: Config): string {
  const d = Object.keys(c.destinations).length;
  return `${c.rules.length} rules, ${d} destinations, ${c.sessions ? `${c.sessions.length} sessions` : 'any VNI'}, allowlist ${c.allowlistSource ?? 'off (any exporter)'}`;
}

