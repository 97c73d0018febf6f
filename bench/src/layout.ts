/**
 * The benchmark's hosts and addresses. Only 198.18.0.0/15 (RFC 2544 benchmarking) is used, and
 * every host is a network namespace named mgbench-*:
 *
 *   mgbench-gen ──(198.18.1.0/24)── mgbench-gw ──(198.18.4.0/24)── mgbench-sink
 *        └───────────────────(198.18.5.0/24, "direct")──────────────────┘
 *
 * - exporters (inner sources): 198.18.0.0 .. 198.18.0.255, source port 50000 + i;
 * - monitored address (what the exporters send to, the mirrored ENI): 198.18.3.10:2055;
 * - mirror sources (outer sources, the mirrored ENIs): 198.18.1.1 .. 198.18.1.4;
 * - mirror target (the gateway, outer destination): 198.18.1.100:4789;
 * - collector (sink): 198.18.4.10:2055.
 */
export const PREFIX = 'mgbench';

export const NS = {
  gen: `${PREFIX}-gen`,
  gw: `${PREFIX}-gw`,
  sink: `${PREFIX}-sink`,
} as const;

/** Interface names (at most 15 characters). */
export const IF = {
  genToGw: 'mgb-g0',
  gwFromGen: 'mgb-g1',
  gwToSink: 'mgb-s1',
  sinkFromGw: 'mgb-s0',
  genDirect: 'mgb-d0',
  sinkDirect: 'mgb-d1',
  vxlan: 'mgb-vx0',
} as const;

export const ADDR = {
  exporterBase: '198.18.0.0',
  exporterCidr: '198.18.0.0/24',
  exporterPortBase: 50000,
  mirrorSources: ['198.18.1.1', '198.18.1.2', '198.18.1.3', '198.18.1.4'],
  mirrorSourceCidr: '198.18.1.0/24',
  gwOuter: '198.18.1.100',
  monitored: '198.18.3.10',
  monitoredPort: 2055,
  gwToSink: '198.18.4.1',
  collector: '198.18.4.10',
  collectorPort: 2055,
  genDirect: '198.18.5.1',
  sinkDirect: '198.18.5.10',
} as const;

/** MACs in the mirrored (inner) frames: the VPC router and the monitored ENI. */
export const MAC = {
  innerSrc: 0x02_00_c6_12_00_01,
  monitored: 0x02_00_c6_12_03_0a,
  monitoredText: '02:00:c6:12:03:0a',
} as const;

/** The mirror session's VNI: deliberately not 1 (AWS picks a random one). */
export const VNI = 7_340_123;

export const EXPORTERS = 256;

/** Frames a veth's receive ring holds (fixed in the kernel: VETH_RING_SIZE). */
export const VETH_RING = 256;

/** Control API of the gateway under test, on the gateway namespace's loopback. */
export const CONTROL = '127.0.0.1:9090';
