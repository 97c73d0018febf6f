/**
 * `mirrorgate lab up|test|rate|down`: AWS VPC Traffic Mirroring rebuilt in network namespaces on
 * this host (root only), with real exporters and collectors. See src/lab/.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { UsageError } from '../control/errors.js';
import type { LabOptions } from '../lab/lab.js';
import { Addr, MAX_COLLECTORS, TelemetryPort } from '../lab/plan.js';
import { DEFAULT_LADDER, formatRateHeader, formatRateRow, formatRateSummary, rateLadder } from '../lab/rate.js';

const int = (lo: number, hi: number, what: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < lo || n > hi) throw new InvalidArgumentError(`expected ${what} ${lo}-${hi}, got ${JSON.stringify(value)}`);
  return n;
};

const rateList = (value: string) => {
  const rates = value.split(',').map((v) => Number(v.trim().replace(/k$/i, '000')));
  if (!rates.length || rates.some((r) => !Number.isInteger(r) || r < 1 || r > 10_000_000)) {
    throw new InvalidArgumentError(`expected rates in datagrams/s separated by commas (e.g. 5k,10k,20k), got ${JSON.stringify(value)}`);
  }
  return rates;
};

interface CommonOptions {
  prefix: string;
}
interface BuildOptions extends CommonOptions {
  vni: number;
  collectors: number;
  mtu: number;
  workers?: number;
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new UsageError('the lab builds network namespaces and needs root (try sudo)');
}

function labOptions(o: BuildOptions): LabOptions {
  return { prefix: o.prefix, vni: o.vni, collectors: o.collectors, mtu: o.mtu, workers: o.workers ?? 'auto' };
}

function buildOptions(cmd: Command): Command {
  return cmd
    .option('--prefix <name>', 'namespace name prefix', 'mglab')
    .option('--vni <n>', 'VNI of the mirror session', int(0, 0xffffff, 'a VNI'), 4242)
    .option('--collectors <n>', 'collector hosts', int(1, MAX_COLLECTORS, 'a number of collectors'), 1)
    .option('--mtu <n>', 'MTU towards the collectors (links and destinations)', int(576, 9000, 'an MTU'), 1500)
    .option('--workers <n>', 'gateway workers (default: one per core)', int(1, 256, 'a number of workers'));
}

/** The lab (and the config validation it uses) loads only when a lab command runs. */
const loadLab = () => import('../lab/lab.js');

