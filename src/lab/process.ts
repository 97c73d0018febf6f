/**
 * Running commands for the lab: one-shot commands with a time limit, and long-running processes
 * whose output can be waited on line by line. Nothing here runs a shell: arguments go to
 * execve as they are.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { MirrorgateError } from '../control/errors.js';

/** A lab step that failed: the command, its exit and the end of its stderr. */
export class LabError extends MirrorgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MG_ERR_LAB', message, options);
  }
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Kill the command after this long (default 30 s); counts as a failure. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Uint8Array;
  /** Return non-zero exits instead of throwing. */
  allowFailure?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const MAX_OUTPUT = 8 << 20;

function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

function lastLines(text: string, n = 6): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

/** Runs a command to completion; throws LabError on a non-zero exit unless `allowFailure`. */
export function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new LabError(`${commandLine(cmd, args)}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? `${cmd} is not installed` : err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const r: ExecResult = { code, signal, stdout, stderr };
      if (timedOut) return reject(new LabError(`${commandLine(cmd, args)}: no answer within ${opts.timeoutMs ?? 30_000} ms`));
      if (code !== 0 && !opts.allowFailure) {
        return reject(new LabError(`${commandLine(cmd, args)}: exit ${code ?? signal}${stderr.trim() ? `\n${lastLines(stderr)}` : ''}`));
      }
      resolve(r);
    });
    child.stdin!.on('error', () => {}); // the command may exit before reading its input
    child.stdin!.end(opts.input ?? '');
  });
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnProcessOptions {
  /** A name for messages ("nfcapd on collector0"). */
  name?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Also append stdout and stderr to this file. */
  logFile?: string;
  /**
   * Outlive this process (for `lab up`): own process group, output only to `logFile`, not
   * waited for. Such processes are found again by namespace (`ip netns pids`) on `lab down`.
   */
  detached?: boolean;
}

/** A long-running process with its output kept, to wait for a line or its exit. */
export class LabProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  stdout = '';
  stderr = '';
  exitStatus: ExitStatus | null = null;
  private readonly listeners = new Set<() => void>();
  private logFd: number | null = null;

  constructor(cmd: string, args: readonly string[], opts: SpawnProcessOptions = {}) {
    this.name = opts.name ?? commandLine(cmd, args);
    if (opts.logFile) this.logFd = openSync(opts.logFile, 'a', 0o644);
    const spawnOpts: SpawnOptions = { env: opts.env ?? process.env, cwd: opts.cwd };
    if (opts.detached) {
      spawnOpts.detached = true;
      spawnOpts.stdio = ['ignore', this.logFd ?? 'ignore', this.logFd ?? 'ignore'];
    } else spawnOpts.stdio = ['pipe', 'pipe', 'pipe'];
    this.child = spawn(cmd, args, spawnOpts);
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.stderr += `${(err as NodeJS.ErrnoException).code === 'ENOENT' ? `${cmd} is not installed` : err.message}\n`;
        this.finish({ code: 127, signal: null }, resolve);
      });
      this.child.on('close', (code, signal) => this.finish({ code, signal }, resolve));
    });
    if (opts.detached) {
      this.child.unref();
      return;
    }
    this.child.stdin!.on('error', () => {});
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => this.append('stdout', d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => this.append('stderr', d));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitStatus === null;
  }

  private finish(status: ExitStatus, resolve: (s: ExitStatus) => void): void {
    if (this.exitStatus) return;
    this.exitStatus = status;
    if (this.logFd !== null) {
      closeSync(this.logFd);
      this.logFd = null;
    }
    for (const l of [...this.listeners]) l();
    resolve(status);
  }

  private append(stream: 'stdout' | 'stderr', data: string): void {
    if (this[stream].length < MAX_OUTPUT) this[stream] += data;
    if (this.logFd !== null) writeSync(this.logFd, data);
    for (const l of [...this.listeners]) l();
  }

  /** Writes to the process's stdin. */
  write(text: string): void {
    this.child.stdin?.write(text);
  }

  /**
   * Resolves with the first complete output line matching `pattern` (already printed or still
   * to come); rejects when the process exits first or after `timeoutMs`.
   */
  waitForLine(pattern: RegExp, opts: { stream?: 'stdout' | 'stderr' | 'both'; timeoutMs?: number } = {}): Promise<string> {
    const stream = opts.stream ?? 'both';
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const complete = (text: string) => {
        const lines = text.split('\n');
        if (this.running) lines.pop(); // a line still being written
        return lines;
      };
      const check = () => {
        const streams = stream === 'both' ? [this.stdout, this.stderr] : [this[stream]];
        const line = streams.flatMap(complete).find((l) => pattern.test(l));
        if (line !== undefined) return done(() => resolve(line));
        if (this.exitStatus) {
          const how = this.exitStatus.code ?? this.exitStatus.signal;
          return done(() => reject(new LabError(`${this.name} exited (${how}) before printing ${pattern}${this.stderr.trim() ? `:\n${lastLines(this.stderr)}` : ''}`)));
        }
      };
      const timer = setTimeout(() => done(() => reject(new LabError(`${this.name}: no line matching ${pattern} within ${timeoutMs} ms${this.stderr.trim() ? `; stderr:\n${lastLines(this.stderr)}` : ''}`))), timeoutMs);
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        f();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Sends a signal if the process still runs. */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** Sends `signal` (default SIGTERM), then SIGKILL after `timeoutMs`; resolves on exit. */
  async stop(opts: { signal?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<ExitStatus> {
    if (!this.running) return this.exitStatus!;
    this.child.kill(opts.signal ?? 'SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), opts.timeoutMs ?? 5000);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for the process to exit by itself; kills it after `timeoutMs`. */
  async wait(timeoutMs: number): Promise<ExitStatus> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every `intervalMs` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new LabError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
