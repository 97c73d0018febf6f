/**
 * sFlow version 5 datagrams (sFlow.org, "sFlow Version 5", 2004; XDR encoding, RFC 4506: every
 * item is a multiple of 4 bytes, opaque<> is a 4-byte length then the bytes padded to 4).
 *
 * Datagram header:
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                         version (5)                           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |         agent address type (1 = IPv4, 2 = IPv6, 0 = unknown)  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  ~                agent address (4, 16 or 0 bytes)              ~
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                         sub_agent_id                          |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                        sequence_number                        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                         uptime (ms)                           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                         num samples                           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Sample record (and, inside samples, flow / counter records), data_format = enterprise << 12 |
 * format:
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |        enterprise (20 bits)           |    format (12 bits)   |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                          length                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  ~                          data                                 ~
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * flow_sample (0:1): sequence_number, source_id (type << 24 | index), sampling_rate, sample_pool,
 * drops, input, output, flow_record<>. counters_sample (0:2): sequence_number, source_id,
 * counter_record<>. sampled_header flow record (0:1): header_protocol, frame_length, stripped,
 * header<>. if_counters counter record (0:1): 88 bytes of generic interface counters.
 *
 * The datagram sequence_number counts datagrams per (agent address, sub_agent_id); each data
 * source keeps its own flow and counter sample sequence numbers.
 */
import { readI32, readU32, writeU32 } from '../proto/bytes.js';
import { Decode, type DecodeResult } from '../proto/result.js';

export const VERSION = 5;
/** IANA "sflow" port. */
export const UDP_PORT = 6343;
export const AddressType = { UNKNOWN: 0, IPV4: 1, IPV6: 2 } as const;
/** Sample formats, enterprise 0. */
export const SampleFormat = { FLOW: 1, COUNTERS: 2, EXPANDED_FLOW: 3, EXPANDED_COUNTERS: 4 } as const;
/** Flow record formats, enterprise 0. */
export const FlowFormat = { SAMPLED_HEADER: 1 } as const;
/** Counter record formats, enterprise 0. */
export const CounterFormat = { GENERIC_INTERFACE: 1 } as const;
/** header_protocol values of sampled_header. */
export const HeaderProtocol = { ETHERNET: 1, IPV4: 11, IPV6: 12 } as const;
/** Smallest datagram header: address type 0 (unknown) carries no address bytes. */
export const MIN_HEADER_LENGTH = 24;
export const GENERIC_INTERFACE_COUNTERS_LENGTH = 88;

export interface Sflow5Header {
  version: number;
  agentAddressType: number;
  /** Agent address bytes (first `agentAddressLength` are meaningful: 4, 16, or 0). */
  agentAddress: Uint8Array;
  agentAddressLength: number;
  /** The IPv4 agent address as a number, 0 for other types. */
  agentV4: number;
  subAgentId: number;
  sequenceNumber: number;
  uptime: number;
  numSamples: number;
  /** Samples by kind found by decode (expanded formats included). */
  flowSamples: number;
  counterSamples: number;
  otherSamples: number;
}

export function create(): Sflow5Header {
  return {
    version: VERSION,
    agentAddressType: AddressType.IPV4,
    agentAddress: new Uint8Array(16),
    agentAddressLength: 4,
    agentV4: 0,
    subAgentId: 0,
    sequenceNumber: 0,
    uptime: 0,
    numSamples: 0,
    flowSamples: 0,
    counterSamples: 0,
    otherSamples: 0,
  };
}

function addressLength(type: number): number {
  return type === AddressType.IPV4 ? 4 : type === AddressType.IPV6 ? 16 : type === AddressType.UNKNOWN ? 0 : -1;
}

/**
 * Decodes the datagram header at `off` and walks its `numSamples` sample records; `end` is the end
 * of the UDP payload. A version other than 5 or an unknown address type is MALFORMED, as are
 * bytes left after the last sample; running out of bytes is TRUNCATED. Header fields are set once
 * the fixed part was present; the sample counts cover the complete samples walked.
 */
