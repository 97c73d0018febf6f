/**
 * The generator and the sink run as their own processes inside their namespaces and take
 * commands from the orchestrator as JSON lines on stdin, answering one JSON line each on stdout.
 * An agent exits when stdin closes (the orchestrator died) or after a long silence.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Request {
  id: number;
  cmd: string;
  args?: Record<string, unknown>;
}

export interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export type Handler = (args: Record<string, unknown>) => unknown | Promise<unknown>;

/** Agent side: serves commands until stdin closes or nothing arrives for `idleExitMs`. */
export function serve(handlers: Record<string, Handler>, idleExitMs = 15 * 60_000): void {
  let idle = setTimeout(() => process.exit(3), idleExitMs);
  const rl = createInterface({ input: process.stdin });
  let chain = Promise.resolve();
  rl.on('line', (line) => {
    clearTimeout(idle);
    idle = setTimeout(() => process.exit(3), idleExitMs);
    chain = chain.then(async () => {
      let req: Request;
      try {
        req = JSON.parse(line) as Request;
      } catch {
        return;
      }
      const reply: Reply = { id: req.id, ok: true };
      try {
        const h = handlers[req.cmd];
        if (!h) throw new Error(`unknown command ${req.cmd}`);
        reply.result = await h(req.args ?? {});
      } catch (err) {
        reply.ok = false;
        reply.error = (err as Error).stack ?? String(err);
      }
      process.stdout.write(`${JSON.stringify(reply)}\n`);
      if (req.cmd === 'exit') process.exit(0);
    });
  });
  rl.on('close', () => process.exit(0));
}

/** Orchestrator side: a running agent process. */
export class AgentClient {
  readonly child: ChildProcessWithoutNullStreams;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited: string | null = null;
  stderr = '';

  constructor(
    readonly name: string,
    command: string,
    args: string[],
  ) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      let reply: Reply;
      try {
        reply = JSON.parse(line) as Reply;
      } catch {
        process.stderr.write(`[${name}] ${line}\n`);
        return;
      }
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new Error(`${name}: ${reply.error}`));
    });
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = `${name} exited (code ${code}, signal ${signal}): ${this.stderr.trim().slice(-1500)}`;
      for (const p of this.pending.values()) p.reject(new Error(this.exited));
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  request<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no answer to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin.write(`${JSON.stringify({ id, cmd, args } satisfies Request)}\n`);
    });
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
  }
}
