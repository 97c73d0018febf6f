/**
 * One gateway per UDP listen port (per network namespace). SO_REUSEPORT would let a second
 * instance bind the same port silently and take half the traffic — the duplicate-program failure
 * of the XDP pipeline — so each gateway holds an abstract Unix socket named after its port. The
 * kernel frees it when the process dies (no stale lock files), and it answers who holds it.
 */
import { createConnection, createServer, type Server } from 'node:net';
import { MirrorgateError } from '../control/errors.js';

export interface OwnerInfo {
  pid: number;
  config: string;
  control: string;
  since: string;
}

export class InstanceLock {
  private constructor(private readonly server: Server) {}

  static async acquire(port: number, info: OwnerInfo): Promise<InstanceLock> {
    const name = `\0mirrorgate/udp/${port}`;
    const server = createServer((sock) => sock.end(JSON.stringify(info)));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ path: name, exclusive: true }, () => resolve());
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      const owner = await ask(name);
      throw new MirrorgateError(
        'MG_ERR_ALREADY_RUNNING',
        owner
          ? `UDP port ${port} is already served by mirrorgate pid ${owner.pid} (config ${owner.config}, control ${owner.control}, since ${owner.since}); stop it first or use another listen.port`
          : `UDP port ${port} is already served by another mirrorgate in this network namespace`,
      );
    }
    server.unref();
    return new InstanceLock(server);
  }

  release(): void {
    this.server.close();
  }
}

function ask(name: string): Promise<OwnerInfo | null> {
  return new Promise((resolve) => {
    let text = '';
    const sock = createConnection({ path: name });
    const done = (v: OwnerInfo | null) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(1000, () => done(null));
    sock.on('data', (d) => (text += d));
    sock.on('end', () => {
      try {
        done(JSON.parse(text) as OwnerInfo);
      } catch {
        done(null);
      }
    });
    sock.on('error', () => done(null));
  });
}