export function decode(buf: Uint8Array, off: number, end: number, out: Sflow5Header): DecodeResult {
  if (end - off < 8) return Decode.TRUNCATED;
  if (readU32(buf, off) !== VERSION) return Decode.MALFORMED;
  const type = readU32(buf, off + 4);
  const alen = addressLength(type);
  if (alen < 0) return Decode.MALFORMED;
  if (end - off < 8 + alen + 16) return Decode.TRUNCATED;
  out.version = VERSION;
  out.agentAddressType = type;
  out.agentAddressLength = alen;
  for (let i = 0; i < alen; i++) out.agentAddress[i] = buf[off + 8 + i];
  out.agentV4 = alen === 4 ? readI32(buf, off + 8) >>> 0 : 0;
  let p = off + 8 + alen;
  out.subAgentId = readI32(buf, p) >>> 0;
  out.sequenceNumber = readI32(buf, p + 4) >>> 0;
  out.uptime = readI32(buf, p + 8) >>> 0;
  const numSamples = readU32(buf, p + 12);
  out.numSamples = numSamples;
  out.flowSamples = 0;
  out.counterSamples = 0;
  out.otherSamples = 0;
  p += 16;
  // Every sample takes at least 8 bytes, so the loop ends by running out of bytes at worst.
  for (let i = 0; i < numSamples; i++) {
    if (end - p < 8) return Decode.TRUNCATED;
    const format = readU32(buf, p);
    const length = readU32(buf, p + 4);
    const padded = length + ((4 - (length & 3)) & 3);
    if (end - p - 8 < padded) return Decode.TRUNCATED;
    if (format >>> 12 === 0) {
      const f = format & 0xfff;
      if (f === SampleFormat.FLOW || f === SampleFormat.EXPANDED_FLOW) out.flowSamples++;
      else if (f === SampleFormat.COUNTERS || f === SampleFormat.EXPANDED_COUNTERS) out.counterSamples++;
      else out.otherSamples++;
    } else {
      out.otherSamples++;
    }
    p += 8 + padded;
  }
  return p === end ? Decode.OK : Decode.MALFORMED;
}

// ---- encoding -------------------------------------------------------------------------------

/** A 32- or 64-bit counter value; numbers are exact up to 2^53. */
export type Counter = number | bigint;

/** sampled_header (0:1): the first bytes of a sampled packet. */
export interface SampledHeaderRecord {
  kind: 'sampledHeader';
  /** HeaderProtocol; 1 (Ethernet) for a frame. */
  protocol: number;
  /** Length of the packet on the wire, FCS included for layer-2 protocols. */
  frameLength: number;
  /** Bytes removed before the header was taken (e.g. the 4-byte FCS). */
  stripped: number;
  header: Uint8Array;
}

/**
 * A record carried as opaque bytes (any enterprise/format). `data` is zero-padded to 4 bytes and the
 * length word counts the padding, as every sFlow structure is a multiple of 4 bytes anyway.
 */
export interface OpaqueRecord {
  kind: 'opaque';
  enterprise: number;
  format: number;
  data: Uint8Array;
}

export type FlowRecord = SampledHeaderRecord | OpaqueRecord;

/** if_counters (0:1), RFC 2233 ifTable / ifXTable counters. */
export interface InterfaceCounters {
  ifIndex: number;
  ifType: number;
  ifSpeed: Counter;
  /** 0 unknown, 1 full duplex, 2 half duplex, 3 in, 4 out. */
  ifDirection: number;
  /** bit 0 ifAdminStatus up, bit 1 ifOperStatus up. */
  ifStatus: number;
  ifInOctets: Counter;
  ifInUcastPkts: number;
  ifInMulticastPkts: number;
  ifInBroadcastPkts: number;
  ifInDiscards: number;
  ifInErrors: number;
  ifInUnknownProtos: number;
  ifOutOctets: Counter;
  ifOutUcastPkts: number;
  ifOutMulticastPkts: number;
  ifOutBroadcastPkts: number;
  ifOutDiscards: number;
  ifOutErrors: number;
  ifPromiscuousMode: number;
}

