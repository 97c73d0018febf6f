/**
 * The forwarding tables: what the data path reads, compiled from a validated Config. A reload
 * compiles a whole new Tables and swaps the reference between batches, so a batch never sees half
 * of one configuration and half of another.
 */
import { rendezvousTable, stringId } from '../core/hash.js';
import { ipv4ToNumber, ipv6ToBytes, PrefixSet, SIGN_FLIP, type Prefix } from '../core/prefix-set.js';
import type { Config, Endpoint } from './config.js';

export const Tunnel = { NONE: 0, VXLAN: 1, GENEVE: 2 } as const;
export const Balance = { HASH: 0, ROUND_ROBIN: 1, REPLICATE: 2 } as const;
export const TTL_KEEP = -1;
export const TTL_DECREMENT = -2;

export interface Backend extends Endpoint {
  /** IPv4 address as int32 (readI32's form). */
  addr4: number;
  addr6: Uint8Array;
  /** Stable id: hash of the text form, so HRW ownership survives reordering. */
  id: number;
  /** Slot of this backend's transmit counter in the worker's backend counters. */
  counterSlot: number;
}

export interface Destination {
  index: number;
  name: string;
  family: 4 | 6;
  balance: number;
  mtu: number;
  clearDf: boolean;
  /** TTL policy: TTL_KEEP, TTL_DECREMENT, or the value to set. */
  ttl: number;
  /** DSCP to set, or -1 to keep. */
  dscp: number;
  backends: Backend[];
  /** Health: 1 when the backend's checks pass. */
  up: Uint8Array;
  /** 1 when the backend takes traffic: the up set, or with none up the last-known set. */
  eligible: Uint8Array;
  /** With every backend down: keep sending to all of them (true) rather than drop. */
  sendWhenAllDown: boolean;
  /** HRW bucket → backend index, over the backends that are up. */
  hashTable: Int16Array;
  /**
   * Per backend, a token unique to this worker that changes whenever the backend (re)joins: a
   * stream whose templates were delivered under another token must get them again.
   */
  tokens: Int32Array;
  /** Round-robin position (per worker: each worker compiles its own tables). */
  rr: number;
  /** Keep 1 packet in `sample` (samplicator's 1-in-N); 1 keeps all. */
  sample: number;
  sampleCounter: number;
  /**
   * Every packet to it gets the same treatment, which the XDP fast path can repeat: IPv4, one
   * backend, no sampling or DSCP, TTL kept or decremented.
   */
  fastEligible: boolean;
}

export interface Rule {
  name: string;
  destination: number;
  /** -1 matches any protocol. */
  protocol: number;
  src: PrefixSet | null;
  dst: PrefixSet | null;
  /** Inclusive [lo, hi] pairs, flattened; null matches any port. */
  srcPorts: Uint16Array | null;
  dstPorts: Uint16Array | null;
  vnis: Set<number> | null;
}

export interface Tables {
  generation: number;
  /** UDP destination port → Tunnel.*. */
  tunnelPorts: Uint8Array;
  /** Allowed outer (mirror) sources; null allows any. */
  sources: PrefixSet | null;
  /** Accepted VNIs; null accepts any. */
  sessions: Set<number> | null;
  /** Allowed exporters (inner source); null allows any. */
  allowlist: PrefixSet | null;
  rules: Rule[];
  /** Candidate rules per inner destination port, in rule order; other ports use `rulesAnyPort`. */
  rulesByDstPort: Map<number, Candidates>;
  rulesAnyPort: Candidates;
  destinations: Destination[];
  egressMode: 'raw' | 'packet' | 'udp';
  reassembly: { maxDatagrams: number; timeoutMs: number };
  /** listen.fastPath: workers propose the flows they forward to eligible destinations. */
  fastPath: boolean;
}

/** A rule whose port list spans more than this many ports is tried for every port. */
const MAX_INDEXED_PORTS = 4096;

function ranges(list: [number, number][] | undefined): Uint16Array | null {
  return list ? Uint16Array.from(list.flat()) : null;
}

function prefixSet(list: Prefix[] | undefined): PrefixSet | null {
  return list ? new PrefixSet(list) : null;
}

export function compileBackend(e: Endpoint, counterSlot = -1): Backend {
  return {
    ...e,
    addr4: e.family === 4 ? ipv4ToNumber(e.address) | 0 : 0,
    addr6: e.family === 6 ? ipv6ToBytes(e.address) : new Uint8Array(16),
    id: stringId(e.text),
    counterSlot,
  };
}

