/** Commands that run or talk to a live gateway. */
import type { Command } from 'commander';
import { MirrorgateError } from '../control/errors.js';
import type { ControlServer } from '../control/server.js';
import { formatTraces, type PacketTrace } from '../core/trace.js';
import type { statusOf } from '../gateway/status.js';
import { formatAccounting } from './report.js';

export function registerLiveCommands(program: Command): void {
  program
    .command('run')
    .description('run the gateway in the foreground; SIGTERM/SIGINT drain and exit 0, SIGHUP reloads')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
    .action(async (opts: { config: string }) => {
      const [{ createLogger }, { ControlServer }, { Gateway }] = await Promise.all([
        import('../control/log.js'),
        import('../control/server.js'),
        import('../gateway/gateway.js'),
      ]);
      const log = createLogger();
      const gw = await Gateway.start({ configPath: opts.config, log });
      let server: ControlServer;
      try {
        server = await ControlServer.start(gw);
      } catch (err) {
        await gw.stop();
        throw err;
      }
      log.info({ control: server.address }, 'control API listening');
      await new Promise<void>((resolve) => {
        process.on('SIGHUP', () => void gw.reload());
        const stop = (signal: string) => {
          log.info({ signal }, 'draining and stopping');
          void gw
            .stop()
            .then(() => server.close())
            .then(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });

  /** Packet egress: where a backend's frames go, or why they take the kernel's IP output. */
  const nextHopText = (b: { nextHop?: { dev: string; dstMac: string } | { none: string } }): string => {
    if (!b.nextHop) return '';
    return 'none' in b.nextHop ? `  via the kernel (${b.nextHop.none})` : `  frames on ${b.nextHop.dev} to ${b.nextHop.dstMac}`;
  };

  controlCommand(program, 'status')
    .description("one screen on a running gateway: traffic, drops by reason, destinations")
    .option('--json', 'print the status document')
    .action(async (opts: ControlOptions & { json?: boolean }) => {
      const s = (await controlRequest(opts, 'GET', '/api/status')) as ReturnType<typeof statusOf>;
      if (opts.json) return void process.stdout.write(`${JSON.stringify(s)}\n`);
      if (!isStatus(s)) {
        throw new MirrorgateError('MG_ERR_CONTROL', 'the gateway answered with a status this mirrorgate does not read (another version?); try --json');
      }
      process.stdout.write(
        [
          `mirrorgate pid ${s.pid}, up ${s.uptimeSeconds} s, config ${s.config} (generation ${s.generation}; reloads ${s.reloads.success} ok, ${s.reloads.failure} failed)`,
          `listen ${s.listen}, ${s.workers} workers, egress ${s.egress}, ${s.ready ? 'ready' : 'NOT READY'}`,
          formatAccounting(s.accounting),
          'destinations:',
          ...s.destinations.flatMap((d) => [
            `  ${d.name} (${d.balance}, mtu ${d.mtu}, health check ${d.check})`,
            ...d.backends.map((b) => `    ${b.up ? 'UP  ' : 'DOWN'} ${b.backend.padEnd(24)} ${String(b.packets).padStart(10)} packets${b.detail ? `  ${b.detail}` : ''}${nextHopText(b)}`),
          ]),
          'sessions:',
          ...(s.sessions.length ? s.sessions.map((x) => `  vni ${x.vni} (${x.name}): ${x.packets} packets`) : ['  none seen']),
          `exporters (top ${s.exporters.rows.length}${s.exporters.untracked ? `, ${s.exporters.untracked} untracked` : ''}):`,
          ...s.exporters.rows.map(
            (e) => `  ${e.exporter.padEnd(22)} ${String(e.packets).padStart(10)} packets  ${e.gaps ? `${e.gaps} gaps (${e.lost} lost)` : 'no gaps'}${e.malformed ? `  ${e.malformed} malformed` : ''}`,
          ),
        ].join('\n') + '\n',
      );
    });

  controlCommand(program, 'trace')
    .description("capture the next packets' path through the graph, node by node")
    .option('-n, --count <n>', 'packets to trace', '10')
    .option('--wait <ms>', 'how long to wait for traffic', '2000')
    .option('--filter <terms>', 'keep packets matching all terms: drop, drop:REASON, sent, node:NAME, or text in a step (an address, "vni 123")')
    .option('--json', 'print the traces as JSON')
    .action(async (opts: ControlOptions & { count: string; wait: string; filter?: string; json?: boolean }) => {
      const query = new URLSearchParams({ count: String(Number(opts.count)), waitMs: String(Number(opts.wait)), filter: opts.filter ?? '' });
      const r = (await controlRequest(opts, 'POST', `/api/trace?${query}`)) as { traces: PacketTrace[] };
      if (opts.json) return void process.stdout.write(`${JSON.stringify(r)}\n`);
      process.stdout.write(r.traces.length ? formatTraces(r.traces) : 'no packets arrived while tracing\n');
    });

  controlCommand(program, 'reload')
    .description('ask a running gateway to reload its config file')
    .action(async (opts: ControlOptions) => {
      const r = (await controlRequest(opts, 'POST', '/api/reload')) as { ok: boolean; generation?: number; problems?: string[] };
      if (r.ok) process.stdout.write(`reloaded: generation ${r.generation}\n`);
      else throw new MirrorgateError('MG_ERR_CONFIG', `reload rejected, running configuration kept:\n  ${r.problems?.join('\n  ')}`);
    });
}

/** The status document's shape, as far as the text report relies on it. */
function isStatus(s: unknown): s is ReturnType<typeof statusOf> {
  const x = s as ReturnType<typeof statusOf> | null;
  return (
    !!x &&
    typeof x.accounting === 'object' &&
    Array.isArray(x.destinations) &&
    x.destinations.every((d) => Array.isArray(d.backends) && d.backends.every((b) => typeof b === 'object' && typeof b.backend === 'string')) &&
    Array.isArray(x.sessions) &&
    typeof x.exporters === 'object' &&
    Array.isArray(x.exporters.rows)
  );
}

/** A command that talks to a running gateway: it finds the control API from -c FILE or --control. */
export function controlCommand(program: Command, name: string): Command {
  return program
    .command(name)
    .option('-c, --config <file>', 'config of the gateway (for its control address and token)')
    .option('--control <host:port>', 'control API address', '127.0.0.1:9090');
}

export interface ControlOptions {
  config?: string;
  control: string;
}

/** Calls the control API of a running gateway; its address and token come from the config when given. */
export async function controlRequest(opts: ControlOptions, method: string, path: string): Promise<unknown> {
  let address = opts.control;
  let token = process.env.MIRRORGATE_TOKEN;
  if (opts.config) {
    const c = (await import('../control/config.js')).loadConfig(opts.config);
    const h = c.control.listen.host;
    address = `${h === '0.0.0.0' ? '127.0.0.1' : h === '::' ? '[::1]' : h.includes(':') ? `[${h}]` : h}:${c.control.listen.port}`;
    token = c.control.token ?? token;
  }
  let res: Response;
  try {
    res = await fetch(`http://${address}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (err) {
    throw new MirrorgateError('MG_ERR_CONTROL', `no gateway answers at ${address} (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}); is it running, and is --control or -c right?`);
  }
  const body = await res.json().catch(() => null);
  if (res.status === 401) throw new MirrorgateError('MG_ERR_CONTROL', `${address}: token required or wrong (set control.token in -c FILE or MIRRORGATE_TOKEN)`);
  return body;
}
