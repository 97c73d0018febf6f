/**
 * IPFIX (RFC 7011): a 16-byte message header, then Sets. Template Sets (ID 2) and Options Template
 * Sets (ID 3) describe the Data Sets (ID = template ID, 256 and up); 0 and 1 are unused (they
 * were NetFlow v9's) and 4-255 reserved (RFC 7011 §3.3.2).
 *
 * Message header (RFC 7011 §3.1):
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |       Version Number (10)     |            Length             |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                           Export Time                         |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                       Sequence Number                         |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                    Observation Domain ID                      |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Set header (§3.3.2), then records, then optional padding shorter than any record:
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |          Set ID               |          Length               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Template record header (§3.4.1); Options Template record header (§3.4.2.2) adds a third word:
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |      Template ID (> 255)      |         Field Count           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |   Scope Field Count (> 0)     |   (options templates only)
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Field specifier (§3.2); E set means an Enterprise Number follows:
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |E|  Information Element ident. |        Field Length           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                      Enterprise Number                        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * A Template record with Field Count 0 withdraws the template (§8.1); Template ID 2 (or 3 in an
 * Options Template Set) withdraws all of them. Sequence Number counts the Data Records (options
 * data included, template records not) sent by the Observation Domain before this message (§3.1).
 */
import { readI32, readU16, readU32, writeU16, writeU32 } from '../proto/bytes.js';
import { Decode, type DecodeResult } from '../proto/result.js';
import {
  type FieldSpec,
  type FieldValue,
  type Template,
  type TemplateIterator,
  type TemplateRecord,
  VARIABLE_LENGTH,
  allFields,
  enterTemplateSet,
  setField,
  stopIteration,
  valueLength,
  writeValue,
} from './template.js';

export const VERSION = 10;
export const HEADER_LENGTH = 16;
export const SET_HEADER_LENGTH = 4;
export const TEMPLATE_SET_ID = 2;
export const OPTIONS_TEMPLATE_SET_ID = 3;
export const MIN_DATA_SET_ID = 256;
/** IANA "ipfix" port (RFC 7011 §10). */
export const UDP_PORT = 4739;
export const ENTERPRISE_BIT = 0x8000;

export interface IpfixHeader {
  version: number;
  /** Message length in bytes, header included. */
  length: number;
  /** Seconds since the UNIX epoch when the message left the exporter. */
  exportTime: number;
  /** Data Records sent by this Observation Domain before this message (modulo 2^32). */
  sequenceNumber: number;
  observationDomainId: number;
  /** Sets found by decode, by kind; reserved = IDs 0, 1 and 4-255. */
  templateSets: number;
  optionsTemplateSets: number;
  dataSets: number;
  reservedSets: number;
}

export function create(): IpfixHeader {
  return {
    version: VERSION,
    length: 0,
    exportTime: 0,
    sequenceNumber: 0,
    observationDomainId: 0,
    templateSets: 0,
    optionsTemplateSets: 0,
    dataSets: 0,
    reservedSets: 0,
  };
}

/**
 * Decodes the message header and walks the Sets of the message at `off`; `end` is the end of the
 * UDP payload. Fewer bytes than Length is TRUNCATED; more (RFC 7011 §10.3.3: one message per
 * datagram), a Length below 16, a Set length below 4 or a Set overrunning the message is
 * MALFORMED. Header fields are set whenever the 16-byte header was present; the Set counts cover
 * the complete Sets walked.
 */
