/**
 * Synthesizes the traffic an exporter sees: a pcap of a known number of distinct flows for
 * `softflowd -r`, so the lab can count what reaches the collector against what went in.
 *
 * Flows are one-way (198.51.100.x → 203.0.113.x): softflowd then exports exactly one record per
 * flow, in NetFlow v9 and in IPFIX (which would otherwise add a record for a reverse direction).
 */
import * as ethernet from '../proto/ethernet/packet.js';
import * as ipv4 from '../proto/ipv4/packet.js';
import * as udp from '../proto/udp/packet.js';
import { checksum, pseudoSum4 } from '../proto/checksum.js';
import { writeU16, writeU32 } from '../proto/bytes.js';
import { CaptureWriter, LinkType } from '../io/pcap/writer.js';
import { ipv4ToU32 } from '../io/native/index.js';

export interface FlowKey {
  protocol: 'tcp' | 'udp';
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  packets: number;
}

export interface FlowCaptureOptions {
  /** Distinct flows (default 24), half TCP and half UDP. */
  flows?: number;
  /** Packets per flow (default 4). */
  packetsPerFlow?: number;
  /** Time of the first packet (default: 20 s ago, so the flows look recent). */
  startNs?: number;
}

const TCP_HEADER_LENGTH = 20;
const TCP = 6;
const TcpFlag = { FIN: 0x01, SYN: 0x02, PSH: 0x08, ACK: 0x10 } as const;

/** The flows of a capture, in the order they start. */
export function flowPlan(opts: FlowCaptureOptions = {}): FlowKey[] {
  const n = opts.flows ?? 24;
  const packets = opts.packetsPerFlow ?? 4;
  const flows: FlowKey[] = [];
  for (let i = 0; i < n; i++) {
    const tcp = i % 2 === 0;
    flows.push({
      protocol: tcp ? 'tcp' : 'udp',
      src: `198.51.100.${10 + (i % 50)}`,
      dst: `203.0.113.${20 + Math.floor(i / 2) % 50}`,
      srcPort: 40000 + i,
      dstPort: tcp ? [443, 80, 22][i % 3] : [53, 123, 514][i % 3],
      packets,
    });
  }
  return flows;
}

/**
 * Writes the flows of {@link flowPlan} to `path` (Ethernet pcap), packets of different flows
 * interleaved, 10 ms apart. Returns the flows.
 */
export function writeFlowCapture(path: string, opts: FlowCaptureOptions = {}): FlowKey[] {
  const flows = flowPlan(opts);
  const startMs = opts.startNs === undefined ? Date.now() - 20_000 : opts.startNs / 1e6;
  const buf = new Uint8Array(1600);
  const eth = ethernet.create();
  eth.src = ethernet.parseMac('02:00:00:00:00:01');
  eth.dst = ethernet.parseMac('02:00:00:00:00:02');
  eth.etherType = ethernet.EtherType.IPV4;
  const ip = ipv4.create();
  const writer = CaptureWriter.create(path, LinkType.ETHERNET);
  try {
    let id = 1;
    let n = 0;
    const rounds = Math.max(...flows.map((f) => f.packets));
    for (let p = 0; p < rounds; p++) {
      for (const f of flows) {
        if (p >= f.packets) continue;
        const payload = 100 + 10 * p;
        const l4 = f.protocol === 'tcp' ? TCP_HEADER_LENGTH : udp.HEADER_LENGTH;
        const ipOff = ethernet.encode(eth, buf, 0);
        const l4Off = ipOff + ipv4.MIN_HEADER_LENGTH;
        ip.totalLength = ipv4.MIN_HEADER_LENGTH + l4 + payload;
        ip.id = id++ & 0xffff;
        ip.flags = ipv4.FLAG_DF;
        ip.protocol = f.protocol === 'tcp' ? TCP : udp.PROTOCOL;
        ip.src = ipv4ToU32(f.src);
        ip.dst = ipv4ToU32(f.dst);
        ipv4.encode(ip, buf, ipOff);
        buf.fill(0x61 + (p % 26), l4Off + l4, l4Off + l4 + payload);
        if (f.protocol === 'tcp') {
          const flags = p === 0 ? TcpFlag.SYN : p === f.packets - 1 ? TcpFlag.FIN | TcpFlag.ACK : TcpFlag.PSH | TcpFlag.ACK;
          encodeTcp(buf, l4Off, f.srcPort, f.dstPort, 1000 + p * 1000, flags, TCP_HEADER_LENGTH + payload, ip.src, ip.dst);
        } else {
          const length = udp.HEADER_LENGTH + payload;
          udp.encode({ srcPort: f.srcPort, dstPort: f.dstPort, length, checksum: 0 }, buf, l4Off);
          writeU16(buf, l4Off + udp.Field.CHECKSUM, udp.checksum4(buf, l4Off, length, ip.src, ip.dst));
        }
        // Whole milliseconds plus half a microsecond: ns values near 2^60 are not exact doubles.
        writer.write(buf, 0, ipOff + ip.totalLength, (startMs + 10 * n++) * 1e6 + 500);
      }
    }
  } finally {
    writer.close();
  }
  return flows;
}

/** A minimal TCP header (RFC 9293 §3.1), no options, with its checksum. */
function encodeTcp(buf: Uint8Array, off: number, srcPort: number, dstPort: number, seq: number, flags: number, length: number, src: number, dst: number): void {
  writeU16(buf, off, srcPort);
  writeU16(buf, off + 2, dstPort);
  writeU32(buf, off + 4, seq);
  writeU32(buf, off + 8, flags & TcpFlag.ACK ? 1 : 0);
  buf[off + 12] = (TCP_HEADER_LENGTH / 4) << 4;
  buf[off + 13] = flags;
  writeU16(buf, off + 14, 65535); // window
  writeU16(buf, off + 16, 0);
  writeU16(buf, off + 18, 0); // urgent pointer
  writeU16(buf, off + 16, checksum(buf, off, length, pseudoSum4(src, dst, TCP, length)));
}
