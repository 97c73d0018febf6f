/**
 * A deterministic traffic scenario: flow exporters (routers) sending NetFlow v5, NetFlow v9, IPFIX
 * and sFlow v5 to a collector, as a VPC Traffic Mirroring session delivers those datagrams to its
 * target: each one wrapped by buildMirrorFrame, in time order.
 *
 * Every exporter keeps correct per-protocol sequence numbers (v5: flows before the datagram, v9:
 * packets per Source ID, IPFIX: data records per Observation Domain, sFlow: datagrams per agent
 * and per-data-source sample sequences), sends v9 / IPFIX templates before any data that uses
 * them and again periodically, and uses its own domain IDs. Sequence numbers start at
 * seed-chosen 32-bit values (or at `sequenceStart`) and wrap modulo 2^32.
 *
 * Addresses come from documentation ranges only: exporters and ENIs from 198.18.0.0/15 (RFC 2544),
 * flow endpoints from TEST-NET-1/2/3 (RFC 5737) and 2001:db8::/32 (RFC 3849), AS numbers from
 * 64496-64511 (RFC 5398), the enterprise-specific IPFIX element under PEN 32473 (RFC 5612).
 */
import * as ipfix from '../flow/ipfix.js';
import * as netflow5 from '../flow/netflow5.js';
import * as netflow9 from '../flow/netflow9.js';
import * as sflow5 from '../flow/sflow5.js';
import type { FlowProtocol } from '../flow/index.js';
import type { FieldValue, Template } from '../flow/template.js';
import { VARIABLE_LENGTH } from '../flow/template.js';
import * as ethernet from '../proto/ethernet/packet.js';
import * as ipv4 from '../proto/ipv4/packet.js';
import { writeU16, writeU32 } from '../proto/bytes.js';
import { type MirrorFrameSpec, buildMirrorFrame, formatIPv4, mirrorFrameLength, parseIPv4, parseIPv6 } from './mirror.js';

export interface ScenarioOptions {
  /** VXLAN VNI of the mirror session. */
  vni: number;
  /** Exporter (router) IPv4 addresses: the inner source of every datagram (at most 250). */
  exporters: readonly string[];
  /** Collector IPv4 address: the inner destination. */
  collector: string;
  /** Span of the scenario (default 10 000 ms). */
  durationMs?: number;
  /** Timestamp of the scenario's start in ns since the epoch (default 2023-11-14T22:13:20Z). */
  startNs?: number;
  seed?: number;
  /** Datagrams each exporter sends per protocol (default 25). */
  datagramsPerExporter?: number;
  /** Protocols the exporters speak (default all four). */
  protocols?: readonly FlowProtocol[];
  /** Outer destination: the mirror target (default 198.18.255.1). */
  mirrorTarget?: string;
  /**
   * Where every sequence counter starts (datagram, flow, record and sample sequences alike), e.g.
   * 0xfffffff0 to exercise wrap-around; by default each starts at its own seed-chosen value.
   */
  sequenceStart?: number;
}

/** What one frame carries, for tests and tools that check a consumer against the generator. */
export interface ScenarioFrameInfo {
  protocol: FlowProtocol;
  exporter: string;
  /** Inner UDP ports. */
  srcPort: number;
  dstPort: number;
  /** The header's sequence number and domain (as FlowHeaderInfo defines them). */
  sequence: number;
  domain: number;
  /**
   * What the sequence advances by after this datagram: v5 flows, IPFIX data records, 1 for v9
   * and sFlow.
   */
  sequenceStep: number;
  /** Records in the datagram: v5 flows, v9 records of all kinds, IPFIX data records, sFlow samples. */
  records: number;
  /** v9 / IPFIX: the datagram carries (options) templates. */
  templates: boolean;
}

export interface ScenarioFrame {
  timestampNs: number;
  frame: Buffer;
  info: ScenarioFrameInfo;
}

/** The defaults generateScenario and writeScenario use; sequence counters start seed-chosen. */
export const DEFAULT_SCENARIO: Readonly<Required<Omit<ScenarioOptions, 'sequenceStart'>>> = Object.freeze({
  vni: 123,
  exporters: Object.freeze(['198.18.0.11', '198.18.0.12', '198.18.0.13', '198.18.0.14']),
  collector: '203.0.113.10',
  durationMs: 10_000,
  startNs: 1_700_000_000_000_000_000,
  seed: 1,
  datagramsPerExporter: 25,
  protocols: Object.freeze(['netflow5', 'netflow9', 'ipfix', 'sflow5'] as FlowProtocol[]),
  mirrorTarget: '198.18.255.1',
});

