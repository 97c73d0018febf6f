/**
 * Packet egress, main thread: re-reads every backend's next hop each second and, when anything
 * changed, logs it and hands the whole set to the workers. Between looks the workers keep the
 * last set; a backend without a next hop goes through the kernel's IP output meanwhile.
 */
import type { Logger } from '../control/log.js';
import { resolveNextHops, type HopResolution } from '../io/next-hop.js';

const REFRESH_MS = 1000;

function describe(r: HopResolution): string {
  if (!r.hop) return `no next hop (${r.reason}); its packets go through the kernel's IP output`;
  return `frames on ${r.hop.dev} to ${r.hop.dstMac}${r.hop.gateway ? ` (router ${r.hop.gateway})` : ''}`;
}

export class NextHopWatcher {
  private addresses: string[] = [];
  private byAddress = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  current: HopResolution[] = [];

  constructor(
    private readonly log: Logger,
    private readonly onChange: (hops: HopResolution[]) => void,
  ) {}

  /** Resolves `addresses` now, then every second until stop(). */
  async start(addresses: string[]): Promise<void> {
    await this.refresh(addresses);
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
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
    let changed = hops.length !== this.current.length;
    const seen = new Map<string, string>();
    for (const r of hops) {
      const text = describe(r);
      seen.set(r.address, text);
      if (this.byAddress.get(r.address) === text) continue;
      changed = true;
      if (r.hop) this.log.info({ backend: r.address, ...r.hop }, `packet egress to ${r.address}: ${text}`);
      else this.log.warn({ backend: r.address, reason: r.reason }, `packet egress to ${r.address}: ${text}`);
    }
    this.byAddress = seen;
    if (!changed) return;
    this.current = hops;
    this.onChange(hops);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
