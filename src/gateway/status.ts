/** The gateway's status document: what `mirrorgate status` prints and /api/status returns. */
import type { Gateway } from './gateway.js';

export function statusOf(gw: Gateway) {
  const a = gw.accounting();
  const health = gw.backendHealth();
  const backendPackets = gw.backendPackets();
  const hops = gw.nextHopResolutions();
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
    ...(gw.fastPath() ? { fastPath: gw.fastPath() } : {}),
    destinations: Object.entries(gw.config.destinations).map(([name, d]) => ({
      name,
      balance: d.balance,
      mtu: d.mtu,
      check: d.health.check,
      backends: d.backends.map((b) => {
        const h = health.find((x) => x.destination === name && x.backend === b.text);
        const packets = backendPackets.find((x) => x.destination === name && x.backend === b.text)?.packets ?? 0;
        const hop = hops?.find((x) => x.address === b.address);
        return {
          backend: b.text,
          up: h?.up ?? true,
          since: new Date(h?.since ?? 0).toISOString(),
          detail: h?.detail ?? '',
          packets,
          ...(hop ? { nextHop: hop.hop ?? { none: hop.reason } } : {}),
        };
      }),
    })),
    sessions: gw.sessions(),
    exporters: gw.exporters(10),
    accounting: a,
  };
}
