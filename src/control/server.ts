/**
 * The control API, on localhost by default: health for orchestrators, Prometheus metrics, and the
 * JSON API the CLI uses (status, reload, trace). A non-loopback listen address requires a token,
 * enforced by config validation; with a token every route but /healthz requires it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { MirrorgateError } from './errors.js';
import { createMetrics } from './metrics.js';
import type { Gateway } from '../gateway/gateway.js';
import { statusOf } from '../gateway/status.js';
import { parseTraceFilter } from '../core/trace-filter.js';

export class ControlServer {
  private constructor(private readonly server: Server) {}

  get address(): string {
    const a = this.server.address();
    return typeof a === 'object' && a ? `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}` : String(a);
  }

  static async start(gw: Gateway): Promise<ControlServer> {
    const { host, port } = gw.config.control.listen;
    const token = gw.config.control.token;
    const metrics = createMetrics(gw);
    const server = createServer((req, res) => {
      handle(gw, metrics, token, req, res).catch((err: Error) => {
        gw.log.error({ route: `${req.method} ${req.url}`, err: err.message }, 'control API request failed');
        if (res.headersSent) res.destroy();
        else json(res, 500, { error: err.message });
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new MirrorgateError('MG_ERR_CONTROL', `control API ${host}:${port}: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ' — another process owns this port; set control.listen' : ''}`)),
      );
      server.listen(port, host, () => resolve());
    });
    return new ControlServer(server);
  }

  close(): Promise<void> {
    return new Promise((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}

/** Ready: sockets open in every worker and at least one healthy backend per destination. */
export function readiness(gw: Gateway): { ready: boolean; reason: string } {
  if (!gw.ready) return { ready: false, reason: 'workers not running' };
  const byDest = new Map<string, boolean>();
  for (const b of gw.backendHealth()) byDest.set(b.destination, (byDest.get(b.destination) ?? false) || b.up);
  const dead = [...byDest].filter(([, up]) => !up).map(([d]) => d);
  return dead.length ? { ready: false, reason: `no healthy backend in ${dead.join(', ')}` } : { ready: true, reason: '' };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (!token) return true;
  const given = Buffer.from(req.headers.authorization ?? '');
  const want = Buffer.from(`Bearer ${token}`);
  return given.length === want.length && timingSafeEqual(given, want);
}

async function handle(gw: Gateway, metrics: ReturnType<typeof createMetrics>, token: string | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://control');
  const route = `${req.method} ${url.pathname}`;
  // Probes stay open (kubelet httpGet cannot send a token); they reveal nothing but liveness.
  if (route === 'GET /healthz') return void res.end('ok\n');
  if (route === 'GET /readyz') {
    const r = readiness(gw);
    res.writeHead(r.ready ? 200 : 503);
    return void res.end(`${r.ready ? 'ready' : `not ready: ${r.reason}`}\n`);
  }
  if (!authorized(req, token)) return json(res, 401, { error: 'missing or wrong bearer token' });
  switch (route) {
    case 'GET /metrics': {
      const text = await metrics.metrics();
      res.writeHead(200, { 'content-type': metrics.contentType });
      return void res.end(text);
    }
    case 'GET /api/status':
      return json(res, 200, statusOf(gw));
    case 'GET /api/counters':
      return json(res, 200, gw.counters());
    case 'POST /api/reload': {
      const r = await gw.reload();
      return json(res, r.ok ? 200 : 422, r);
    }
    case 'POST /api/trace': {
      const count = Math.min(Math.max(Number(url.searchParams.get('count') ?? 10) || 10, 1), 1000);
      const waitMs = Math.min(Math.max(Number(url.searchParams.get('waitMs') ?? 1000) || 1000, 10), 60_000);
      const filter = url.searchParams.get('filter') ?? '';
      return json(res, 200, { traces: await gw.trace(count, waitMs, parseTraceFilter(filter), filter.trim() !== '') });
    }
    default:
      return json(res, 404, { error: `no route ${route}` });
  }
}
