/**
 * Packet egress, main thread: keeps every backend's next hop current and, when anything changed,
 * logs it and hands the whole set to the workers. `ip monitor` tells us when the kernel's route,
 * link or neighbour tables change, so a new router MAC is picked up within a fraction of a second
 * without spawning a lookup every second; a slow periodic look covers anything it misses (and
 * takes over at once if `ip monitor` cannot run). Between looks the workers keep the last set; a
 * backend without a next hop goes through the kernel's IP output meanwhile.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../control/log.js';
import { resolveNextHops, type HopResolution } from '../io/next-hop.js';

/** Periodic look while `ip monitor` runs, and without it. */
const SAFETY_MS = 5000;
const POLL_MS = 1000;
/** A burst of table changes (an ARP refresh, a link flap) becomes one look this much later. */
const SETTLE_MS = 100;
/** Long enough for a spawned `ip monitor` to have subscribed. */
const SUBSCRIBED_MS = 500;

function describe(r: HopResolution): string {
  if (!r.hop) return `no next hop (${r.reason}); its packets go through the kernel's IP output`;
  return `frames on ${r.hop.dev} to ${r.hop.dstMac}${r.hop.gateway ? ` (router ${r.hop.gateway})` : ''}`;
}

export class NextHopWatcher {
  private addresses: string[] = [];
  private byAddress = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private settle: NodeJS.Timeout | null = null;
  private monitor: ChildProcess | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  current: HopResolution[] = [];

  constructor(
    private readonly log: Logger,
    private readonly onChange: (hops: HopResolution[]) => void,
  ) {}

  /** Resolves `addresses` now, then whenever the kernel's tables change, until stop(). */
  async start(addresses: string[]): Promise<void> {
    this.watch();
    await this.refresh(addresses);
    this.every(this.monitor ? SAFETY_MS : POLL_MS);
    // ip monitor subscribes some milliseconds after it is spawned: one more look covers a change
    // made in between.
    setTimeout(() => this.soon(), SUBSCRIBED_MS).unref();
  }

  private watch(): void {
    const m = spawn('ip', ['monitor', 'route', 'neigh', 'link'], { stdio: ['ignore', 'pipe', 'ignore'] });
    m.stdout?.on('data', () => this.soon());
    m.on('error', () => {}); // reported by 'exit' (or never started: ENOENT)
    m.on('exit', () => {
      if (this.monitor !== m || this.stopped) return;
      this.monitor = null;
      this.log.warn('ip monitor stopped; next hops are read every second instead');
      this.every(POLL_MS);
    });
    this.monitor = m;
  }

  private every(ms: number): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => void this.refresh(), ms);
    this.timer.unref();
  }

  private soon(): void {
    if (this.settle || this.stopped) return;
    this.settle = setTimeout(() => {
      this.settle = null;
      void this.refresh();
    }, SETTLE_MS);
    this.settle.unref();
  }

  /** Looks again (at new addresses after a reload); overlapping calls share one look. */
  async refresh(addresses?: string[]): Promise<void> {
    if (addresses) this.addresses = [...new Set(addresses)];
    while (this.running) await this.running;
    this.running = this.look().finally(() => (this.running = null));
    return this.running;
  }

  private async look(): Promise<void> {
    const hops = await resolveNextHops(this.addresses);
    // Whole resolutions are compared, not their log text: a device re-created under the same
    // name (new ifindex) or given a new MAC must reach the workers too.
    const seen = new Map(hops.map((r) => [r.address, JSON.stringify(r)]));
    let changed = hops.length !== this.current.length;
    for (const r of hops) {
      if (this.byAddress.get(r.address) === seen.get(r.address)) continue;
      changed = true;
      if (r.hop) this.log.info({ backend: r.address, ...r.hop }, `packet egress to ${r.address}: ${describe(r)}`);
      else this.log.warn({ backend: r.address, reason: r.reason }, `packet egress to ${r.address}: ${describe(r)}`);
    }
    this.byAddress = seen;
    if (!changed) return;
    this.current = hops;
    this.onChange(hops);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.settle) clearTimeout(this.settle);
    this.timer = this.settle = null;
    this.monitor?.kill();
    this.monitor = null;
  }
}
