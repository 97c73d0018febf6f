/**
 * Loads and validates a config file in a short-lived worker thread. Validating a 100k-entry
 * allowlist and a thousand rules makes a lot of garbage, and a heap that grew for it keeps its
 * pages: done here, the memory goes back to the system when the thread exits, and the gateway's
 * main thread keeps only the compact result.
 */
import { parentPort, workerData, Worker } from 'node:worker_threads';
import type { Config } from '../control/config.js';
import { ConfigError, MirrorgateError } from '../control/errors.js';

type Answer = { config: Config } | { problems: string[]; source: string } | { code: string; message: string };

if (parentPort && (workerData as { role?: string } | null)?.role === 'load-config') {
  const path = (workerData as { path: string }).path;
  let answer: Answer;
  try {
    const { compactConfig, loadConfig } = await import('../control/config.js'); // zod and yaml: this thread only
    answer = { config: compactConfig(loadConfig(path)) };
  } catch (err) {
    if (err instanceof ConfigError) answer = { problems: [...err.problems], source: path };
    else answer = { code: (err as MirrorgateError).code ?? 'MG_ERR_CONFIG', message: (err as Error).message };
  }
  parentPort.postMessage(answer);
}

/** loadConfig + compactConfig, in a worker of its own; throws what loadConfig throws. */
export function loadConfigIsolated(path: string): Promise<Config> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { role: 'load-config', path } });
    worker.once('message', (a: Answer) => {
      if ('config' in a) resolve(a.config);
      else if ('problems' in a) reject(new ConfigError(a.problems, a.source));
      else reject(new MirrorgateError(a.code, a.message));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new MirrorgateError('MG_ERR_CONFIG', `config loader exited with ${code}`)));
  });
}