/** Collector ports per protocol; NetFlow v9 alternates 2055 / 9995 across exporters. */
export const PORTS = { netflow5: 2055, netflow9: [2055, 9995], ipfix: 4739, sflow5: 6343 } as const;

// ---- deterministic randomness ---------------------------------------------------------------

/** mulberry32: small, fast, good enough for test data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  u32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
}

// ---- AWS-style outer source port --------------------------------------------------------------

/**
 * Outer UDP source port from the inner 5-tuple, as AWS (and RFC 7348 §5, "a hash of the inner
 * packet's headers", in 49152-65535) does: 32-bit FNV-1a of src, dst, protocol and ports.
 */
export function outerSourcePort(src: number, dst: number, protocol: number, srcPort: number, dstPort: number): number {
  let h = 0x811c9dc5;
  const mix = (byte: number) => {
    h = Math.imul(h ^ (byte & 0xff), 0x01000193);
  };
  for (const v of [src, dst]) for (let s = 24; s >= 0; s -= 8) mix(v >>> s);
  mix(protocol);
  mix(srcPort >>> 8);
  mix(srcPort);
  mix(dstPort >>> 8);
  mix(dstPort);
  return 49152 + ((h >>> 0) % 16384);
}

// ---- templates --------------------------------------------------------------------------------

export const V9_TEMPLATE_V4: Template = {
  templateId: 256,
  fields: [
    { type: 1, length: 4 }, // IN_BYTES
    { type: 2, length: 4 }, // IN_PKTS
    { type: 4, length: 1 }, // PROTOCOL
    { type: 5, length: 1 }, // SRC_TOS
    { type: 6, length: 1 }, // TCP_FLAGS
    { type: 7, length: 2 }, // L4_SRC_PORT
    { type: 8, length: 4 }, // IPV4_SRC_ADDR
    { type: 9, length: 1 }, // SRC_MASK
    { type: 10, length: 2 }, // INPUT_SNMP
    { type: 11, length: 2 }, // L4_DST_PORT
    { type: 12, length: 4 }, // IPV4_DST_ADDR
    { type: 13, length: 1 }, // DST_MASK
    { type: 14, length: 2 }, // OUTPUT_SNMP
    { type: 15, length: 4 }, // IPV4_NEXT_HOP
    { type: 16, length: 2 }, // SRC_AS
    { type: 17, length: 2 }, // DST_AS
    { type: 21, length: 4 }, // LAST_SWITCHED
    { type: 22, length: 4 }, // FIRST_SWITCHED
  ],
};

export const V9_TEMPLATE_V6: Template = {
  templateId: 257,
  fields: [
    { type: 1, length: 4 }, // IN_BYTES
    { type: 2, length: 4 }, // IN_PKTS
    { type: 4, length: 1 }, // PROTOCOL
    { type: 6, length: 1 }, // TCP_FLAGS
    { type: 7, length: 2 }, // L4_SRC_PORT
    { type: 11, length: 2 }, // L4_DST_PORT
    { type: 27, length: 16 }, // IPV6_SRC_ADDR
    { type: 28, length: 16 }, // IPV6_DST_ADDR
    { type: 29, length: 1 }, // IPV6_SRC_MASK
    { type: 30, length: 1 }, // IPV6_DST_MASK
    { type: 10, length: 2 }, // INPUT_SNMP
    { type: 14, length: 2 }, // OUTPUT_SNMP
    { type: 62, length: 16 }, // IPV6_NEXT_HOP
    { type: 21, length: 4 }, // LAST_SWITCHED
    { type: 22, length: 4 }, // FIRST_SWITCHED
  ],
};

/** Sampling parameters of the whole device (scope System). */
export const V9_OPTIONS_TEMPLATE: Template = {
  templateId: 258,
  scopeFields: [{ type: netflow9.Scope.SYSTEM, length: 4 }],
  fields: [
    { type: 34, length: 4 }, // SAMPLING_INTERVAL
    { type: 35, length: 1 }, // SAMPLING_ALGORITHM
  ],
};

/** RFC 5612 documentation Private Enterprise Number. */
export const EXAMPLE_PEN = 32473;

