/**
 * Next hops for packet egress: the device and Ethernet addresses a backend's packets leave with,
 * read from the kernel's own route, link and neighbour tables in one `ip -json -batch` call. The
 * kernel stays the authority (policy routing, ARP/ND); mirrorgate only stops asking it per packet.
 * A backend without a usable next hop (no route, neighbour not resolved, or a device without
 * Ethernet framing such as loopback or a tunnel) gets `hop: null` and a reason: its packets go
 * through the kernel's IP output, which also resolves the neighbour for the next look.
 */
import { execFile } from 'node:child_process';
import { bytesToIpv6, ipv6ToBytes } from '../core/prefix-set.js';

export interface NextHop {
  dev: string;
  ifindex: number;
  /** The device's own address: the frames' source. */
  srcMac: string;
  /** The neighbour's address: the gateway's, or the backend's own when on-link. */
  dstMac: string;
  /** The router the route goes through; null when the backend is on-link. */
  gateway: string | null;
}

export interface HopResolution {
  /** Backend address, as written in the configuration. */
  address: string;
  hop: NextHop | null;
  /** Why there is no next hop (empty when there is one). */
  reason: string;
}

/** Neighbour states whose link-layer address the kernel itself would use. */
const USABLE = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT']);

interface RouteRow {
  dst?: string;
  dev?: string;
  gateway?: string;
  type?: string;
}
interface LinkRow {
  ifindex?: number;
  ifname?: string;
  link_type?: string;
  address?: string;
  operstate?: string;
}
interface NeighRow {
  dst?: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

/** One spelling per address, so the configuration's text and ip's output compare equal. */
function canonical(address: string): string {
  return address.includes(':') ? bytesToIpv6(ipv6ToBytes(address)) : address;
}

/** The batch for `ip -force -json -batch -`: neighbours, links, then one route lookup per address. */
export function nextHopQuery(addresses: readonly string[]): string {
  return ['neigh show', 'link show', ...addresses.map((a) => `route get ${a}`)].join('\n') + '\n';
}

/**
 * Reads the batch's output: one JSON array per line, in command order, except that a failed
 * route lookup (no route) prints nothing; routes are therefore matched by their `dst`.
 */
export function parseNextHops(addresses: readonly string[], stdout: string): HopResolution[] {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  const parsed: unknown[][] = [];
  for (const line of lines) {
    try {
      const v = JSON.parse(line) as unknown;
      if (Array.isArray(v)) parsed.push(v);
    } catch {
      // not JSON: ignored, the addresses it concerned get "no route"
    }
  }
  const neighbours = (parsed[0] ?? []) as NeighRow[];
  const links = (parsed[1] ?? []) as LinkRow[];
  const routes = new Map<string, RouteRow>();
  for (const rows of parsed.slice(2)) {
    const r = rows[0] as RouteRow | undefined;
    if (r?.dst) routes.set(canonical(r.dst), r);
  }
  return addresses.map((address) => ({ address, ...resolveOne(canonical(address), routes, links, neighbours) }));
}

function resolveOne(address: string, routes: Map<string, RouteRow>, links: LinkRow[], neighbours: NeighRow[]): { hop: NextHop | null; reason: string } {
  const route = routes.get(address);
  if (!route?.dev) return { hop: null, reason: 'no route' };
  if (route.type && route.type !== 'unicast') return { hop: null, reason: `${route.type} route via ${route.dev}` };
  const link = links.find((l) => l.ifname === route.dev);
  if (!link || link.ifindex === undefined) return { hop: null, reason: `device ${route.dev} not found` };
  if (link.link_type !== 'ether' || !link.address) return { hop: null, reason: `${route.dev} is not an Ethernet device (${link.link_type ?? 'unknown'})` };
  const via = route.gateway ? canonical(route.gateway) : address;
  const neighbour = neighbours.find((n) => n.dev === route.dev && n.dst !== undefined && canonical(n.dst) === via);
  const state = neighbour?.state ?? [];
  if (!neighbour?.lladdr || !state.some((s) => USABLE.has(s))) {
    return { hop: null, reason: `neighbour ${via} on ${route.dev} not resolved${state.length ? ` (${state.join(',')})` : ''}` };
  }
  return {
    hop: { dev: route.dev, ifindex: link.ifindex, srcMac: link.address, dstMac: neighbour.lladdr, gateway: route.gateway ? via : null },
    reason: '',
  };
}

/** Runs the batch. Never rejects: when `ip` itself fails, every address gets that reason. */
export function resolveNextHops(addresses: readonly string[], timeoutMs = 2000): Promise<HopResolution[]> {
  return new Promise((done) => {
    const child = execFile('ip', ['-force', '-json', '-batch', '-'], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout) => {
      // -force exits 1 when a lookup failed (no route) but still prints the rest.
      const failed = err && !stdout ? `ip: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed (iproute2)' : err.message}` : '';
      done(failed ? addresses.map((address) => ({ address, hop: null, reason: failed })) : parseNextHops(addresses, stdout));
    });
    child.stdin?.on('error', () => {}); // ip gone before reading: reported by the callback
    child.stdin?.end(nextHopQuery(addresses));
  });
}