export function decode(buf: Uint8Array, off: number, end: number, out: IpfixHeader): DecodeResult {
  if (end - off < HEADER_LENGTH) return Decode.TRUNCATED;
  const version = readU16(buf, off);
  if (version !== VERSION) return Decode.MALFORMED;
  const length = readU16(buf, off + 2);
  if (length < HEADER_LENGTH) return Decode.MALFORMED;
  out.version = version;
  out.length = length;
  out.exportTime = readI32(buf, off + 4) >>> 0;
  out.sequenceNumber = readI32(buf, off + 8) >>> 0;
  out.observationDomainId = readI32(buf, off + 12) >>> 0;
  out.templateSets = 0;
  out.optionsTemplateSets = 0;
  out.dataSets = 0;
  out.reservedSets = 0;
  const truncated = end - off < length;
  const limit = truncated ? end : off + length;
  // Running out of bytes inside a message cut short is truncation; inside a whole one, a lie.
  const short = truncated ? Decode.TRUNCATED : Decode.MALFORMED;
  let p = off + HEADER_LENGTH;
  while (p < limit) {
    if (limit - p < SET_HEADER_LENGTH) return short;
    const id = readU16(buf, p);
    const setLength = readU16(buf, p + 2);
    if (setLength < SET_HEADER_LENGTH) return Decode.MALFORMED;
    if (limit - p < setLength) return short;
    if (id === TEMPLATE_SET_ID) out.templateSets++;
    else if (id === OPTIONS_TEMPLATE_SET_ID) out.optionsTemplateSets++;
    else if (id >= MIN_DATA_SET_ID) out.dataSets++;
    else out.reservedSets++;
    p += setLength;
  }
  if (truncated) return Decode.TRUNCATED;
  return end - off === length ? Decode.OK : Decode.MALFORMED;
}

/**
 * Starts iterating the template, options template and withdrawal records of the message at
 * `off`..`end`; call nextTemplate(it) until it returns false, then read it.status.
 */
export function beginTemplates(buf: Uint8Array, off: number, end: number, it: TemplateIterator): DecodeResult {
  it.buf = buf;
  it.setEnd = -1;
  it.setId = 0;
  it.end = end;
  if (end - off < HEADER_LENGTH) return stop(it, Decode.TRUNCATED);
  if (readU16(buf, off) !== VERSION) return stop(it, Decode.MALFORMED);
  const length = readU16(buf, off + 2);
  if (length < HEADER_LENGTH) return stop(it, Decode.MALFORMED);
  // A truncated message still yields the templates that arrived whole; iteration then ends TRUNCATED.
  it.end = Math.min(end, off + length);
  it.pos = off + HEADER_LENGTH;
  it.status = Decode.OK;
  return Decode.OK;
}

const stop = stopIteration;

/**
 * Moves to the next template record (withdrawals included: fieldCount 0), filling it.record; false
 * when there is none left (status OK) or the message is bad (TRUNCATED / MALFORMED; records
 * before it were good). A record overrunning its Set, a template ID below 256 (other than an
 * all-withdrawal), or a scope field count of 0 or above the field count is MALFORMED.
 */
export function nextTemplate(it: TemplateIterator): boolean {
  if (it.status !== Decode.OK) return false;
  const buf = it.buf;
  for (;;) {
    if (it.setEnd >= 0) {
      const rest = it.setEnd - it.pos;
      // Fewer than 4 bytes is padding (§3.3.1: shorter than the smallest record, a withdrawal).
      if (rest >= 4) {
        const r = readTemplate(buf, it.pos, it.setEnd, it.setId, it.record);
        if (r !== Decode.OK) {
          stop(it, r);
          return false;
        }
        it.record.setId = it.setId;
        it.record.offset = it.pos;
        it.pos += it.record.length;
        return true;
      }
      it.pos = it.setEnd;
      it.setEnd = -1;
    }
    if (!enterTemplateSet(it, TEMPLATE_SET_ID, OPTIONS_TEMPLATE_SET_ID)) return false;
  }
}

