/** Real sockets on loopback for the health tests: servers that accept, answer, refuse or hang. */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface TestServer {
  host: string;
  port: number;
  /** Stops listening and drops every open connection. */
  close(): Promise<void>;
  /** Listens again on the same port (a collector that restarted). */
  reopen(): Promise<void>;
}

async function wrap(server: Server, host: string, port = 0): Promise<TestServer> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listen = (p: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const bound = await listen(port);
  return {
    host,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        if (!server.listening) resolve();
        else server.close(() => resolve());
      }),
    reopen: async () => {
      await listen(bound);
    },
  };
}

/** A TCP server that accepts and holds connections. */
export function tcpServer(host = '127.0.0.1'): Promise<TestServer> {
  return wrap(createServer(() => {}), host);
}

/** An HTTP server answering every request with `handler` (default: 200). */
export function httpServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end('ok'),
  host = '127.0.0.1',
): Promise<TestServer> {
  return wrap(createHttpServer(handler), host);
}

/** An HTTP server that reads the request and never answers. */
export function hangingHttpServer(host = '127.0.0.1'): Promise<TestServer> {
  return httpServer(() => {}, host);
}

/** A loopback port with nothing listening on it (bound once, then released). */
export async function closedPort(host = '127.0.0.1'): Promise<number> {
  const s = await tcpServer(host);
  await s.close();
  return s.port;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` every 5 ms; resolves with the elapsed ms, rejects after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what = 'condition'): Promise<number> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
  return performance.now() - start;
}