export function registerLabCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description('AWS VPC Traffic Mirroring rebuilt in network namespaces, with real exporters and collectors (root)');

  buildOptions(lab.command('up'))
    .description('build the lab and start the gateway in it; it keeps running until `lab down`')
    .option('--no-gateway', 'build the hosts only')
    .action(async (o: BuildOptions & { gateway: boolean }) => {
      requireRoot();
      const { Lab, labOwner } = await loadLab();
      const l = new Lab({ ...labOptions(o), log: (line) => process.stdout.write(`  ${line}\n`) });
      const owner = labOwner(l.prefix, l.dir);
      if (owner) throw new UsageError(`lab ${l.prefix} is in use by pid ${owner} (a test or \`lab test\`); choose another --prefix`);
      await l.up();
      const running = await l.detachedGatewayPid();
      if (running) process.stdout.write(`  gateway already running (pid ${running})\n`);
      else if (o.gateway) await l.startGateway({ detached: true });
      const gw = l.ns('gateway');
      process.stdout.write(
        [
          '',
          `Lab ${l.prefix} is up. The exporter (${l.ns('exporter')}) sends to ${Addr.MONITORED}; the kernel mirrors to the gateway (${gw}).`,
          'Try:',
          `  ip netns exec ${l.ns('exporter')} bash -c 'echo hello > /dev/udp/${Addr.MONITORED}/${TelemetryPort.NETFLOW}'`,
          `  ip netns exec ${gw} node ${process.argv[1]} status`,
          `  ip netns exec ${l.ns('collector0')} tcpdump -ni eth0 udp`,
          `  mirrorgate lab rate${l.prefix === 'mglab' ? '' : ` --prefix ${l.prefix}`} --rate 20000`,
          `  mirrorgate lab down${l.prefix === 'mglab' ? '' : ` --prefix ${l.prefix}`}`,
          `Files (gateway config and log): ${l.dir}`,
          '',
        ].join('\n'),
      );
    });

  buildOptions(lab.command('test'))
    .description('the live demo: build, export with softflowd and nfreplay, show what the collector saw, tear down; exit 1 on any loss')
    .option('--flows <n>', 'distinct flows in the synthesized capture', int(1, 5000, 'a number of flows'), 120)
    .option('--rate <pps>', 'also run the rate probe at this rate (loss fails the test)', int(1, 10_000_000, 'a rate'))
    .option('--ladder [rates]', `also find the highest lossless rate (default ${DEFAULT_LADDER.join(',')})`)
    .option('--seconds <s>', 'seconds per rate step', int(1, 60, 'seconds'), 3)
    .option('--keep-files', 'keep captures, nfcapd files and logs')
    .action(async (o: BuildOptions & { flows: number; rate?: number; ladder?: string | boolean; seconds: number; keepFiles?: boolean }) => {
      requireRoot();
      const rates = o.rate ? [o.rate] : o.ladder ? (typeof o.ladder === 'string' ? rateList(o.ladder) : DEFAULT_LADDER) : undefined;
      const { runLabTest } = await import('../lab/demo.js');
      const ok = await runLabTest(
        { ...labOptions(o), flows: o.flows, rates, rateMustBeLossless: Boolean(o.rate), seconds: o.seconds, keepFiles: o.keepFiles, handleSignals: true },
        (line) => process.stdout.write(`${line}\n`),
      );
      if (!ok) process.exitCode = 1;
    });

  lab
    .command('rate')
    .description('measure the lab brought up by `lab up`: offered / mirrored / gateway rx / delivered / loss')
    .option('--prefix <name>', 'namespace name prefix', 'mglab')
    .option('--rate <pps>', 'one step at this rate', int(1, 10_000_000, 'a rate'))
    .option('--ladder [rates]', `steps at these rates (default ${DEFAULT_LADDER.join(',')})`)
    .option('--seconds <s>', 'seconds per step', int(1, 60, 'seconds'), 3)
    .option('--senders <n>', 'sender processes (when one core cannot reach the rate)', int(1, 4, 'a number of senders'), 1)
    .option('--size <bytes>', 'UDP payload per datagram (default 1464, a full NetFlow v5 datagram)', int(24, 8900, 'a size'))
    .option('--json', 'print the steps as JSON')
    .action(async (o: CommonOptions & { rate?: number; ladder?: string | boolean; seconds: number; senders: number; size?: number; json?: boolean }) => {
      requireRoot();
      const { Lab } = await loadLab();
      const l = Lab.attach(o.prefix);
      const rates = o.rate ? [o.rate] : typeof o.ladder === 'string' ? rateList(o.ladder) : DEFAULT_LADDER;
      if (!o.json) process.stdout.write(`${formatRateHeader()}\n`);
      const r = await rateLadder(l, { rates, seconds: o.seconds, senders: o.senders, size: o.size, all: true }, (s) => {
        if (!o.json) process.stdout.write(`${formatRateRow(s)}\n`);
      });
      if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else process.stdout.write(`\n${formatRateSummary(r)}\n`);
      if (o.rate && !r.steps[0]?.lossless) process.exitCode = 1;
    });

  lab
    .command('down')
    .description("remove the lab's namespaces, processes and files (also after a crash)")
    .option('--prefix <name>', 'namespace name prefix', 'mglab')
    .option('--all', 'remove every lab found (any prefix), except those a running test or `lab test` owns')
    .option('--force', 'with --all: also the labs of running processes')
    .action(async (o: CommonOptions & { all?: boolean; force?: boolean }) => {
      requireRoot();
      const { Lab, labOwner, labPrefixes } = await loadLab();
      const prefixes = o.all ? await labPrefixes() : [o.prefix];
      for (const prefix of prefixes) {
        const owner = o.all && !o.force ? labOwner(prefix) : null;
        if (owner) {
          process.stdout.write(`lab ${prefix} is in use by pid ${owner}: left alone (--force removes it)\n`);
          continue;
        }
        await new Lab({ prefix, log: (line) => process.stdout.write(`  ${line}\n`) }).down();
        process.stdout.write(`lab ${prefix} is down\n`);
      }
      if (prefixes.length === 0) process.stdout.write('no lab found\n');
    });
}