function readTemplate(buf: Uint8Array, p: number, setEnd: number, setId: number, rec: TemplateRecord): DecodeResult {
  const templateId = readU16(buf, p);
  const fieldCount = readU16(buf, p + 2);
  rec.templateId = templateId;
  rec.fieldCount = fieldCount;
  rec.scopeFieldCount = 0;
  rec.recordLength = 0;
  if (fieldCount === 0) {
    // §8.1 withdrawal; template ID = Set ID withdraws every template of that kind
    if (templateId < MIN_DATA_SET_ID && templateId !== setId) return Decode.MALFORMED;
    rec.length = 4;
    return Decode.OK;
  }
  if (templateId < MIN_DATA_SET_ID) return Decode.MALFORMED;
  let q = p + 4;
  if (setId === OPTIONS_TEMPLATE_SET_ID) {
    if (setEnd - q < 2) return Decode.MALFORMED;
    const scope = readU16(buf, q);
    if (scope === 0 || scope > fieldCount) return Decode.MALFORMED; // §3.4.2.2
    rec.scopeFieldCount = scope;
    q += 2;
  }
  let recordLength = 0;
  for (let i = 0; i < fieldCount; i++) {
    if (setEnd - q < 4) return Decode.MALFORMED;
    const id = readU16(buf, q);
    const length = readU16(buf, q + 2);
    let enterprise = 0;
    q += 4;
    if (id & ENTERPRISE_BIT) {
      if (setEnd - q < 4) return Decode.MALFORMED;
      enterprise = readI32(buf, q) >>> 0;
      q += 4;
    }
    setField(rec, i, id & ~ENTERPRISE_BIT, length, enterprise);
    if (length === VARIABLE_LENGTH || recordLength < 0) recordLength = -1;
    else recordLength += length;
  }
  rec.recordLength = recordLength;
  rec.length = q - p;
  return Decode.OK;
}

// ---- encoding -------------------------------------------------------------------------------

/** A Set for encodeMessage. Options templates are Templates with `scopeFields`. */
export type IpfixSet =
  | { kind: 'template'; templates: readonly Template[] }
  | { kind: 'options'; templates: readonly Template[] }
  | { kind: 'data'; template: Template; records: readonly (readonly FieldValue[])[] }
  /** Withdrawal records (§8.1) in a Template Set, or an Options Template Set with `options`. */
  | { kind: 'withdraw'; templateIds: readonly number[]; options?: boolean };

/** Header fields an encoder takes; Length is computed. */
export type IpfixMessageInfo = Pick<IpfixHeader, 'exportTime' | 'sequenceNumber' | 'observationDomainId'>;

function specLength(f: FieldSpec): number {
  return f.enterprise ? 8 : 4;
}

export function setLength(set: IpfixSet): number {
  let n = SET_HEADER_LENGTH;
  switch (set.kind) {
    case 'template':
      for (const t of set.templates) {
        n += 4;
        for (const f of t.fields) n += specLength(f);
      }
      return n;
    case 'options':
      for (const t of set.templates) {
        n += 6;
        for (const f of allFields(t)) n += specLength(f);
      }
      return n;
    case 'data': {
      const fields = allFields(set.template);
      for (const values of set.records) {
        for (let i = 0; i < fields.length; i++) n += valueLength(fields[i].length, values[i]);
      }
      return n;
    }
    case 'withdraw':
      return n + set.templateIds.length * 4;
  }
}

/** Data Records in `sets`: what the next message's Sequence Number must add (§3.1). */
export function dataRecordCount(sets: readonly IpfixSet[]): number {
  let n = 0;
  for (const s of sets) if (s.kind === 'data') n += s.records.length;
  return n;
}

export function encodingLength(sets: readonly IpfixSet[]): number {
  let n = HEADER_LENGTH;
  for (const s of sets) n += setLength(s);
  return n;
}

/** Writes the 16-byte header as given (h.length included); returns bytes written. */
export function encodeHeader(h: IpfixHeader, buf: Uint8Array, off: number): number {
  if (buf.length - off < HEADER_LENGTH) throw new RangeError(`ipfix: need 16 bytes at offset ${off}`);
  writeHeader(h, h.length, buf, off);
  return HEADER_LENGTH;
}

function writeHeader(h: IpfixMessageInfo, length: number, buf: Uint8Array, off: number): void {
  writeU16(buf, off, VERSION);
  writeU16(buf, off + 2, length);
  writeU32(buf, off + 4, h.exportTime);
  writeU32(buf, off + 8, h.sequenceNumber);
  writeU32(buf, off + 12, h.observationDomainId);
}

