/**
 * Cisco NetFlow version 9 (RFC 3954): a 20-byte packet header and FlowSets. Template FlowSets
 * (ID 0) and Options Template FlowSets (ID 1) describe the Data FlowSets (ID = template ID, 256 and
 * up) that carry the flow records; IDs 2-255 are reserved (RFC 3954 §5.2).
 *
 * Packet header (RFC 3954 §5.1):
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |       Version Number (9)      |            Count              |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                           sysUpTime                           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                           UNIX Secs                           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                       Sequence Number                         |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                        Source ID                              |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Template FlowSet (RFC 3954 §5.2), one or more template records, padded to 4 bytes:
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |       FlowSet ID = 0          |          Length               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |      Template ID (> 255)      |         Field Count           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |        Field Type 1           |         Field Length 1        |   ... Field Count times
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Options Template FlowSet (RFC 3954 §6.1); scope types are their own namespace (1 System,
 * 2 Interface, 3 Line Card, 4 Cache, 5 Template):
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |       FlowSet ID = 1          |          Length               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |         Template ID           |      Option Scope Length      |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |        Option Length          |       Scope 1 Field Type      |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |     Scope 1 Field Length      |               ...             |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |      Option 1 Field Type      |     Option 1 Field Length     |  ...  |   Padding   |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Data FlowSet (RFC 3954 §5.3): FlowSet ID = template ID, Length, records, padding to 4 bytes.
 *
 * Sequence Number counts export packets (not flows) per Source ID (RFC 3954 §5.1), so a collector
 * expects each packet's to be one more than the last. Count is the number of records of every
 * kind (template, options template and data records) in the packet.
 */
import { readI32, readU16, writeU16, writeU32 } from '../proto/bytes.js';
import { Decode, type DecodeResult } from '../proto/result.js';
import {
  type FieldValue,
  type Template,
  type TemplateIterator,
  allFields,
  fixedRecordLength,
  enterTemplateSet,
  setField,
  stopIteration,
  writeValue,
} from './template.js';

export const VERSION = 9;
export const HEADER_LENGTH = 20;
export const FLOWSET_HEADER_LENGTH = 4;
export const TEMPLATE_FLOWSET_ID = 0;
export const OPTIONS_TEMPLATE_FLOWSET_ID = 1;
/** Template IDs and Data FlowSet IDs start here (RFC 3954 §5.2). */
export const MIN_DATA_FLOWSET_ID = 256;
/** Common collector ports (no IANA assignment; Cisco uses 2055, others 9995/9996). */
export const UDP_PORTS = [2055, 9995, 9996] as const;

/** Scope field types of options templates (RFC 3954 §6.1). */
export const Scope = { SYSTEM: 1, INTERFACE: 2, LINE_CARD: 3, CACHE: 4, TEMPLATE: 5 } as const;

export interface Netflow9Header {
  version: number;
  /** Records of every kind in the packet, as the exporter claims. */
  count: number;
  sysUptime: number;
  unixSecs: number;
  /** Export packets sent by this Source ID before this one (modulo 2^32). */
  sequence: number;
  sourceId: number;
  /** FlowSets found by decode, by kind; reserved = IDs 2-255. */
  templateFlowSets: number;
  optionsTemplateFlowSets: number;
  dataFlowSets: number;
  reservedFlowSets: number;
}

export function create(): Netflow9Header {
  return {
    version: VERSION,
    count: 0,
    sysUptime: 0,
    unixSecs: 0,
    sequence: 0,
    sourceId: 0,
    templateFlowSets: 0,
    optionsTemplateFlowSets: 0,
    dataFlowSets: 0,
    reservedFlowSets: 0,
  };
}

/**
 * Decodes the packet header and walks the FlowSets of the packet occupying `off`..`end` (the UDP
 * payload; v9 has no length field). A FlowSet running past `end` is TRUNCATED, one whose length
 * is below 4 is MALFORMED. The header fields are set whenever the 20-byte header was present; the
 * FlowSet counts cover the FlowSets walked before a problem.
 */
export function decode(buf: Uint8Array, off: number, end: number, out: Netflow9Header): DecodeResult {
  if (end - off < HEADER_LENGTH) return Decode.TRUNCATED;
  const version = readU16(buf, off);
  if (version !== VERSION) return Decode.MALFORMED;
  out.version = version;
  out.count = readU16(buf, off + 2);
  out.sysUptime = readI32(buf, off + 4) >>> 0;
  out.unixSecs = readI32(buf, off + 8) >>> 0;
  out.sequence = readI32(buf, off + 12) >>> 0;
  out.sourceId = readI32(buf, off + 16) >>> 0;
  out.templateFlowSets = 0;
  out.optionsTemplateFlowSets = 0;
  out.dataFlowSets = 0;
  out.reservedFlowSets = 0;
  let p = off + HEADER_LENGTH;
  while (p < end) {
    if (end - p < FLOWSET_HEADER_LENGTH) return Decode.TRUNCATED;
    const id = readU16(buf, p);
    const length = readU16(buf, p + 2);
    if (length < FLOWSET_HEADER_LENGTH) return Decode.MALFORMED;
    if (end - p < length) return Decode.TRUNCATED;
    if (id === TEMPLATE_FLOWSET_ID) out.templateFlowSets++;
    else if (id === OPTIONS_TEMPLATE_FLOWSET_ID) out.optionsTemplateFlowSets++;
    else if (id >= MIN_DATA_FLOWSET_ID) out.dataFlowSets++;
    else out.reservedFlowSets++;
    p += length;
  }
  return Decode.OK;
}