export interface InterfaceCountersRecord {
  kind: 'interface';
  counters: InterfaceCounters;
}

export type CounterRecord = InterfaceCountersRecord | OpaqueRecord;

/** flow_sample (0:1). */
export interface FlowSample {
  kind: 'flow';
  sequenceNumber: number;
  /** sFlowDataSource type (0 ifIndex, 1 VLAN, 2 entPhysicalEntry) and 24-bit index. */
  sourceIdType: number;
  sourceIdIndex: number;
  samplingRate: number;
  samplePool: number;
  drops: number;
  /** Interface (ifIndex) the packet came in on / left by; 0x3fffffff: internal. */
  input: number;
  output: number;
  records: readonly FlowRecord[];
}

/** counters_sample (0:2). */
export interface CounterSample {
  kind: 'counters';
  sequenceNumber: number;
  sourceIdType: number;
  sourceIdIndex: number;
  records: readonly CounterRecord[];
}

export type Sample = FlowSample | CounterSample;

export interface Sflow5Datagram {
  /** 4 bytes (IPv4 agent), 16 (IPv6) or 0 (unknown). */
  agentAddress: Uint8Array;
  subAgentId: number;
  sequenceNumber: number;
  uptime: number;
  samples: readonly Sample[];
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function flowRecordLength(r: FlowRecord): number {
  return 8 + (r.kind === 'sampledHeader' ? 16 + pad4(r.header.length) : pad4(r.data.length));
}

function counterRecordLength(r: CounterRecord): number {
  return 8 + (r.kind === 'interface' ? GENERIC_INTERFACE_COUNTERS_LENGTH : pad4(r.data.length));
}

function sampleDataLength(s: Sample): number {
  let n: number;
  if (s.kind === 'flow') {
    n = 32;
    for (const r of s.records) n += flowRecordLength(r);
  } else {
    n = 12;
    for (const r of s.records) n += counterRecordLength(r);
  }
  return n;
}

export function encodingLength(d: Sflow5Datagram): number {
  let n = 8 + d.agentAddress.length + 16;
  for (const s of d.samples) n += 8 + sampleDataLength(s);
  return n;
}

function writeU64(buf: Uint8Array, off: number, v: Counter): void {
  if (typeof v === 'bigint') {
    const u = BigInt.asUintN(64, v);
    writeU32(buf, off, Number(u >> 32n));
    writeU32(buf, off + 4, Number(u & 0xffffffffn));
  } else {
    writeU32(buf, off, Math.floor(v / 0x100000000));
    writeU32(buf, off + 4, v >>> 0);
  }
}

function dataFormat(enterprise: number, format: number): number {
  return ((enterprise & 0xfffff) * 0x1000 + (format & 0xfff)) >>> 0;
}

function sourceId(type: number, index: number): number {
  return (((type & 0xff) << 24) | (index & 0xffffff)) >>> 0;
}

/** Writes bytes as XDR opaque data (no length word), zero-padded to 4; returns the new offset. */
function writePadded(buf: Uint8Array, p: number, data: Uint8Array): number {
  buf.set(data, p);
  const end = p + pad4(data.length);
  buf.fill(0, p + data.length, end);
  return end;
}

/** Writes the datagram; returns bytes written. */
export function encode(d: Sflow5Datagram, buf: Uint8Array, off: number): number {
  const len = encodingLength(d);
  if (buf.length - off < len) throw new RangeError(`sflow5: need ${len} bytes at offset ${off}`);
  const alen = d.agentAddress.length;
  const type = alen === 4 ? AddressType.IPV4 : alen === 16 ? AddressType.IPV6 : alen === 0 ? AddressType.UNKNOWN : -1;
  if (type < 0) throw new RangeError(`sflow5: agent address of ${alen} bytes`);
  writeU32(buf, off, VERSION);
  writeU32(buf, off + 4, type);
  buf.set(d.agentAddress, off + 8);
  let p = off + 8 + alen;
  writeU32(buf, p, d.subAgentId);
  writeU32(buf, p + 4, d.sequenceNumber);
  writeU32(buf, p + 8, d.uptime);
  writeU32(buf, p + 12, d.samples.length);
  p += 16;
  for (const s of d.samples) {
    const dataLength = sampleDataLength(s);
    writeU32(buf, p, dataFormat(0, s.kind === 'flow' ? SampleFormat.FLOW : SampleFormat.COUNTERS));
    writeU32(buf, p + 4, dataLength);
    p += 8;
    writeU32(buf, p, s.sequenceNumber);
    writeU32(buf, p + 4, sourceId(s.sourceIdType, s.sourceIdIndex));
    if (s.kind === 'flow') {
      writeU32(buf, p + 8, s.samplingRate);
      writeU32(buf, p + 12, s.samplePool);
      writeU32(buf, p + 16, s.drops);
      writeU32(buf, p + 20, s.input);
      writeU32(buf, p + 24, s.output);
      writeU32(buf, p + 28, s.records.length);
      p += 32;
      for (const r of s.records) p = writeFlowRecord(r, buf, p);
    } else {
      writeU32(buf, p + 8, s.records.length);
      p += 12;
      for (const r of s.records) p = writeCounterRecord(r, buf, p);
    }
  }
  return p - off;
}

function writeFlowRecord(r: FlowRecord, buf: Uint8Array, p: number): number {
  if (r.kind === 'opaque') return writeOpaque(r, buf, p);
  writeU32(buf, p, dataFormat(0, FlowFormat.SAMPLED_HEADER));
  writeU32(buf, p + 4, 16 + pad4(r.header.length));
  writeU32(buf, p + 8, r.protocol);
  writeU32(buf, p + 12, r.frameLength);
  writeU32(buf, p + 16, r.stripped);
  writeU32(buf, p + 20, r.header.length);
  return writePadded(buf, p + 24, r.header);
}

function writeOpaque(r: OpaqueRecord, buf: Uint8Array, p: number): number {
  writeU32(buf, p, dataFormat(r.enterprise, r.format));
  writeU32(buf, p + 4, pad4(r.data.length));
  return writePadded(buf, p + 8, r.data);
}

function writeCounterRecord(r: CounterRecord, buf: Uint8Array, p: number): number {
  if (r.kind === 'opaque') return writeOpaque(r, buf, p);
  const c = r.counters;
  writeU32(buf, p, dataFormat(0, CounterFormat.GENERIC_INTERFACE));
  writeU32(buf, p + 4, GENERIC_INTERFACE_COUNTERS_LENGTH);
  p += 8;
  writeU32(buf, p, c.ifIndex);
  writeU32(buf, p + 4, c.ifType);
  writeU64(buf, p + 8, c.ifSpeed);
  writeU32(buf, p + 16, c.ifDirection);
  writeU32(buf, p + 20, c.ifStatus);
  writeU64(buf, p + 24, c.ifInOctets);
  writeU32(buf, p + 32, c.ifInUcastPkts);
  writeU32(buf, p + 36, c.ifInMulticastPkts);
  writeU32(buf, p + 40, c.ifInBroadcastPkts);
  writeU32(buf, p + 44, c.ifInDiscards);
  writeU32(buf, p + 48, c.ifInErrors);
  writeU32(buf, p + 52, c.ifInUnknownProtos);
  writeU64(buf, p + 56, c.ifOutOctets);
  writeU32(buf, p + 64, c.ifOutUcastPkts);
  writeU32(buf, p + 68, c.ifOutMulticastPkts);
  writeU32(buf, p + 72, c.ifOutBroadcastPkts);
  writeU32(buf, p + 76, c.ifOutDiscards);
  writeU32(buf, p + 80, c.ifOutErrors);
  writeU32(buf, p + 84, c.ifPromiscuousMode);
  return p + GENERIC_INTERFACE_COUNTERS_LENGTH;
}
