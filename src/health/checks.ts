/**
 * Health probes for collector backends, run on the main thread. A probe never rejects: every
 * outcome, including a timeout and an abort, resolves to a `ProbeResult` whose `detail` says what
 * happened in a few words (`connected`, `ECONNREFUSED`, `timeout after 500 ms`, `HTTP 503`).
 *
 *   tcp   connect to host:port within the timeout, then close (no payload is sent)
 *   http  GET http://host:port/path within the timeout; ok when the status is in `expect`
 *   none  always ok, without touching the network
 *
 * Hosts are IPv4 or IPv6 address literals (IPv6 without brackets: "::1").
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { HealthCheckConfig } from './config.js';
import { formatExpect, statusAccepted, type StatusRange } from './expect.js';

export interface ProbeResult {
  ok: boolean;
  /** What happened: `connected`, `HTTP 200`, an errno (`ECONNREFUSED`), `timeout after N ms`, `aborted`. */
  detail: string;
  /** From the start of the probe to its verdict, in milliseconds (0.1 ms resolution). */
  latencyMs: number;
}

export interface HttpProbeOptions {
  path: string;
  expect: readonly StatusRange[];
}

export const PROBE_DETAIL = {
  CONNECTED: 'connected',
  NO_CHECK: 'no health check',
  ABORTED: 'aborted',
} as const;

const timeoutDetail = (ms: number): string => `timeout after ${ms} ms`;

/** The errno (`ECONNREFUSED`, `EHOSTUNREACH`...) or, failing that, the message. */
function errorDetail(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return typeof e?.code === 'string' ? e.code : e instanceof Error ? e.message : String(err);
}

/**
 * Runs `body` with a settle-once verdict, a timeout and the caller's abort signal. `body` gets
 * the verdict function and registers its own cleanup (closing the socket) through `onSettle`.
 */
function withDeadline(
  timeoutMs: number,
  signal: AbortSignal | undefined,
  body: (settle: (ok: boolean, detail: string) => void, onSettle: (cleanup: () => void) => void) => void,
): Promise<ProbeResult> {
  const start = performance.now();
  return new Promise<ProbeResult>((resolve) => {
    if (signal?.aborted) {
      resolve({ ok: false, detail: PROBE_DETAIL.ABORTED, latencyMs: 0 });
      return;
    }
    const cleanups: Array<() => void> = [];
    let done = false;
    const settle = (ok: boolean, detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      for (const c of cleanups) c();
      resolve({ ok, detail, latencyMs: Math.round((performance.now() - start) * 10) / 10 });
    };
    const onAbort = (): void => settle(false, PROBE_DETAIL.ABORTED);
    const timer = setTimeout(() => settle(false, timeoutDetail(timeoutMs)), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      body(settle, (c) => cleanups.push(c));
    } catch (err) {
      settle(false, errorDetail(err));
    }
  });
}

/** Connects to host:port and closes at once; ok when the handshake completes within the timeout. */
export function probeTcp(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  return withDeadline(timeoutMs, signal, (settle, onSettle) => {
    const socket = connect({ host, port });
    onSettle(() => socket.destroy());
    socket.once('connect', () => settle(true, PROBE_DETAIL.CONNECTED));
    socket.on('error', (err) => settle(false, errorDetail(err)));
  });
}

/**
 * GET http://host:port/path; ok when the response status is in `expect`. Only the status line and
 * headers are awaited: the body is not read and the connection is closed (no keep-alive agent).
 */
export function probeHttp(
  host: string,
  port: number,
  options: HttpProbeOptions,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ProbeResult> {
  return withDeadline(timeoutMs, signal, (settle, onSettle) => {
    const abort = new AbortController();
    onSettle(() => abort.abort());
    const req = request({
      host,
      port,
      path: options.path,
      method: 'GET',
      agent: false,
      signal: abort.signal,
      headers: { 'user-agent': 'mirrorgate-health', accept: '*/*', connection: 'close' },
    });
    req.once('response', (res) => {
      const status = res.statusCode ?? 0;
      res.destroy();
      if (statusAccepted(status, options.expect)) settle(true, `HTTP ${status}`);
      else settle(false, `HTTP ${status} (expected ${formatExpect(options.expect)})`);
    });
    // Our own abort (after a verdict) surfaces here as AbortError; `settle` ignores it by then.
    req.on('error', (err) => settle(false, errorDetail(err)));
    req.end();
  });
}

/** Runs the probe that `check` describes against a backend; `check.port` overrides `port`. */
export function probe(host: string, port: number, check: HealthCheckConfig, signal?: AbortSignal): Promise<ProbeResult> {
  const target = check.port ?? port;
  switch (check.check) {
    case 'tcp':
      return probeTcp(host, target, check.timeout, signal);
    case 'http':
      return probeHttp(host, target, { path: check.path, expect: check.expect }, check.timeout, signal);
    case 'none':
      return Promise.resolve({ ok: true, detail: PROBE_DETAIL.NO_CHECK, latencyMs: 0 });
  }
}
