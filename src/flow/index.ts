/**
 * Flow-telemetry protocol detection and a common view of the export header, for sequence and
 * loss tracking per exporter. Every protocol starts with its version number: NetFlow and IPFIX in
 * 16 bits (5, 9, 10), sFlow in 32 bits (5, so the first two bytes are zero).
 */
import { readU16, readU32 } from '../proto/bytes.js';
import { Decode, type DecodeResult } from '../proto/result.js';
import * as ipfix from './ipfix.js';
import * as netflow5 from './netflow5.js';
import * as netflow9 from './netflow9.js';
import * as sflow5 from './sflow5.js';

export { ipfix, netflow5, netflow9, sflow5 };
export * from './template.js';

export type FlowProtocol = 'netflow5' | 'netflow9' | 'ipfix' | 'sflow5';

/** Names the protocol of the datagram at `off` from its version field alone; null if none. */
export function detectFlowProtocol(buf: Uint8Array, off: number, end: number): FlowProtocol | null {
  if (end - off < 2) return null;
  switch (readU16(buf, off)) {
    case netflow5.VERSION:
      return 'netflow5';
    case netflow9.VERSION:
      return 'netflow9';
    case ipfix.VERSION:
      return 'ipfix';
    case 0:
      return end - off >= 4 && readU32(buf, off) === sflow5.VERSION ? 'sflow5' : null;
    default:
      return null;
  }
}

export interface FlowHeaderInfo {
  /** null when decodeFlowHeader did not recognise the datagram. */
  protocol: FlowProtocol | null;
  /**
   * The header's sequence number: NetFlow v5 flows before this datagram, NetFlow v9 packets
   * before it, IPFIX data records before it, sFlow datagrams before it.
   */
  sequence: number;
  /**
   * What the exporter keeps a sequence per: NetFlow v5 engineType << 8 | engineId, NetFlow v9
   * Source ID, IPFIX Observation Domain ID, sFlow sub_agent_id (qualified by `agent`).
   */
  domain: number;
  /** sFlow agent address: IPv4 as a 32-bit number, IPv6 as its 32-bit FNV-1a hash; else 0. */
  agent: number;
  /**
   * Records the header declares: v5 and v9 count, sFlow num samples; -1 for IPFIX, whose header
   * has none (counting its data records needs the templates).
   */
  records: number;
  /**
   * How far the next datagram's sequence should be from this one's: v5 `records`, v9 and sFlow 1,
   * -1 for IPFIX (the number of data records in this message).
   */
  sequenceStep: number;
  /** Full per-protocol headers; only the one named by `protocol` is current. */
  netflow5: netflow5.Netflow5Header;
  netflow9: netflow9.Netflow9Header;
  ipfix: ipfix.IpfixHeader;
  sflow5: sflow5.Sflow5Header;
}

export function createFlowHeaderInfo(): FlowHeaderInfo {
  return {
    protocol: null,
    sequence: 0,
    domain: 0,
    agent: 0,
    records: 0,
    sequenceStep: 0,
    netflow5: netflow5.create(),
    netflow9: netflow9.create(),
    ipfix: ipfix.create(),
    sflow5: sflow5.create(),
  };
}

/**
 * Decodes the export header of the datagram at `off`..`end` (the UDP payload) with the matching
 * protocol decoder. An unrecognised version is MALFORMED with protocol null (TRUNCATED when too few
 * bytes to tell). The common fields are filled whenever the protocol's fixed header was present,
 * whatever the result: on TRUNCATED (a mirror's packet-length limit) the sequence is still good.
 */
export function decodeFlowHeader(buf: Uint8Array, off: number, end: number, out: FlowHeaderInfo): DecodeResult {
  const protocol = detectFlowProtocol(buf, off, end);
  out.protocol = protocol;
  out.agent = 0;
  let r: DecodeResult;
  switch (protocol) {
    case 'netflow5': {
      const h = out.netflow5;
      r = netflow5.decode(buf, off, end, h);
      if (end - off < netflow5.HEADER_LENGTH) break;
      out.sequence = h.flowSequence;
      out.domain = (h.engineType << 8) | h.engineId;
      out.records = h.count;
      out.sequenceStep = h.count;
      break;
    }
    case 'netflow9': {
      const h = out.netflow9;
      r = netflow9.decode(buf, off, end, h);
      if (end - off < netflow9.HEADER_LENGTH) break;
      out.sequence = h.sequence;
      out.domain = h.sourceId;
      out.records = h.count;
      out.sequenceStep = 1;
      break;
    }
    case 'ipfix': {
      const h = out.ipfix;
      r = ipfix.decode(buf, off, end, h);
      if (end - off < ipfix.HEADER_LENGTH || readU16(buf, off + 2) < ipfix.HEADER_LENGTH) break;
      out.sequence = h.sequenceNumber;
      out.domain = h.observationDomainId;
      out.records = -1;
      out.sequenceStep = -1;
      break;
    }
    case 'sflow5': {
      const h = out.sflow5;
      r = sflow5.decode(buf, off, end, h);
      if (!sflowHeaderPresent(buf, off, end)) break;
      out.sequence = h.sequenceNumber;
      out.domain = h.subAgentId;
      out.agent = h.agentAddressLength === 4 ? h.agentV4 : h.agentAddressLength === 16 ? fnv1a(h.agentAddress, 16) : 0;
      out.records = h.numSamples;
      out.sequenceStep = 1;
      break;
    }
    default:
      // Too short to tell, or an sFlow version word cut after its two zero bytes.
      if (end - off < 2 || (end - off < 4 && readU16(buf, off) === 0)) return Decode.TRUNCATED;
      return Decode.MALFORMED;
  }
  return r;
}

/** Whether the sFlow fixed header (through num samples) is within `end` with a known address type. */
function sflowHeaderPresent(buf: Uint8Array, off: number, end: number): boolean {
  if (end - off < 8) return false;
  const type = readU32(buf, off + 4);
  const alen = type === 1 ? 4 : type === 2 ? 16 : type === 0 ? 0 : -1;
  return alen >= 0 && end - off >= 8 + alen + 16;
}

function fnv1a(bytes: Uint8Array, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}
