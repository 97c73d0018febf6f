/**
 * The lab's address plan and names. Everything lives in 198.18.0.0/15 (RFC 2544 benchmarking),
 * and every host is a network namespace named `<prefix>-<host>`:
 *
 *   exporter ns                monitored ns                         gateway ns              collector k ns
 *   198.18.0.11/24 (+.12-.14)  198.18.0.1/24   198.18.10.1/24       198.18.10.2/24
 *        eth0 ──────veth─────── exp0            gw0 ─────veth─────── mon0
 *                               tc ingress mirred → mirror0 (vxlan)  mirrorgate run
 *                                                                    col<k> 198.18.(20+k).1 ── eth0 198.18.(20+k).10
 *
 * The monitored host is "the AWS instance the routers send telemetry to": the kernel copies
 * every frame arriving from the exporters into VXLAN towards the gateway, as AWS mirroring does.
 */

export const HOSTS = ['exporter', 'monitored', 'gateway'] as const;
export type FixedHost = (typeof HOSTS)[number];
/** A lab host: the three fixed ones, or `collector0`, `collector1`, ... */
export type LabHost = FixedHost | `collector${number}`;

/** Short namespace suffixes (interface and namespace names stay well under IFNAMSIZ). */
const SUFFIX: Record<FixedHost, string> = { exporter: 'exp', monitored: 'mon', gateway: 'gw' };

export const MAX_COLLECTORS = 3;

/** Telemetry ports the monitored host listens on, and the gateway's rules match. */
export const TelemetryPort = { NETFLOW: 2055, NETFLOW_ALT: 9995, IPFIX: 4739, SFLOW: 6343 } as const;
export const TELEMETRY_PORTS: readonly number[] = [TelemetryPort.NETFLOW, TelemetryPort.IPFIX, TelemetryPort.SFLOW, TelemetryPort.NETFLOW_ALT];

export const Addr = {
  /** The exporter's primary address, then its secondaries. */
  EXPORTERS: ['198.18.0.11', '198.18.0.12', '198.18.0.13', '198.18.0.14'] as readonly string[],
  EXPORTER_NET: '198.18.0.0/24',
  /** Where the exporters send their telemetry (the mirrored instance). */
  MONITORED: '198.18.0.1',
  /** The monitored host's side of the mirror link: the outer source of every VXLAN copy. */
  MIRROR_SOURCE: '198.18.10.1',
  MIRROR_NET: '198.18.10.0/24',
  /** The mirror target: the gateway. */
  GATEWAY: '198.18.10.2',
  VXLAN_PORT: 4789,
  CONTROL: '127.0.0.1:9090',
} as const;

/** Collector k's address: 198.18.(20+k).10. */
export function collectorAddress(k: number): string {
  return `198.18.${20 + k}.10`;
}

/** The gateway's address on collector k's link: 198.18.(20+k).1. */
export function gatewayLinkAddress(k: number): string {
  return `198.18.${20 + k}.1`;
}

/** Interface names, per namespace. */
export const Iface = {
  /** exporter ns → monitored ns. */
  EXPORTER_UPLINK: 'eth0',
  /** monitored ns → exporter ns: the ENI whose traffic is mirrored. */
  MONITORED_ENI: 'exp0',
  /** monitored ns → gateway ns. */
  MONITORED_TO_GATEWAY: 'gw0',
  /** The VXLAN device the kernel mirrors into. */
  MIRROR: 'mirror0',
  /** gateway ns → monitored ns. */
  GATEWAY_UPLINK: 'mon0',
  /** gateway ns → collector k. */
  gatewayToCollector: (k: number) => `col${k}`,
  /** collector k → gateway ns. */
  COLLECTOR: 'eth0',
} as const;

/** `mglab` + `exporter` → `mglab-exp`; `collector2` → `mglab-col2`. */
export function namespaceName(prefix: string, host: LabHost): string {
  const m = /^collector(\d+)$/.exec(host);
  return `${prefix}-${m ? `col${m[1]}` : SUFFIX[host as FixedHost]}`;
}

/** True when `ns` is one of the namespaces a lab with `prefix` creates. */
export function isLabNamespace(prefix: string, ns: string): boolean {
  if (!ns.startsWith(`${prefix}-`)) return false;
  return /^(exp|mon|gw|col\d+)$/.test(ns.slice(prefix.length + 1));
}

/** Checks a prefix: letters, digits and '-', short enough for namespace names. */
export function checkPrefix(prefix: string): string | null {
  if (!/^[a-z][a-z0-9-]{0,19}$/i.test(prefix)) return `expected a lab prefix of 1-20 letters, digits or '-' starting with a letter, got ${JSON.stringify(prefix)}`;
  return null;
}

/** The rate probe's datagrams: shaped like NetFlow v5, numbered and tagged per run. */
export const Probe = {
  /** A 24-byte header and 30 records of 48 bytes: the largest v5 datagram. */
  PAYLOAD_SIZE: 24 + 30 * 48,
  /** The sequence number sits in the v5 header's flow_sequence. */
  SEQ_OFFSET: 16,
  /** The run tag sits in engine_type, engine_id and sampling_interval. */
  TAG_OFFSET: 20,
} as const;