/**
 * Starts iterating the template and options template records of the packet at `off`..`end`;
 * call nextTemplate(it) until it returns false, then read it.status.
 */
export function beginTemplates(buf: Uint8Array, off: number, end: number, it: TemplateIterator): DecodeResult {
  it.buf = buf;
  it.end = end;
  it.setEnd = -1;
  it.setId = 0;
  if (end - off < HEADER_LENGTH) return stop(it, Decode.TRUNCATED);
  if (readU16(buf, off) !== VERSION) return stop(it, Decode.MALFORMED);
  it.pos = off + HEADER_LENGTH;
  it.status = Decode.OK;
  return Decode.OK;
}

const stop = stopIteration;

/**
 * Moves to the next template record, filling it.record; false when there is none left (status
 * OK) or the packet is bad (status TRUNCATED or MALFORMED; records before it were good). A record
 * overrunning its FlowSet, a template ID below 256, no fields, or an option scope / option length
 * that is not a multiple of 4 is MALFORMED.
 */
export function nextTemplate(it: TemplateIterator): boolean {
  if (it.status !== Decode.OK) return false;
  const buf = it.buf;
  for (;;) {
    if (it.setEnd >= 0) {
      const rest = it.setEnd - it.pos;
      const p = it.pos;
      const rec = it.record;
      if (it.setId === TEMPLATE_FLOWSET_ID && rest >= 4) {
        const templateId = readU16(buf, p);
        const fieldCount = readU16(buf, p + 2);
        const length = 4 + fieldCount * 4;
        if (templateId < MIN_DATA_FLOWSET_ID || fieldCount === 0 || length > rest) {
          stop(it, Decode.MALFORMED);
          return false;
        }
        rec.scopeFieldCount = 0;
        readFields(buf, p + 4, fieldCount, rec);
        return found(it, templateId, fieldCount, length);
      }
      if (it.setId === OPTIONS_TEMPLATE_FLOWSET_ID && rest >= 6) {
        const templateId = readU16(buf, p);
        const scopeLength = readU16(buf, p + 2);
        const optionLength = readU16(buf, p + 4);
        const length = 6 + scopeLength + optionLength;
        if (
          templateId < MIN_DATA_FLOWSET_ID ||
          (scopeLength & 3) !== 0 ||
          (optionLength & 3) !== 0 ||
          scopeLength + optionLength === 0 ||
          length > rest
        ) {
          stop(it, Decode.MALFORMED);
          return false;
        }
        const fieldCount = (scopeLength + optionLength) >>> 2;
        rec.scopeFieldCount = scopeLength >>> 2;
        readFields(buf, p + 6, fieldCount, rec);
        return found(it, templateId, fieldCount, length);
      }
      // Fewer bytes than a record needs: padding (RFC 3954 §5.2) — on to the next FlowSet.
      it.pos = it.setEnd;
      it.setEnd = -1;
    }
    if (!enterTemplateSet(it, TEMPLATE_FLOWSET_ID, OPTIONS_TEMPLATE_FLOWSET_ID)) return false;
  }
}

function readFields(buf: Uint8Array, p: number, count: number, rec: TemplateIterator['record']): void {
  let recordLength = 0;
  for (let i = 0; i < count; i++, p += 4) {
    const length = readU16(buf, p + 2);
    setField(rec, i, readU16(buf, p), length, 0);
    recordLength += length;
  }
  rec.recordLength = recordLength;
}

function found(it: TemplateIterator, templateId: number, fieldCount: number, length: number): true {
  const rec = it.record;
  rec.setId = it.setId;
  rec.templateId = templateId;
  rec.fieldCount = fieldCount;
  rec.offset = it.pos;
  rec.length = length;
  it.pos += length;
  return true;
}

// ---- encoding -------------------------------------------------------------------------------

/** A FlowSet for encodePacket. Options templates are Templates with `scopeFields`. */
export type FlowSet =
  | { kind: 'template'; templates: readonly Template[] }
  | { kind: 'options'; templates: readonly Template[] }
  | { kind: 'data'; template: Template; records: readonly (readonly FieldValue[])[] };

/** Header fields an encoder takes; Count is computed from the FlowSets. */
export type Netflow9PacketInfo = Pick<Netflow9Header, 'sysUptime' | 'unixSecs' | 'sequence' | 'sourceId'>;

function pad4(n: number): number {
  return (n + 3) & ~3;
}

