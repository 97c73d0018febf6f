/**
 * The configuration file: schema, defaults and the checks that need more than one field. Every
 * problem is reported as `field.path: expected X, got Y`, all of them at once, so `mirrorgate
 * check` and a hot reload tell the operator everything wrong in one pass.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { parsePrefix, rangesOf, type Prefix, type PrefixRanges } from '../core/prefix-set.js';
import { ConfigError } from './errors.js';
import { DEFAULT_HEALTH_CHECK, HealthCheckSchema } from '../health/config.js';

/** A field parsed by hand, for messages that say what was expected and what came. */
function field<T>(parse: (v: unknown) => T | { error: string }) {
  return z.unknown().transform((v, ctx) => {
    const r = parse(v);
    if (r !== null && typeof r === 'object' && 'error' in (r as object)) {
      ctx.issues.push({ code: 'custom', message: (r as { error: string }).error, input: v });
      return z.NEVER;
    }
    return r as T;
  });
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(JSON.stringify(v) ?? v));

const int = (v: unknown, lo: number, hi: number, what: string) =>
  Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi
    ? (v as number)
    : { error: `expected ${what} ${lo}-${hi}, got ${show(v)}` };

const Port = field((v) => int(v, 1, 65535, 'a port'));
const Vni = field((v) => int(v, 0, 0xffffff, 'a VNI'));

const Cidr = field<Prefix>((v) => {
  if (typeof v !== 'string') return { error: `expected an IPv4/IPv6 address or CIDR, got ${show(v)}` };
  const p = parsePrefix(v.trim());
  return typeof p === 'string' ? { error: p } : p;
});

const oneOrMany = <T extends z.ZodType>(item: T) =>
  z.union([z.array(item), item]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

/** Port match: 2055, "9995-9999", or a list of those; normalised to inclusive ranges. */
const PortRange = field<[number, number]>((v) => {
  if (typeof v === 'number') {
    const p = int(v, 1, 65535, 'a port');
    return typeof p === 'number' ? [p, p] : p;
  }
  const m = typeof v === 'string' ? /^(\d+)\s*-\s*(\d+)$/.exec(v) : null;
  if (m) {
    const lo = Number(m[1]);
    const hi = Number(m[2]);
    if (lo >= 1 && hi <= 65535 && lo <= hi) return [lo, hi];
  }
  return { error: `expected a port 1-65535 or a range "lo-hi", got ${show(v)}` };
});
const PortMatch = z.union([z.array(PortRange), PortRange]).transform((v) =>
  (Array.isArray(v[0]) ? v : [v]) as [number, number][],
);

const PROTOCOLS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, gre: 47, esp: 50, icmpv6: 58, sctp: 132 };
const Protocol = field<number>((v) => {
  if (typeof v === 'string' && v.toLowerCase() in PROTOCOLS) return PROTOCOLS[v.toLowerCase()];
  if (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255) return v as number;
  return { error: `expected a protocol (${Object.keys(PROTOCOLS).join(', ')} or 0-255), got ${show(v)}` };
});

export interface Endpoint {
  address: string;
  family: 4 | 6;
  /** 0 keeps the packet's own destination port. */
  port: number;
  weight: number;
  /** "address:port" as written, the backend's name in status and metrics. */
  text: string;
}

function parseEndpoint(text: string, requirePort: boolean): Endpoint | { error: string } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  const addr = m?.[1] ?? text;
  const family = isIP(addr);
  if (!m || family === 0) return { error: `expected "ip:port" (IPv6 as "[addr]:port"), got ${show(text)}` };
  if (m[2] === undefined && requirePort) return { error: `expected "ip:port" with a port, got ${show(text)}` };
  const port = m[2] === undefined ? 0 : Number(m[2]);
  if (m[2] !== undefined && !(port >= 1 && port <= 65535)) return { error: `expected a port 1-65535, got ${m[2]}` };
  return { address: addr, family: family as 4 | 6, port, weight: 1, text };
}

const Backend = z.union([
  field<Endpoint>((v) =>
    typeof v === 'string' ? parseEndpoint(v.trim(), false) : { error: `expected "ip:port" or { address, port, weight }, got ${show(v)}` },
  ),
  z
    .strictObject({ address: z.string(), port: Port.optional(), weight: z.number().positive().max(1000).default(1) })
    .transform((b, ctx) => {
      const e = parseEndpoint(b.port ? `${b.address.includes(':') ? `[${b.address}]` : b.address}:${b.port}` : b.address, false);
      if ('error' in e) {
        ctx.issues.push({ code: 'custom', message: e.error, input: b, path: ['address'] });
        return z.NEVER;
      }
      return { ...e, weight: b.weight };
    }),
]);