export const IPFIX_TEMPLATE_V4: Template = {
  templateId: 256,
  fields: [
    { type: 1, length: 8 }, // octetDeltaCount
    { type: 2, length: 8 }, // packetDeltaCount
    { type: 152, length: 8 }, // flowStartMilliseconds
    { type: 153, length: 8 }, // flowEndMilliseconds
    { type: 8, length: 4 }, // sourceIPv4Address
    { type: 12, length: 4 }, // destinationIPv4Address
    { type: 15, length: 4 }, // ipNextHopIPv4Address
    { type: 10, length: 4 }, // ingressInterface
    { type: 14, length: 4 }, // egressInterface
    { type: 7, length: 2 }, // sourceTransportPort
    { type: 11, length: 2 }, // destinationTransportPort
    { type: 4, length: 1 }, // protocolIdentifier
    { type: 6, length: 2 }, // tcpControlBits
    { type: 5, length: 1 }, // ipClassOfService
    { type: 16, length: 4 }, // bgpSourceAsNumber
    { type: 17, length: 4 }, // bgpDestinationAsNumber
    { type: 96, length: VARIABLE_LENGTH }, // applicationName
    { type: 1, length: 4, enterprise: EXAMPLE_PEN }, // an enterprise-specific element
  ],
};

export const IPFIX_TEMPLATE_V6: Template = {
  templateId: 257,
  fields: [
    { type: 1, length: 8 }, // octetDeltaCount
    { type: 2, length: 8 }, // packetDeltaCount
    { type: 152, length: 8 }, // flowStartMilliseconds
    { type: 153, length: 8 }, // flowEndMilliseconds
    { type: 27, length: 16 }, // sourceIPv6Address
    { type: 28, length: 16 }, // destinationIPv6Address
    { type: 62, length: 16 }, // ipNextHopIPv6Address
    { type: 10, length: 4 }, // ingressInterface
    { type: 14, length: 4 }, // egressInterface
    { type: 7, length: 2 }, // sourceTransportPort
    { type: 11, length: 2 }, // destinationTransportPort
    { type: 4, length: 1 }, // protocolIdentifier
    { type: 6, length: 2 }, // tcpControlBits
  ],
};

/** Exporting-process statistics (RFC 7011 §4.3), scoped to the exporting process. */
export const IPFIX_OPTIONS_TEMPLATE: Template = {
  templateId: 258,
  scopeFields: [{ type: 144, length: 4 }], // exportingProcessId
  fields: [
    { type: 41, length: 8 }, // exportedMessageTotalCount
    { type: 42, length: 8 }, // exportedFlowRecordTotalCount
  ],
};

/** v9 / IPFIX exporters resend their templates every this many datagrams. */
export const TEMPLATE_REFRESH = 10;

// ---- exporters ----------------------------------------------------------------------------------

const TEST_NETS = [parseIPv4('192.0.2.0'), parseIPv4('198.51.100.0'), parseIPv4('203.0.113.0')];
const DST_PORTS = [443, 80, 53, 123, 22, 3306, 8443, 25];
const APPLICATIONS = ['https', 'http', 'dns', 'ntp', 'ssh', 'mysql'].map((s) => new TextEncoder().encode(s));
const IF_INDEXES = [1, 2, 3, 4];
const SAMPLING_RATE = 1000;
const ROUTER_MAC = 0x02_42_c6_12_ff_fe;
/** Next hop of the IPv6 flows. */
const docAddress6Fixed = parseIPv6('2001:db8::1');

interface Flow {
  v6: boolean;
  src: number;
  dst: number;
  src6: Uint8Array;
  dst6: Uint8Array;
  nextHop: number;
  protocol: number;
  srcPort: number;
  dstPort: number;
  tcpFlags: number;
  tos: number;
  packets: number;
  octets: number;
  /** ms before "now" the flow started and ended. */
  startAgo: number;
  endAgo: number;
  input: number;
  output: number;
  srcAs: number;
  dstAs: number;
}

interface Exporter {
  index: number;
  addr: string;
  addrNum: number;
  eni: string;
  eniNum: number;
  mac: number;
  df: boolean;
  ipId: number;
  outerIpId: number;
  /** sysUptime (ms) at the scenario start. */
  bootUptime: number;
  srcPorts: Record<FlowProtocol, number>;
  v9DstPort: number;
  v5Sequence: number;
  v9Sequence: number;
  ipfixSequence: number;
  ipfixMessages: number;
  ipfixFlows: number;
  sflowSequence: number;
  sflowFlowSequence: number[];
  sflowCounterSequence: number[];
  samplePool: number[];
  inOctets: number[];
  outOctets: number[];
  inPackets: number[];
  outPackets: number[];
  sent: Record<FlowProtocol, number>;
}

interface Event {
  tUs: number;
  exporter: number;
  protocol: FlowProtocol;
  order: number;
}

const ALL_PROTOCOLS: readonly FlowProtocol[] = ['netflow5', 'netflow9', 'ipfix', 'sflow5'];

function testNetAddress(rng: Rng): number {
  return (rng.pick(TEST_NETS) + rng.int(1, 254)) >>> 0;
}

