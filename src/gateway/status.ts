/** The gateway's status document: what `mirrorgate status` prints and /api/status returns. */
import type { Gateway } from './gateway.js';

export function statusOf(gw: Gateway) {
  const a = gw.accounting();
  return {
    pid: process.pid,
    startedAt: gw.startedAt.toISOString(),
    uptimeSeconds: Math.round((Date.now() - gw.startedAt.getTime()) / 1000),
    config: gw.configPath,
    generation: gw.generation,
    reloads: gw.reloads,
    lastReloadProblems: gw.lastReloadProblems,
    workers: gw.workerCount,
    ready: gw.ready,
    listen: `${gw.config.listen.address}:${gw.config.listen.port}`,
    egress: gw.config.egress.mode,
    destinations: Object.entries(gw.config.destinations).map(([name, d]) => ({
      name,
      balance: d.balance,
      mtu: d.mtu,
      backends: d.backends.map((b) => b.text),
    })),
    accounting: a,
  };
}