export function flowSetLength(set: FlowSet): number {
  switch (set.kind) {
    case 'template': {
      let n = FLOWSET_HEADER_LENGTH;
      for (const t of set.templates) n += 4 + t.fields.length * 4;
      return pad4(n);
    }
    case 'options': {
      let n = FLOWSET_HEADER_LENGTH;
      for (const t of set.templates) n += 6 + ((t.scopeFields?.length ?? 0) + t.fields.length) * 4;
      return pad4(n);
    }
    case 'data':
      return pad4(FLOWSET_HEADER_LENGTH + set.records.length * fixedRecordLength(set.template));
  }
}

/** Records a FlowSet holds, as the header's Count counts them. */
export function flowSetRecords(set: FlowSet): number {
  return set.kind === 'data' ? set.records.length : set.templates.length;
}

export function encodingLength(sets: readonly FlowSet[]): number {
  let n = HEADER_LENGTH;
  for (const s of sets) n += flowSetLength(s);
  return n;
}

/** Writes the 20-byte header as given (h.count included); returns bytes written. */
export function encodeHeader(h: Netflow9Header, buf: Uint8Array, off: number): number {
  if (buf.length - off < HEADER_LENGTH) throw new RangeError(`netflow9: need 20 bytes at offset ${off}`);
  writeHeader(h, h.count, buf, off);
  return HEADER_LENGTH;
}

function writeHeader(h: Netflow9PacketInfo, count: number, buf: Uint8Array, off: number): void {
  writeU16(buf, off, VERSION);
  writeU16(buf, off + 2, count);
  writeU32(buf, off + 4, h.sysUptime);
  writeU32(buf, off + 8, h.unixSecs);
  writeU32(buf, off + 12, h.sequence);
  writeU32(buf, off + 16, h.sourceId);
}

/** Writes one FlowSet (padded with zeros to 4 bytes); returns bytes written. */
export function encodeFlowSet(set: FlowSet, buf: Uint8Array, off: number): number {
  const len = flowSetLength(set);
  if (len > 0xffff) throw new RangeError(`netflow9: FlowSet of ${len} bytes`);
  if (buf.length - off < len) throw new RangeError(`netflow9: need ${len} bytes at offset ${off}`);
  let p = off + FLOWSET_HEADER_LENGTH;
  switch (set.kind) {
    case 'template':
      writeU16(buf, off, TEMPLATE_FLOWSET_ID);
      for (const t of set.templates) {
        checkTemplateId(t);
        writeU16(buf, p, t.templateId);
        writeU16(buf, p + 2, t.fields.length);
        p = writeSpecs(t.fields, buf, p + 4);
      }
      break;
    case 'options':
      writeU16(buf, off, OPTIONS_TEMPLATE_FLOWSET_ID);
      for (const t of set.templates) {
        checkTemplateId(t);
        const scope = t.scopeFields ?? [];
        writeU16(buf, p, t.templateId);
        writeU16(buf, p + 2, scope.length * 4);
        writeU16(buf, p + 4, t.fields.length * 4);
        p = writeSpecs(scope, buf, p + 6);
        p = writeSpecs(t.fields, buf, p);
      }
      break;
    case 'data': {
      checkTemplateId(set.template);
      writeU16(buf, off, set.template.templateId);
      const fields = allFields(set.template);
      for (const values of set.records) {
        if (values.length !== fields.length) {
          throw new RangeError(`netflow9: record has ${values.length} values for ${fields.length} fields`);
        }
        for (let i = 0; i < fields.length; i++) p += writeValue(buf, p, fields[i].length, values[i]);
      }
      break;
    }
  }
  writeU16(buf, off + 2, len);
  buf.fill(0, p, off + len); // RFC 3954 §5.2/§5.3: padding to a 32-bit boundary
  return len;
}

function checkTemplateId(t: Template): void {
  if (t.templateId < MIN_DATA_FLOWSET_ID || t.templateId > 0xffff) {
    throw new RangeError(`netflow9: template ID ${t.templateId} outside 256-65535`);
  }
}

function writeSpecs(fields: readonly { type: number; length: number }[], buf: Uint8Array, p: number): number {
  for (const f of fields) {
    writeU16(buf, p, f.type);
    writeU16(buf, p + 2, f.length);
    p += 4;
  }
  return p;
}

/**
 * Writes a whole export packet: header (Count = records in `sets`) then the FlowSets in order.
 * Returns bytes written.
 */
export function encodePacket(h: Netflow9PacketInfo, sets: readonly FlowSet[], buf: Uint8Array, off: number): number {
  const len = encodingLength(sets);
  if (buf.length - off < len) throw new RangeError(`netflow9: need ${len} bytes at offset ${off}`);
  let count = 0;
  for (const s of sets) count += flowSetRecords(s);
  if (count > 0xffff) throw new RangeError(`netflow9: ${count} records do not fit the count field`);
  writeHeader(h, count, buf, off);
  let p = off + HEADER_LENGTH;
  for (const s of sets) p += encodeFlowSet(s, buf, p);
  return p - off;
}