function docAddress6(rng: Rng): Uint8Array {
  const a = parseIPv6('2001:db8::');
  a[4] = rng.int(0, 255);
  a[5] = rng.int(0, 255);
  a[14] = rng.int(0, 255);
  a[15] = rng.int(1, 255);
  return a;
}

function randomFlow(rng: Rng, v6: boolean): Flow {
  const r = rng.next();
  const protocol = r < 0.7 ? 6 : r < 0.95 ? 17 : v6 ? 58 : 1; // TCP, UDP, ICMP / ICMPv6
  const packets = rng.int(1, 2000);
  const startAgo = rng.int(1000, 60_000);
  const input = rng.pick(IF_INDEXES);
  return {
    v6,
    src: testNetAddress(rng),
    dst: testNetAddress(rng),
    src6: docAddress6(rng),
    dst6: docAddress6(rng),
    nextHop: (parseIPv4('198.51.100.1') + rng.int(0, 3)) >>> 0,
    protocol,
    // ICMP flows carry type << 8 | code in the destination port: echo request
    srcPort: protocol === 1 || protocol === 58 ? 0 : rng.int(1024, 65535),
    dstPort: protocol === 1 ? 0x0800 : protocol === 58 ? 0x8000 : rng.pick(DST_PORTS),
    tcpFlags: protocol === 6 ? rng.pick([0x02, 0x12, 0x10, 0x18, 0x19, 0x1b, 0x11]) : 0,
    tos: rng.pick([0, 0, 0, 0x28, 0xb8]),
    packets,
    octets: packets * rng.int(40, 1500),
    startAgo,
    endAgo: rng.int(0, startAgo - 1),
    input,
    output: IF_INDEXES[(IF_INDEXES.indexOf(input) + rng.int(1, IF_INDEXES.length - 1)) % IF_INDEXES.length],
    srcAs: rng.int(64496, 64511),
    dstAs: rng.int(64496, 64511),
  };
}

function u32(v: number): number {
  return v >>> 0;
}

// ---- payload builders ---------------------------------------------------------------------------

interface Clock {
  /** Wall clock of the datagram. */
  ns: number;
  unixSecs: number;
  unixNsecs: number;
  /** Exporter uptime in ms. */
  uptime: number;
}

function buildNetflow5(rng: Rng, ex: Exporter, clock: Clock, buf: Buffer): [number, ScenarioFrameInfoPart] {
  const count = rng.int(1, netflow5.MAX_RECORDS);
  const records: netflow5.Netflow5Record[] = [];
  for (let i = 0; i < count; i++) {
    const f = randomFlow(rng, false);
    records.push({
      srcAddr: f.src,
      dstAddr: f.dst,
      nextHop: f.nextHop,
      input: f.input,
      output: f.output,
      packets: f.packets,
      octets: f.octets,
      first: u32(clock.uptime - f.startAgo),
      last: u32(clock.uptime - f.endAgo),
      srcPort: f.srcPort,
      dstPort: f.dstPort,
      tcpFlags: f.tcpFlags,
      protocol: f.protocol,
      tos: f.tos,
      srcAs: f.srcAs,
      dstAs: f.dstAs,
      srcMask: 24,
      dstMask: 24,
    });
  }
  const sequence = ex.v5Sequence;
  const h: netflow5.Netflow5Header = {
    version: netflow5.VERSION,
    count,
    sysUptime: u32(clock.uptime),
    unixSecs: clock.unixSecs,
    unixNsecs: clock.unixNsecs,
    flowSequence: sequence,
    engineType: 0,
    engineId: ex.index + 1,
    // odd exporters sample 1 in 100 (mode 01: deterministic)
    samplingInterval: ex.index % 2 === 1 ? (1 << 14) | 100 : 0,
  };
  const n = netflow5.encode(h, records, buf, 0);
  ex.v5Sequence = u32(sequence + count);
  return [
    n,
    { sequence, domain: (h.engineType << 8) | h.engineId, sequenceStep: count, records: count, templates: false },
  ];
}

type ScenarioFrameInfoPart = Pick<ScenarioFrameInfo, 'sequence' | 'domain' | 'sequenceStep' | 'records' | 'templates'>;

function v9Values(f: Flow, clock: Clock): FieldValue[] {
  const last = u32(clock.uptime - f.endAgo);
  const first = u32(clock.uptime - f.startAgo);
  if (f.v6) {
    // in V9_TEMPLATE_V6 order
    return [
      f.octets, f.packets, f.protocol, f.tcpFlags, f.srcPort, f.dstPort, f.src6, f.dst6,
      48, 48, f.input, f.output, docAddress6Fixed, last, first,
    ];
  }
  // in V9_TEMPLATE_V4 order
  return [
    f.octets, f.packets, f.protocol, f.tos, f.tcpFlags, f.srcPort, f.src, 24, f.input,
    f.dstPort, f.dst, 24, f.output, f.nextHop, f.srcAs, f.dstAs, last, first,
  ];
}


