/**
 * Cisco NetFlow version 5 export datagram: a 24-byte header and `count` fixed 48-byte flow records.
 * (Cisco "NetFlow Export Datagram Format", version 5; there is no RFC, RFC 3954 §1 refers to it.)
 *
 * Header:
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |        Version (5)            |            Count              |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                          SysUptime (ms)                       |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                          unix_secs                            |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                          unix_nsecs                           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                        flow_sequence                          |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  engine_type  |   engine_id   |S S|    sampling interval (14)  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Flow record (48 bytes):
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                         srcaddr                               |
 *  |                         dstaddr                               |
 *  |                         nexthop                               |
 *  |            input (ifIndex)    |         output (ifIndex)      |
 *  |                          dPkts                                |
 *  |                          dOctets                              |
 *  |                  First (SysUptime at first packet)            |
 *  |                  Last  (SysUptime at last packet)             |
 *  |            srcport            |            dstport            |
 *  |     pad1      |   tcp_flags   |     prot      |      tos      |
 *  |            src_as             |            dst_as             |
 *  |   src_mask    |   dst_mask    |             pad2              |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * flow_sequence counts the flows the engine exported before this datagram, so a collector
 * expects the next datagram's flow_sequence to be this one's plus `count`.
 */
import { readI32, readU16, readU32, writeU16, writeU32 } from '../proto/bytes.js';
import { Decode, type DecodeResult } from '../proto/result.js';

export const VERSION = 5;
export const HEADER_LENGTH = 24;
export const RECORD_LENGTH = 48;
/** Cisco: a v5 datagram carries 1 to 30 records (24 + 30 × 48 = 1464 bytes fits a 1500 MTU). */
export const MAX_RECORDS = 30;
/** Usual collector port (Cisco convention; not IANA assigned). */
export const UDP_PORT = 2055;

export interface Netflow5Header {
  version: number;
  count: number;
  /** Milliseconds since the exporting device booted. */
  sysUptime: number;
  unixSecs: number;
  unixNsecs: number;
  /** Flows seen by this engine before this datagram (modulo 2^32). */
  flowSequence: number;
  engineType: number;
  engineId: number;
  /** The whole 16-bit field: top 2 bits sampling mode, low 14 bits the interval. */
  samplingInterval: number;
}

export interface Netflow5Record {
  srcAddr: number;
  dstAddr: number;
  nextHop: number;
  input: number;
  output: number;
  packets: number;
  octets: number;
  /** SysUptime (ms) at the first and last packet of the flow. */
  first: number;
  last: number;
  srcPort: number;
  dstPort: number;
  tcpFlags: number;
  protocol: number;
  tos: number;
  srcAs: number;
  dstAs: number;
  srcMask: number;
  dstMask: number;
}

export function create(): Netflow5Header {
  return {
    version: VERSION,
    count: 0,
    sysUptime: 0,
    unixSecs: 0,
    unixNsecs: 0,
    flowSequence: 0,
    engineType: 0,
    engineId: 0,
    samplingInterval: 0,
  };
}

export function createRecord(): Netflow5Record {
  return {
    srcAddr: 0,
    dstAddr: 0,
    nextHop: 0,
    input: 0,
    output: 0,
    packets: 0,
    octets: 0,
    first: 0,
    last: 0,
    srcPort: 0,
    dstPort: 0,
    tcpFlags: 0,
    protocol: 0,
    tos: 0,
    srcAs: 0,
    dstAs: 0,
    srcMask: 0,
    dstMask: 0,
  };
}

/** Bytes a datagram with `count` records takes. */
export function encodingLength(count: number): number {
  return HEADER_LENGTH + count * RECORD_LENGTH;
}

/**
 * Decodes the header of the datagram occupying `off`..`end` (the UDP payload). Fewer bytes than
 * `count` records need is TRUNCATED (a mirror's packet-length limit does that); a version other
 * than 5, or bytes left over after `count` records, is MALFORMED. The header fields are set
 * whenever the 24-byte header itself was present, even when the records are truncated.
 */