/** Tokens are unique within a worker thread (module state is per thread). */
let lastToken = 0;

/**
 * Recomputes which backends take traffic after a health change: the ones up; with none up, the
 * last-known set (whenAllDown: send — the backends that were up until the last one failed, so
 * exporters stay where they were) or none (drop). Returns false if none is up.
 */
export function applyHealth(d: Destination): boolean {
  let anyUp = false;
  for (let b = 0; b < d.up.length; b++) if (d.up[b]) anyUp = true;
  if (anyUp) d.eligible.set(d.up);
  else if (!d.sendWhenAllDown) d.eligible.fill(0);
  else if (!d.eligible.includes(1)) d.eligible.fill(1); // nothing known yet: all of them
  d.hashTable = rendezvousTable(
    d.backends.map((b) => b.id),
    d.backends.map((b) => b.weight),
    Array.from(d.eligible, (e) => e === 1),
  );
  return anyUp;
}

/** Marks backend `b` up or down; a backend coming up gets a new token (its templates are stale). */
export function setBackendUp(d: Destination, b: number, up: boolean): void {
  if (up && d.up[b] === 0) d.tokens[b] = ++lastToken;
  d.up[b] = up ? 1 : 0;
  applyHealth(d);
}

/** Counter slot of each backend, by "destination/backend"; assigned by the main thread. */
export type BackendSlots = ReadonlyMap<string, number>;

export function compileTables(config: Config, generation = 1, slots: BackendSlots = new Map()): Tables {
  const tunnelPorts = new Uint8Array(65536);
  tunnelPorts[config.listen.port] = Tunnel.VXLAN;
  if (config.listen.genevePort) tunnelPorts[config.listen.genevePort] = Tunnel.GENEVE;

  const destNames = Object.keys(config.destinations);
  const destinations: Destination[] = destNames.map((name, index) => {
    const d = config.destinations[name];
    const backends = d.backends.map((b) => compileBackend(b, slots.get(`${name}/${b.text}`) ?? -1));
    const dest: Destination = {
      index,
      name,
      family: backends[0].family,
      balance: d.balance === 'hash' ? Balance.HASH : d.balance === 'round-robin' ? Balance.ROUND_ROBIN : Balance.REPLICATE,
      mtu: d.mtu,
      clearDf: d.df === 'clear',
      ttl: d.ttl === 'keep' ? TTL_KEEP : d.ttl === 'decrement' ? TTL_DECREMENT : d.ttl,
      dscp: d.dscp === 'keep' ? -1 : d.dscp,
      backends,
      up: new Uint8Array(backends.length).fill(1),
      eligible: new Uint8Array(backends.length).fill(1),
      sendWhenAllDown: d.whenAllDown === 'send',
      hashTable: new Int16Array(0),
      tokens: Int32Array.from(backends, () => ++lastToken),
      rr: 0,
      sample: d.sample,
      sampleCounter: 0,
      fastEligible: backends.length === 1 && backends[0].family === 4 && d.sample === 1 && d.dscp === 'keep' && (d.ttl === 'keep' || d.ttl === 'decrement'),
    };
    applyHealth(dest);
    return dest;
  });

  const rules: Rule[] = config.rules.map((r) => ({
    name: r.name,
    destination: destNames.indexOf(r.destination),
    protocol: r.match.protocol ?? -1,
    src: prefixSet(r.match.srcCidr),
    dst: prefixSet(r.match.dstCidr),
    srcPorts: ranges(r.match.srcPort),
    dstPorts: ranges(r.match.dstPort),
    vnis: r.match.vni ? new Set(r.match.vni) : null,
  }));

  const anyPort: number[] = [];
  const byPort = new Map<number, number[]>();
  rules.forEach((r, k) => {
    const span = r.dstPorts ? spanOf(r.dstPorts) : Infinity;
    if (!r.dstPorts || span > MAX_INDEXED_PORTS) {
      anyPort.push(k);
      return;
    }
    for (let j = 0; j < r.dstPorts.length; j += 2) {
      for (let p = r.dstPorts[j]; p <= r.dstPorts[j + 1]; p++) {
        const list = byPort.get(p) ?? [];
        if (list[list.length - 1] !== k) list.push(k);
        byPort.set(p, list);
      }
    }
  });
  // Ports whose candidate lists are equal share one Candidates (and one source index).
  const shared = new Map<string, Candidates>();
  const candidatesOf = (list: number[]): Candidates => {
    const key = list.join(',');
    let c = shared.get(key);
    if (!c) {
      c = candidates(Int32Array.from(list), rules);
      shared.set(key, c);
    }
    return c;
  };
  const rulesByDstPort = new Map<number, Candidates>();
  for (const [port, list] of byPort) rulesByDstPort.set(port, candidatesOf([...list, ...anyPort].sort((a, b) => a - b)));

  return {
    generation,
    tunnelPorts,
    sources: config.listen.sources.length ? new PrefixSet(config.listen.sources) : null,
    sessions: config.sessions ? new Set(config.sessions.map((s) => s.vni)) : null,
    allowlist: config.allowlistRanges ? new PrefixSet(config.allowlistRanges) : config.allowlist ? new PrefixSet(config.allowlist) : null,
    rules,
    rulesByDstPort,
    rulesAnyPort: candidatesOf(anyPort),
    destinations,
    egressMode: config.egress.mode,
    reassembly: config.reassembly,
    fastPath: config.listen.fastPath !== undefined && config.egress.mode === 'packet',
  };
}