function buildNetflow9(rng: Rng, ex: Exporter, clock: Clock, k: number, buf: Buffer): [number, ScenarioFrameInfoPart] {
  const sets: netflow9.FlowSet[] = [];
  const withTemplates = k % TEMPLATE_REFRESH === 0;
  if (withTemplates) {
    sets.push({ kind: 'template', templates: [V9_TEMPLATE_V4, V9_TEMPLATE_V6] });
    sets.push({ kind: 'options', templates: [V9_OPTIONS_TEMPLATE] });
    sets.push({ kind: 'data', template: V9_OPTIONS_TEMPLATE, records: [[ex.addrNum, SAMPLING_RATE, 2]] });
  }
  // The very first packet carries templates only, as exporters do right after a restart.
  if (k !== 0) {
    const v4: FieldValue[][] = [];
    const v6: FieldValue[][] = [];
    const n = rng.int(1, 24);
    for (let i = 0; i < n; i++) {
      const f = randomFlow(rng, rng.next() < 0.25);
      (f.v6 ? v6 : v4).push(v9Values(f, clock));
    }
    if (v4.length) sets.push({ kind: 'data', template: V9_TEMPLATE_V4, records: v4 });
    if (v6.length) sets.push({ kind: 'data', template: V9_TEMPLATE_V6, records: v6 });
  }
  const sequence = ex.v9Sequence;
  const sourceId = 0x100 + ex.index;
  const n = netflow9.encodePacket({ sysUptime: u32(clock.uptime), unixSecs: clock.unixSecs, sequence, sourceId }, sets, buf, 0);
  let records = 0;
  for (const s of sets) records += netflow9.flowSetRecords(s);
  ex.v9Sequence = u32(sequence + 1);
  return [n, { sequence, domain: sourceId, sequenceStep: 1, records, templates: withTemplates }];
}

function ipfixValues(rng: Rng, f: Flow, clock: Clock): FieldValue[] {
  const nowMs = Math.floor(clock.ns / 1e6);
  const start = nowMs - f.startAgo;
  const end = nowMs - f.endAgo;
  if (f.v6) {
    // in IPFIX_TEMPLATE_V6 order
    return [
      f.octets, f.packets, start, end, f.src6, f.dst6, docAddress6Fixed,
      f.input, f.output, f.srcPort, f.dstPort, f.protocol, f.tcpFlags,
    ];
  }
  // in IPFIX_TEMPLATE_V4 order
  return [
    f.octets,
    f.packets,
    start,
    end,
    f.src,
    f.dst,
    f.nextHop,
    f.input,
    f.output,
    f.srcPort,
    f.dstPort,
    f.protocol,
    f.tcpFlags,
    f.tos,
    f.srcAs,
    f.dstAs,
    rng.pick(APPLICATIONS),
    rng.u32(),
  ];
}

function buildIpfix(rng: Rng, ex: Exporter, clock: Clock, k: number, buf: Buffer): [number, ScenarioFrameInfoPart] {
  const sets: ipfix.IpfixSet[] = [];
  const withTemplates = k % TEMPLATE_REFRESH === 0;
  if (withTemplates) {
    sets.push({ kind: 'template', templates: [IPFIX_TEMPLATE_V4, IPFIX_TEMPLATE_V6] });
    sets.push({ kind: 'options', templates: [IPFIX_OPTIONS_TEMPLATE] });
    sets.push({
      kind: 'data',
      template: IPFIX_OPTIONS_TEMPLATE,
      records: [[ex.index + 1, ex.ipfixMessages, ex.ipfixFlows]],
    });
  }
  if (k !== 0) {
    const v4: FieldValue[][] = [];
    const v6: FieldValue[][] = [];
    const n = rng.int(1, 16);
    for (let i = 0; i < n; i++) {
      const f = randomFlow(rng, rng.next() < 0.25);
      (f.v6 ? v6 : v4).push(ipfixValues(rng, f, clock));
    }
    if (v4.length) sets.push({ kind: 'data', template: IPFIX_TEMPLATE_V4, records: v4 });
    if (v6.length) sets.push({ kind: 'data', template: IPFIX_TEMPLATE_V6, records: v6 });
    ex.ipfixFlows += n;
  }
  const sequence = ex.ipfixSequence;
  const domain = 0x10000 + ex.index;
  const header = { exportTime: clock.unixSecs, sequenceNumber: sequence, observationDomainId: domain };
  const n = ipfix.encodeMessage(header, sets, buf, 0);
  const dataRecords = ipfix.dataRecordCount(sets);
  ex.ipfixSequence = u32(sequence + dataRecords);
  ex.ipfixMessages++;
  return [n, { sequence, domain, sequenceStep: dataRecords, records: dataRecords, templates: withTemplates }];
}