export function decode(buf: Uint8Array, off: number, end: number, out: Netflow5Header): DecodeResult {
  if (end - off < HEADER_LENGTH) return Decode.TRUNCATED;
  const version = readU16(buf, off);
  if (version !== VERSION) return Decode.MALFORMED;
  const count = readU16(buf, off + 2);
  out.version = version;
  out.count = count;
  out.sysUptime = readI32(buf, off + 4) >>> 0;
  out.unixSecs = readI32(buf, off + 8) >>> 0;
  out.unixNsecs = readI32(buf, off + 12) >>> 0;
  out.flowSequence = readI32(buf, off + 16) >>> 0;
  out.engineType = buf[off + 20];
  out.engineId = buf[off + 21];
  out.samplingInterval = readU16(buf, off + 22);
  const length = HEADER_LENGTH + count * RECORD_LENGTH;
  if (end - off < length) return Decode.TRUNCATED;
  if (end - off !== length) return Decode.MALFORMED;
  return Decode.OK;
}

/** Decodes record `index` (0-based) of a datagram whose header `decode` accepted. */
export function decodeRecord(buf: Uint8Array, off: number, end: number, index: number, out: Netflow5Record): DecodeResult {
  const p = off + HEADER_LENGTH + index * RECORD_LENGTH;
  if (index < 0 || end - p < RECORD_LENGTH) return Decode.TRUNCATED;
  out.srcAddr = readU32(buf, p);
  out.dstAddr = readU32(buf, p + 4);
  out.nextHop = readU32(buf, p + 8);
  out.input = readU16(buf, p + 12);
  out.output = readU16(buf, p + 14);
  out.packets = readU32(buf, p + 16);
  out.octets = readU32(buf, p + 20);
  out.first = readU32(buf, p + 24);
  out.last = readU32(buf, p + 28);
  out.srcPort = readU16(buf, p + 32);
  out.dstPort = readU16(buf, p + 34);
  out.tcpFlags = buf[p + 37];
  out.protocol = buf[p + 38];
  out.tos = buf[p + 39];
  out.srcAs = readU16(buf, p + 40);
  out.dstAs = readU16(buf, p + 42);
  out.srcMask = buf[p + 44];
  out.dstMask = buf[p + 45];
  return Decode.OK;
}

/**
 * Writes a datagram: the header with `count` set to `records.length` (h.count is ignored), then
 * the records. Returns bytes written.
 */
export function encode(h: Netflow5Header, records: readonly Netflow5Record[], buf: Uint8Array, off: number): number {
  const count = records.length;
  if (count > 0xffff) throw new RangeError(`netflow5: ${count} records do not fit the count field`);
  const len = encodingLength(count);
  if (buf.length - off < len) throw new RangeError(`netflow5: need ${len} bytes at offset ${off}`);
  writeU16(buf, off, VERSION);
  writeU16(buf, off + 2, count);
  writeU32(buf, off + 4, h.sysUptime);
  writeU32(buf, off + 8, h.unixSecs);
  writeU32(buf, off + 12, h.unixNsecs);
  writeU32(buf, off + 16, h.flowSequence);
  buf[off + 20] = h.engineType & 0xff;
  buf[off + 21] = h.engineId & 0xff;
  writeU16(buf, off + 22, h.samplingInterval);
  let p = off + HEADER_LENGTH;
  for (const r of records) {
    writeU32(buf, p, r.srcAddr);
    writeU32(buf, p + 4, r.dstAddr);
    writeU32(buf, p + 8, r.nextHop);
    writeU16(buf, p + 12, r.input);
    writeU16(buf, p + 14, r.output);
    writeU32(buf, p + 16, r.packets);
    writeU32(buf, p + 20, r.octets);
    writeU32(buf, p + 24, r.first);
    writeU32(buf, p + 28, r.last);
    writeU16(buf, p + 32, r.srcPort);
    writeU16(buf, p + 34, r.dstPort);
    buf[p + 36] = 0; // pad1
    buf[p + 37] = r.tcpFlags & 0xff;
    buf[p + 38] = r.protocol & 0xff;
    buf[p + 39] = r.tos & 0xff;
    writeU16(buf, p + 40, r.srcAs);
    writeU16(buf, p + 42, r.dstAs);
    buf[p + 44] = r.srcMask & 0xff;
    buf[p + 45] = r.dstMask & 0xff;
    writeU16(buf, p + 46, 0); // pad2
    p += RECORD_LENGTH;
  }
  return len;
}