const HostPort = field<{ host: string; port: number }>((v) => {
  const e = typeof v === 'string' ? parseEndpoint(v.trim(), true) : { error: `expected "host:port", got ${show(v)}` };
  return 'error' in e ? e : { host: e.address, port: e.port };
});

const Rule = z.strictObject({
  name: z.string().min(1),
  match: z
    .strictObject({
      protocol: Protocol.optional(),
      srcCidr: oneOrMany(Cidr).optional(),
      dstCidr: oneOrMany(Cidr).optional(),
      srcPort: PortMatch.optional(),
      dstPort: PortMatch.optional(),
      vni: oneOrMany(Vni).optional(),
    })
    .default({}),
  destination: z.string().min(1),
});

const Destination = z.strictObject({
  backends: z.array(Backend).min(1, 'expected at least one backend'),
  balance: z.enum(['hash', 'round-robin', 'replicate']).default('hash'),
  /** Up to jumbo frames: a fragment must fit one packet buffer of the vector. */
  mtu: field((v) => int(v, 576, 9216, 'an MTU')).default(1500),
  df: z.enum(['clear', 'keep']).default('clear'),
  /** TTL / hop limit: keep it (a transparent relay), decrement it (like a router), or set it. */
  ttl: z.union([z.enum(['keep', 'decrement']), field((v) => int(v, 1, 255, 'a TTL'))]).default('keep'),
  /** DSCP for the collector path (e.g. 46 across a VPN that honours it), or keep the exporter's. */
  dscp: z.union([z.literal('keep'), field((v) => int(v, 0, 63, 'a DSCP'))]).default('keep'),
  /** With every backend down: keep sending to the last-known set ("send", never blackhole) or drop. */
  whenAllDown: z.enum(['send', 'drop']).default('send'),
  /** Forward 1 packet in N (samplicator's sampling); 1 forwards all. */
  sample: z.number().int().min(1).max(1_000_000).default(1),
  health: HealthCheckSchema.default(DEFAULT_HEALTH_CHECK),
});

const AllowlistFile = z.strictObject({ file: z.string().min(1) });

export const ConfigSchema = z.strictObject({
  listen: z
    .strictObject({
      address: field((v) => (typeof v === 'string' && isIP(v) ? v : { error: `expected an IP address, got ${show(v)}` })).default('0.0.0.0'),
      port: Port.default(4789),
      /** GENEVE (GWLB targets) arrives on its own port; 0 turns it off. */
      genevePort: field((v) => (v === 0 ? 0 : int(v, 1, 65535, 'a port'))).default(6081),
      sources: z.array(Cidr).default([]),
      /**
       * Take mirror packets off this interface with XDP, before the kernel's IP and UDP receive
       * path (see src/io/native/xdp.ts); what the program does not select still arrives by the
       * sockets. Off by default: it needs CAP_BPF and CAP_NET_ADMIN and owns the interface's XDP hook.
       */
      xdp: z
        .strictObject({
          interface: z.string().min(1).max(15),
          /** Ring frames per receive queue: how large a burst waits before the kernel drops. */
          frames: z.number().int().refine((v) => v >= 64 && v <= 65536 && (v & (v - 1)) === 0, 'expected a power of two in 64..65536').default(4096),
          /** Bytes per frame: 2048 takes frames up to 1792 bytes, 4096 up to 3840; longer ones take the socket path. */
          frameSize: field((v) => (v === 2048 || v === 4096 ? v : { error: `expected 2048 or 4096, got ${show(v)}` })).default(2048),
        })
        .optional(),
      /**
       * Forward flows already decided inside a BPF program (src/gateway/fast-path.ts): needs
       * egress.mode packet. Their datagrams skip the sequence and template tracking. hook tc: a
       * tc ingress program on `interface` (a tcx link, or a clsact filter before Linux 6.6), with any driver, MTU and ingress mode;
       * hook xdp: inside listen.xdp's program.
       */
      fastPath: z
        .strictObject({
          hook: z.enum(['tc', 'xdp']).default('tc'),
          interface: z.string().min(1).max(15).optional(),
        })
        .optional(),
    })
    .default({ address: '0.0.0.0', port: 4789, genevePort: 6081, sources: [] } as never),
  sessions: z.array(z.strictObject({ vni: Vni, name: z.string().optional() })).optional(),
  allowlist: z.union([z.array(Cidr), AllowlistFile]).optional(),
  rules: z.array(Rule).default([]),
  destinations: z.record(z.string(), Destination).default({}),
  /**
   * raw: IP packets through raw sockets and the kernel's IP output (routing, netfilter, IPsec).
   * packet: Ethernet frames straight to the egress device, next hop read from the kernel's tables.
   * udp: re-sent from our own address.
   */
  egress: z.strictObject({ mode: z.enum(['raw', 'packet', 'udp']).default('raw') }).default({ mode: 'raw' }),
  control: z
    .strictObject({
      listen: HostPort.default({ host: '127.0.0.1', port: 9090 } as never),
      token: z.string().min(16).optional(),
      /** Exporters with their own metric labels; the rest are summed as "other". */
      topExporters: z.number().int().min(1).max(10_000).default(50),
    })
    .default({ listen: { host: '127.0.0.1', port: 9090 }, token: undefined, topExporters: 50 } as never),
  /** Inner-fragment reassembly, per worker and IP version; each datagram held takes a 64 KiB buffer. */
  reassembly: z
    .strictObject({
      maxDatagrams: z.number().int().min(1).max(65536).default(256),
      timeoutMs: z.number().int().min(10).max(60000).default(3000),
    })
    .default({ maxDatagrams: 256, timeoutMs: 3000 }),
  /** Worker threads; `auto` is one per core but one, left to the kernel's packet work. */
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).default('auto'),
});