/** The first bytes of a sampled frame: Ethernet, IPv4 (valid checksum), TCP or UDP, payload. */
function sampledHeader(rng: Rng, frameLength: number): Uint8Array {
  const f = randomFlow(rng, false);
  const captured = Math.min(128, frameLength - 4);
  const bytes = new Uint8Array(captured);
  const eth = ethernet.create();
  eth.src = 0x02_42_c6_33_00_00 + rng.int(1, 0xfff);
  eth.dst = 0x02_42_c6_33_10_00 + rng.int(1, 0xfff);
  eth.etherType = ethernet.EtherType.IPV4;
  let p = ethernet.encode(eth, bytes, 0);
  const ip = ipv4.create();
  const tcp = f.protocol !== 17;
  ip.totalLength = frameLength - 4 - ethernet.HEADER_LENGTH;
  ip.id = rng.int(0, 0xffff);
  ip.flags = ipv4.FLAG_DF;
  ip.ttl = rng.int(50, 64);
  ip.protocol = tcp ? 6 : 17;
  ip.src = f.src;
  ip.dst = f.dst;
  ip.tos = f.tos;
  p += ipv4.encode(ip, bytes, p);
  // TLS over TCP 443 and ESP over UDP 4500 (either direction), with payloads shaped like them, so
  // that a dissector of the sampled header finds what it expects rather than noise.
  const service = tcp ? 443 : 4500;
  const ephemeral = rng.int(1024, 65535);
  const toService = rng.next() < 0.5;
  writeU16(bytes, p, toService ? ephemeral : service);
  writeU16(bytes, p + 2, toService ? service : ephemeral);
  const l4Length = ip.totalLength - ipv4.MIN_HEADER_LENGTH;
  if (tcp) {
    writeU32(bytes, p + 4, rng.u32()); // sequence number
    writeU32(bytes, p + 8, rng.u32()); // acknowledgment number
    bytes[p + 12] = 5 << 4; // data offset: 20 bytes
    bytes[p + 13] = 0x10 | (rng.next() < 0.3 ? 0x08 : 0); // ACK, sometimes PSH
    writeU16(bytes, p + 14, rng.int(1024, 65535)); // window
    // checksum and urgent pointer stay zero: a sampled header cannot carry a checkable checksum
    p += 20;
    const payload = l4Length - 20;
    if (payload >= 5 && captured - p >= 5) {
      // TLS record header (RFC 8446 §5.1): application_data, legacy version 3.3, length
      bytes.set([0x17, 0x03, 0x03], p);
      writeU16(bytes, p + 3, payload - 5);
      p += 5;
    }
  } else {
    writeU16(bytes, p + 4, l4Length); // UDP length
    // checksum 0: "none", legal over IPv4 (RFC 768)
    p += 8;
    if (captured - p >= 8) {
      writeU32(bytes, p, rng.int(256, 0xffffffff)); // ESP SPI (RFC 4303; nonzero, not IKE's marker)
      writeU32(bytes, p + 4, rng.int(1, 1_000_000)); // ESP sequence number
      p += 8;
    }
  }
  for (; p < captured; p++) bytes[p] = rng.int(0, 255);
  return bytes;
}