function spanOf(pairs: Uint16Array): number {
  let n = 0;
  for (let j = 0; j < pairs.length; j += 2) n += pairs[j + 1] - pairs[j] + 1;
  return n;
}

/**
 * The rules a packet can match, in rule order, and for long lists an index by IPv4 source: the
 * source ranges of all candidate rules cut the address space into intervals, each holding the
 * rules that can match an address in it (rules with no IPv4 srcCidr are in every interval). A
 * thousand customer rules that differ by source prefix then cost a binary search, not a scan.
 */
export interface Candidates {
  rules: Int32Array;
  /** Interval starts (sign-flipped int32, ascending); `bySource[k]` holds interval k's rules. */
  sourceBounds: Int32Array | null;
  bySource: Int32Array[];
}

/** Below this many candidates a scan is as fast as the index. */
const SOURCE_INDEX_MIN = 8;

function candidates(list: Int32Array, rules: readonly Rule[]): Candidates {
  const plain: Candidates = { rules: list, sourceBounds: null, bySource: [] };
  if (list.length < SOURCE_INDEX_MIN) return plain;
  const points = new Set<number>([SIGN_FLIP]); // the lowest address
  for (const k of list) {
    const d = rules[k].src?.data;
    if (!d) continue;
    for (let j = 0; j < d.starts4.length; j++) {
      points.add(d.starts4[j]);
      if (d.ends4[j] !== 0x7fffffff) points.add(d.ends4[j] + 1);
    }
  }
  const bounds = Int32Array.from(points).sort();
  const lists: number[][] = Array.from(bounds, () => []);
  for (const k of list) {
    const d = rules[k].src?.data;
    if (!d) {
      for (const l of lists) l.push(k); // no source condition: a candidate everywhere
      continue;
    }
    // (IPv6-only source prefixes never match an IPv4 packet; IPv6 packets scan `rules`.)
    for (let j = 0; j < d.starts4.length; j++) {
      for (let b = intervalOf(bounds, d.starts4[j]); b < bounds.length && bounds[b] <= d.ends4[j]; b++) lists[b].push(k);
    }
  }
  return { rules: list, sourceBounds: bounds, bySource: lists.map((l) => Int32Array.from(l)) };
}

/** Index of the interval holding the sign-flipped address `x`. */
export function intervalOf(bounds: Int32Array, x: number): number {
  let lo = 0;
  let hi = bounds.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (bounds[mid] <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * A reload keeps what the workers know of backend health (and the template tokens that go with
 * it) for every backend that is still there, so an unchanged destination keeps its hash.
 */
export function carryRuntimeState(old: Tables, next: Tables): Tables {
  for (const d of next.destinations) {
    const before = old.destinations.find((x) => x.name === d.name);
    if (!before) continue;
    d.backends.forEach((b, j) => {
      const k = before.backends.findIndex((x) => x.text === b.text);
      if (k < 0) return;
      d.up[j] = before.up[k];
      d.eligible[j] = before.eligible[k];
      d.tokens[j] = before.tokens[k];
    });
    d.rr = before.rr % d.backends.length;
    applyHealth(d);
  }
  return next;
}