export type RawConfig = z.output<typeof ConfigSchema>;

/** The validated configuration, with files it names already read. */
export interface Config extends Omit<RawConfig, 'allowlist'> {
  allowlist: Prefix[] | null;
  /**
   * The allowlist already merged into ranges (see compactConfig): what the gateway keeps and
   * sends to its workers instead of `allowlist`, which is then null.
   */
  allowlistRanges?: PrefixRanges;
  /** Where the allowlist came from, for status. */
  allowlistSource: string | null;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

/** One line per problem: `path: message`, looking inside unions for the branch that applies. */
function describe(issue: z.core.$ZodIssue, base: readonly PropertyKey[] = []): string[] {
  const path = [...base, ...issue.path];
  const got = 'input' in issue ? show(issue.input) : undefined;
  const line = (message: string) => [`${formatPath(path)}: ${message}`];
  switch (issue.code) {
    case 'invalid_type':
      return line(issue.input === undefined ? `required (expected ${issue.expected})` : `expected ${issue.expected}, got ${got}`);
    case 'invalid_value':
      return line(`expected one of ${issue.values.map((v) => show(v)).join(' | ')}, got ${got}`);
    case 'unrecognized_keys':
      return line(`unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => show(k)).join(', ')}`);
    case 'too_small':
      return line(
        issue.origin === 'array' || issue.origin === 'string'
          ? issue.message.startsWith('expected')
            ? issue.message
            : `expected at least ${issue.minimum} ${issue.origin === 'array' ? 'items' : 'characters'}`
          : `expected at least ${issue.minimum}, got ${got}`,
      );
    case 'too_big':
      return line(`expected at most ${issue.maximum}, got ${got}`);
    case 'invalid_union': {
      // The branch that fits the value's shape says what is wrong with it; a branch that
      // rejected the value's very type ("expected array") is the one that does not apply.
      const applies = issue.errors.find((errs) => !(errs.length === 1 && errs[0].code === 'invalid_type' && errs[0].path.length === 0));
      if (applies) return applies.flatMap((e) => describe(e, path));
      return line(`expected ${'note' in issue && issue.note ? issue.note : 'a valid value'}, got ${got}`);
    }
    default:
      return line(issue.message);
  }
}

/** Validates a parsed document; returns the config or every problem, one line each. */
export function validateConfig(raw: unknown, baseDir = process.cwd()): { config: Config } | { problems: string[] } {
  const doc = raw ?? {};
  const parsed = ConfigSchema.safeParse(doc, { reportInput: true });
  const problems = parsed.success ? [] : parsed.error.issues.flatMap((i) => describe(i));

  let allowlist: Prefix[] | null = null;
  let allowlistSource: string | null = null;
  const list = (doc as { allowlist?: unknown }).allowlist;
  if (parsed.success && Array.isArray(parsed.data.allowlist)) {
    allowlist = parsed.data.allowlist;
    allowlistSource = `inline (${allowlist.length} entries)`;
  } else if (list && typeof list === 'object' && typeof (list as { file?: unknown }).file === 'string') {
    const path = resolve(baseDir, (list as { file: string }).file);
    const r = readAllowlistFile(path);
    if ('error' in r) problems.push(`allowlist.file: ${r.error}`);
    else {
      allowlist = r.prefixes;
      allowlistSource = `${path} (${allowlist.length} entries)`;
    }
  }
  problems.push(...crossCheck(doc));
  if (!parsed.success || problems.length > 0) return { problems: [...new Set(problems)] };
  return { config: { ...parsed.data, allowlist, allowlistSource } };
}

/** listen.fastPath against the ingress and egress it depends on. */
function fastPathProblems(listen: Record<string, unknown>, egress: unknown): string[] {
  const xdp = listen.xdp && typeof listen.xdp === 'object' ? (listen.xdp as Record<string, unknown>) : null;
  if (xdp && 'fastPath' in xdp) return ['listen.xdp.fastPath: now listen.fastPath: { hook: xdp }'];
  const f = listen.fastPath;
  if (!f || typeof f !== 'object') return [];
  const { hook = 'tc', interface: iface } = f as Record<string, unknown>;
  const problems: string[] = [];
  if (egress !== 'packet') problems.push(`listen.fastPath: needs egress.mode packet (the program writes each frame's next hop), got ${show(egress ?? 'raw')}`);
  if (hook === 'xdp' && !xdp) problems.push('listen.fastPath.hook: xdp runs inside listen.xdp\'s program, and listen.xdp is not set');
  if (hook === 'xdp' && xdp && iface !== undefined && iface !== xdp.interface) {
    problems.push(`listen.fastPath.interface: hook xdp runs on listen.xdp.interface ${show(xdp.interface)}, got ${show(iface)}`);
  }
  if (hook === 'tc' && iface === undefined) problems.push('listen.fastPath.interface: required with hook tc (the device mirror packets arrive on)');
  if (hook === 'tc' && xdp && iface === xdp.interface) {
    problems.push(`listen.fastPath.hook: listen.xdp takes ${show(iface)}'s mirror packets before tc sees them; use hook xdp there`);
  }
  return problems;
}

/**
 * Checks that span fields, on the document as written, so they are reported together with the
 * schema's problems. Values the schema rejects are skipped here (it already said why).
 */
function crossCheck(doc: unknown): string[] {
  const problems: string[] = [];
  const c = (doc && typeof doc === 'object' ? doc : {}) as Record<string, unknown>;
  const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

  const vnis = new Set<number>();
  arr(c.sessions).forEach((sess, i) => {
    const vni = obj(sess).vni;
    if (typeof vni !== 'number') return;
    if (vnis.has(vni)) problems.push(`sessions[${i}].vni: VNI ${vni} is listed twice`);
    vnis.add(vni);
  });

  const egress = obj(c.egress).mode;
  problems.push(...fastPathProblems(obj(c.listen), egress));
  const destFamily = new Map<string, 4 | 6 | 0>();
  for (const [name, raw] of Object.entries(obj(c.destinations))) {
    const d = obj(raw);
    const backends = arr(d.backends).map((b) => {
      if (typeof b === 'string') {
        const e = parseEndpoint(b.trim(), false);
        return 'error' in e ? null : e;
      }
      const { address, port } = obj(b);
      const family = typeof address === 'string' ? isIP(address) : 0;
      if (family === 0) return null;
      const text = `${family === 6 ? `[${address}]` : address}${typeof port === 'number' ? `:${port}` : ''}`;
      return { address: address as string, family: family as 4 | 6, port: typeof port === 'number' ? port : 0, text };
    });
    const first = backends.find((b) => b !== null);
    const family = first ? first.family : 0;
    destFamily.set(name, family);
    const seen = new Set<string>();
    const health = obj(d.health);
    backends.forEach((b, j) => {
      if (!b) return;
      if (b.family !== family) {
        problems.push(`destinations.${name}.backends[${j}]: expected an IPv${family} backend like backends[0], got IPv${b.family} ${show(b.text)}`);
      }
      if (b.port === 0 && health.check !== undefined && health.check !== 'none' && health.port === undefined) {
        problems.push(`destinations.${name}.health.port: backend ${show(b.text)} has no port to probe; expected health.port or "ip:port" backends`);
      }
      const key = `${b.address}:${b.port}`;
      if (seen.has(key)) problems.push(`destinations.${name}.backends[${j}]: backend ${show(b.text)} is listed twice`);
      seen.add(key);
    });
    if (egress === 'udp' && family === 6) {
      problems.push(`destinations.${name}.backends: egress.mode udp sends from an IPv4 socket; expected IPv4 backends, got IPv6`);
    }
  }

  const ruleNames = new Set<string>();
  arr(c.rules).forEach((raw, i) => {
    const r = obj(raw);
    if (typeof r.name === 'string') {
      if (ruleNames.has(r.name)) problems.push(`rules[${i}].name: rule name ${show(r.name)} is used twice`);
      ruleNames.add(r.name);
    }
    if (typeof r.destination !== 'string') return;
    const family = destFamily.get(r.destination);
    if (family === undefined) {
      const known = [...destFamily.keys()];
      problems.push(`rules[${i}].destination: expected one of the destinations (${known.length ? known.join(', ') : 'none defined'}), got ${show(r.destination)}`);
      return;
    }
    for (const key of ['srcCidr', 'dstCidr'] as const) {
      const v = obj(r.match)[key];
      (Array.isArray(v) ? v : v === undefined ? [] : [v]).forEach((text, k) => {
        const p = typeof text === 'string' ? parsePrefix(text.trim()) : null;
        if (p && typeof p !== 'string' && family !== 0 && p.family !== family) {
          const at = Array.isArray(v) ? `${key}[${k}]` : key;
          problems.push(`rules[${i}].match.${at}: IPv${p.family} prefix, but destination ${show(r.destination)} has IPv${family} backends (no address-family translation)`);
        }
      });
    }
  });

  const control = obj(c.control);
  if (typeof control.listen === 'string') {
    const e = parseEndpoint(control.listen.trim(), true);
    const host = 'error' in e ? '' : e.address;
    const loopback = host === '' || host === '::1' || host.startsWith('127.');
    if (!loopback && !control.token) {
      problems.push(`control.listen: expected a loopback address unless control.token is set, got ${show(host)}`);
    }
  }
  return problems;
}

/**
 * Reads an exporter allowlist: JSON (any structure; every string that is an address or CIDR
 * counts, so `{"orgs":[{"name":..,"ips":[..]}]}` works as-is) or text (one per line, # comments).
 */
export function readAllowlistFile(path: string): { prefixes: Prefix[] } | { error: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { error: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  const prefixes: Prefix[] = [];
  const bad: string[] = [];
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      return { error: `${path}: not valid JSON (${(err as Error).message})` };
    }
    const walk = (v: unknown): void => {
      if (typeof v === 'string') {
        const p = parsePrefix(v.trim());
        if (typeof p !== 'string') prefixes.push(p);
      } else if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(doc);
  } else {
    text.split('\n').forEach((line, n) => {
      const entry = line.replace(/#.*/, '').trim();
      if (!entry) return;
      const p = parsePrefix(entry);
      if (typeof p === 'string') bad.push(`line ${n + 1}: ${p}`);
      else prefixes.push(p);
    });
  }
  if (bad.length) return { error: `${path}: ${bad.slice(0, 5).join('; ')}${bad.length > 5 ? ` (+${bad.length - 5} more)` : ''}` };
  if (prefixes.length === 0) return { error: `${path}: no addresses or CIDRs found` };
  return { prefixes };
}

/** Parses YAML or JSON text (JSON is YAML 1.2) into a document, reporting syntax errors by line. */
export function parseConfigText(text: string, source: string): unknown {
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => `${source}:${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}`),
      source,
    );
  }
  return doc.toJS();
}

/**
 * The same configuration with a long allowlist merged into typed-array ranges: a 100k-entry list
 * is then under a megabyte to keep and to copy to each worker, instead of 100k objects.
 */
export function compactConfig(config: Config): Config {
  if (!config.allowlist) return config;
  return { ...config, allowlist: null, allowlistRanges: rangesOf(config.allowlist) };
}

/** Reads and validates a config file; throws ConfigError with every problem. */
export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  const r = validateConfig(parseConfigText(text, path), dirname(resolve(path)));
  if ('problems' in r) throw new ConfigError(r.problems, path);
  return r.config;
}