function buildSflow(rng: Rng, ex: Exporter, clock: Clock, k: number, buf: Buffer): [number, ScenarioFrameInfoPart] {
  const samples: sflow5.Sample[] = [];
  const flows = rng.int(1, 5);
  for (let i = 0; i < flows; i++) {
    const s = rng.int(0, IF_INDEXES.length - 1);
    const ifIndex = IF_INDEXES[s];
    const frameLength = rng.pick([64, 78, 590, 1294, 1518, rng.int(64, 1518)]);
    const skipped = SAMPLING_RATE + rng.int(-200, 200);
    ex.samplePool[s] = u32(ex.samplePool[s] + skipped);
    ex.sflowFlowSequence[s] = u32(ex.sflowFlowSequence[s] + 1);
    samples.push({
      kind: 'flow',
      sequenceNumber: ex.sflowFlowSequence[s],
      sourceIdType: 0,
      sourceIdIndex: ifIndex,
      samplingRate: SAMPLING_RATE,
      samplePool: ex.samplePool[s],
      drops: 0,
      input: ifIndex,
      output: IF_INDEXES[(s + 1) % IF_INDEXES.length],
      records: [
        {
          kind: 'sampledHeader',
          protocol: sflow5.HeaderProtocol.ETHERNET,
          frameLength,
          stripped: 4,
          header: sampledHeader(rng, frameLength),
        },
      ],
    });
  }
  // Counter samples for every interface every 4th datagram (a 20-30 s polling interval, scaled).
  if (k % 4 === 0) {
    for (let s = 0; s < IF_INDEXES.length; s++) {
      ex.inPackets[s] = u32(ex.inPackets[s] + rng.int(10_000, 100_000));
      ex.outPackets[s] = u32(ex.outPackets[s] + rng.int(10_000, 100_000));
      ex.inOctets[s] += rng.int(1e6, 1e8);
      ex.outOctets[s] += rng.int(1e6, 1e8);
      ex.sflowCounterSequence[s] = u32(ex.sflowCounterSequence[s] + 1);
      samples.push({
        kind: 'counters',
        sequenceNumber: ex.sflowCounterSequence[s],
        sourceIdType: 0,
        sourceIdIndex: IF_INDEXES[s],
        records: [
          {
            kind: 'interface',
            counters: {
              ifIndex: IF_INDEXES[s],
              ifType: 6, // ethernetCsmacd
              ifSpeed: 10_000_000_000,
              ifDirection: 1,
              ifStatus: 3,
              ifInOctets: ex.inOctets[s],
              ifInUcastPkts: ex.inPackets[s],
              ifInMulticastPkts: 0,
              ifInBroadcastPkts: 0,
              ifInDiscards: 0,
              ifInErrors: 0,
              ifInUnknownProtos: 0,
              ifOutOctets: ex.outOctets[s],
              ifOutUcastPkts: ex.outPackets[s],
              ifOutMulticastPkts: 0,
              ifOutBroadcastPkts: 0,
              ifOutDiscards: 0,
              ifOutErrors: 0,
              ifPromiscuousMode: 0,
            },
          },
        ],
      });
    }
  }
  const sequence = ex.sflowSequence;
  const n = sflow5.encode(
    { agentAddress: v4Bytes(ex.addrNum), subAgentId: 0, sequenceNumber: sequence, uptime: u32(clock.uptime), samples },
    buf,
    0,
  );
  ex.sflowSequence = u32(sequence + 1);
  return [n, { sequence, domain: 0, sequenceStep: 1, records: samples.length, templates: false }];
}

