/**
 * Structured JSON logs (pino) on stderr. Lifecycle events only; per-packet conditions reach the
 * log through rate-limited summaries, never one line per packet.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level = process.env.MIRRORGATE_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: 'mirrorgate', level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}

/** Emits at most one line per `intervalMs` per key, with how many were suppressed. */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(private readonly log: Logger, private readonly intervalMs = 10_000) {}

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    this.log.warn({ ...fields, suppressed: entry?.suppressed ?? 0 }, message);
    this.last.set(key, { at: now, suppressed: 0 });
  }
}