function checkTemplate(t: Template): void {
  if (t.templateId < MIN_DATA_SET_ID || t.templateId > 0xffff) {
    throw new RangeError(`ipfix: template ID ${t.templateId} outside 256-65535`);
  }
}

function writeSpecs(fields: readonly FieldSpec[], buf: Uint8Array, p: number): number {
  for (const f of fields) {
    if (f.type > 0x7fff) throw new RangeError(`ipfix: element ID ${f.type} above 32767`);
    if (f.enterprise) {
      writeU16(buf, p, f.type | ENTERPRISE_BIT);
      writeU16(buf, p + 2, f.length);
      writeU32(buf, p + 4, f.enterprise);
      p += 8;
    } else {
      writeU16(buf, p, f.type);
      writeU16(buf, p + 2, f.length);
      p += 4;
    }
  }
  return p;
}

/** Writes one Set (no padding); returns bytes written. */
export function encodeSet(set: IpfixSet, buf: Uint8Array, off: number): number {
  const len = setLength(set);
  if (len > 0xffff) throw new RangeError(`ipfix: Set of ${len} bytes`);
  if (buf.length - off < len) throw new RangeError(`ipfix: need ${len} bytes at offset ${off}`);
  let p = off + SET_HEADER_LENGTH;
  switch (set.kind) {
    case 'template':
      writeU16(buf, off, TEMPLATE_SET_ID);
      for (const t of set.templates) {
        checkTemplate(t);
        if (t.fields.length === 0) throw new RangeError('ipfix: a template needs fields (withdraw instead)');
        writeU16(buf, p, t.templateId);
        writeU16(buf, p + 2, t.fields.length);
        p = writeSpecs(t.fields, buf, p + 4);
      }
      break;
    case 'options':
      writeU16(buf, off, OPTIONS_TEMPLATE_SET_ID);
      for (const t of set.templates) {
        checkTemplate(t);
        const scope = t.scopeFields ?? [];
        if (scope.length === 0) throw new RangeError('ipfix: an options template needs scope fields');
        writeU16(buf, p, t.templateId);
        writeU16(buf, p + 2, scope.length + t.fields.length);
        writeU16(buf, p + 4, scope.length);
        p = writeSpecs(scope, buf, p + 6);
        p = writeSpecs(t.fields, buf, p);
      }
      break;
    case 'data': {
      checkTemplate(set.template);
      writeU16(buf, off, set.template.templateId);
      const fields = allFields(set.template);
      for (const values of set.records) {
        if (values.length !== fields.length) {
          throw new RangeError(`ipfix: record has ${values.length} values for ${fields.length} fields`);
        }
        for (let i = 0; i < fields.length; i++) p += writeValue(buf, p, fields[i].length, values[i]);
      }
      break;
    }
    case 'withdraw':
      writeU16(buf, off, set.options ? OPTIONS_TEMPLATE_SET_ID : TEMPLATE_SET_ID);
      for (const id of set.templateIds) {
        writeU16(buf, p, id);
        writeU16(buf, p + 2, 0);
        p += 4;
      }
      break;
  }
  writeU16(buf, off + 2, len);
  return len;
}

/** Writes a whole message: header (Length computed) then the Sets in order; returns bytes written. */
export function encodeMessage(h: IpfixMessageInfo, sets: readonly IpfixSet[], buf: Uint8Array, off: number): number {
  const len = encodingLength(sets);
  if (len > 0xffff) throw new RangeError(`ipfix: message of ${len} bytes`);
  if (buf.length - off < len) throw new RangeError(`ipfix: need ${len} bytes at offset ${off}`);
  writeHeader(h, len, buf, off);
  let p = off + HEADER_LENGTH;
  for (const s of sets) p += encodeSet(s, buf, p);
  return p - off;
}