function v4Bytes(v: number): Uint8Array {
  return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

// ---- the generator -------------------------------------------------------------------------------

/**
 * Yields the mirrored frames of the scenario in time order (ties broken by exporter, then
 * protocol). Deterministic for given options.
 */
export function* generateScenario(opts: ScenarioOptions): Generator<ScenarioFrame, void, undefined> {
  const durationMs = opts.durationMs ?? DEFAULT_SCENARIO.durationMs;
  const startNs = opts.startNs ?? DEFAULT_SCENARIO.startNs;
  const seed = opts.seed ?? DEFAULT_SCENARIO.seed;
  const perExporter = opts.datagramsPerExporter ?? DEFAULT_SCENARIO.datagramsPerExporter;
  const protocols = opts.protocols ?? ALL_PROTOCOLS;
  const target = opts.mirrorTarget ?? DEFAULT_SCENARIO.mirrorTarget;
  const collector = parseIPv4(opts.collector);
  if (!(durationMs > 0)) throw new RangeError(`durationMs ${durationMs} must be positive`);
  if (opts.exporters.length > 250) throw new RangeError('at most 250 exporters');
  if (!Number.isInteger(perExporter) || perExporter < 0) throw new RangeError(`datagramsPerExporter ${perExporter}`);
  parseIPv4(target);

  const rng = new Rng(seed);
  const start32 = opts.sequenceStart;
  if (start32 !== undefined && !(Number.isInteger(start32) && start32 >= 0 && start32 <= 0xffffffff)) {
    throw new RangeError(`sequenceStart ${start32} is not a 32-bit value`);
  }
  /** A counter's first value: the fixed start if given (the draw still happens, to keep the stream). */
  const seq = () => {
    const v = rng.u32();
    return start32 ?? v;
  };
  const exporters: Exporter[] = opts.exporters.map((addr, index) => {
    const addrNum = parseIPv4(addr);
    const eniNum = (parseIPv4('198.18.1.0') + index + 1) >>> 0;
    const port = () => rng.int(49152, 65535);
    return {
      index,
      addr,
      addrNum,
      eni: formatIPv4(eniNum),
      eniNum,
      mac: 0x02_42_c6_12_00_00 + index + 1,
      df: index % 2 === 0,
      ipId: rng.int(0, 0xffff),
      outerIpId: rng.int(0, 0xffff),
      bootUptime: rng.int(60_000, 90 * 86_400_000),
      srcPorts: { netflow5: port(), netflow9: port(), ipfix: port(), sflow5: port() },
      v9DstPort: PORTS.netflow9[index % 2],
      v5Sequence: seq(),
      v9Sequence: seq(),
      ipfixSequence: seq(),
      ipfixMessages: 0,
      ipfixFlows: 0,
      sflowSequence: seq(),
      sflowFlowSequence: IF_INDEXES.map(seq),
      sflowCounterSequence: IF_INDEXES.map(seq),
      samplePool: IF_INDEXES.map(() => rng.u32()),
      inOctets: IF_INDEXES.map(() => rng.int(0, 2 ** 40)),
      outOctets: IF_INDEXES.map(() => rng.int(0, 2 ** 40)),
      inPackets: IF_INDEXES.map(() => rng.u32()),
      outPackets: IF_INDEXES.map(() => rng.u32()),
      sent: { netflow5: 0, netflow9: 0, ipfix: 0, sflow5: 0 },
    };
  });

  // Schedule: each exporter's datagrams of one protocol evenly spaced with jitter (< half a slot,
  // so a stream's own order never changes), each stream with its own phase.
  const durationUs = durationMs * 1000;
  const events: Event[] = [];
  for (const ex of exporters) {
    protocols.forEach((protocol, pi) => {
      const n = perExporter;
      if (n === 0) return;
      const slot = durationUs / n;
      const phase = rng.next();
      for (let k = 0; k < n; k++) {
        const jitter = (rng.next() - 0.5) * 0.8;
        const tUs = Math.floor((k + 0.5 + (phase - 0.5) * 0.1 + jitter * 0.5) * slot);
        events.push({ tUs: Math.max(0, Math.min(durationUs - 1, tUs)), exporter: ex.index, protocol, order: pi });
      }
    });
  }
  events.sort((a, b) => a.tUs - b.tUs || a.exporter - b.exporter || a.order - b.order);

  const scratch = Buffer.alloc(65535);
  for (const ev of events) {
    const ex = exporters[ev.exporter];
    const ns = startNs + ev.tUs * 1000;
    const unixSecs = Math.floor(ns / 1e9);
    const clock: Clock = {
      ns,
      unixSecs,
      unixNsecs: Math.max(0, Math.min(999_999_999, Math.round(ns - unixSecs * 1e9))),
      uptime: ex.bootUptime + Math.floor(ev.tUs / 1000),
    };
    const k = ex.sent[ev.protocol]++;
    let built: [number, ScenarioFrameInfoPart];
    let dstPort: number;
    switch (ev.protocol) {
      case 'netflow5':
        built = buildNetflow5(rng, ex, clock, scratch);
        dstPort = PORTS.netflow5;
        break;
      case 'netflow9':
        built = buildNetflow9(rng, ex, clock, k, scratch);
        dstPort = ex.v9DstPort;
        break;
      case 'ipfix':
        built = buildIpfix(rng, ex, clock, k, scratch);
        dstPort = PORTS.ipfix;
        break;
      case 'sflow5':
        built = buildSflow(rng, ex, clock, k, scratch);
        dstPort = PORTS.sflow5;
        break;
    }
    const [length, part] = built;
    const srcPort = ex.srcPorts[ev.protocol];
    const spec: MirrorFrameSpec = {
      outerSrc: ex.eni,
      outerDst: target,
      outerSrcPort: outerSourcePort(ex.addrNum, collector, 17, srcPort, dstPort),
      vni: opts.vni,
      innerSrcMac: ex.mac,
      innerDstMac: ROUTER_MAC,
      innerSrc: ex.addr,
      innerDst: opts.collector,
      innerSrcPort: srcPort,
      innerDstPort: dstPort,
      payload: scratch.subarray(0, length),
      df: ex.df,
      ipId: ex.ipId,
      outerIpId: ex.outerIpId,
    };
    ex.ipId = (ex.ipId + 1) & 0xffff;
    ex.outerIpId = (ex.outerIpId + 1) & 0xffff;
    const frame = Buffer.alloc(mirrorFrameLength(spec));
    buildMirrorFrame(spec, frame, 0);
    yield {
      timestampNs: ns,
      frame,
      info: { protocol: ev.protocol, exporter: ex.addr, srcPort, dstPort, ...part },
    };
  }
}
