/**
 * What NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) share: templates that describe data records as a
 * list of (field type, field length) specifiers, a reusable record that template iteration fills
 * without allocating, and the big-endian field-value writer their encoders use.
 */
import { readU16 } from '../proto/bytes.js';
import type { DecodeResult } from '../proto/result.js';
import { Decode } from '../proto/result.js';

/** IPFIX: a field length of 65535 means the value carries its own length (RFC 7011 §7). */
export const VARIABLE_LENGTH = 0xffff;

/** One field specifier of a template, for encoders. */
export interface FieldSpec {
  /** Field type (v9) or Information Element identifier without the enterprise bit (IPFIX). */
  type: number;
  length: number;
  /** IPFIX Private Enterprise Number; absent or 0 for IANA-registered elements. */
  enterprise?: number;
}

/** A template for encoders; with `scopeFields` it is an options template (scope fields first). */
export interface Template {
  templateId: number;
  fields: readonly FieldSpec[];
  scopeFields?: readonly FieldSpec[];
}

/**
 * A field value: a number (written as the low `length` bytes, big-endian; exact up to 2^53), a
 * bigint (same, any width), or bytes (exactly `length` of them; any count for a variable-length
 * IPFIX field).
 */
export type FieldValue = number | bigint | Uint8Array;

/**
 * One template record as iteration decodes it. The arrays are reused and grow only when a template
 * with more fields than any before arrives; entries past `fieldCount` are stale.
 */
export interface TemplateRecord {
  /** The (Flow)Set ID the record came in: template or options template set. */
  setId: number;
  templateId: number;
  /** All field specifiers, scope fields included; 0 in an IPFIX withdrawal. */
  fieldCount: number;
  /** Scope field specifiers, the first `scopeFieldCount` entries; 0 for a plain template. */
  scopeFieldCount: number;
  /** Field type / IE identifier (enterprise bit cleared), length and enterprise number (0: IANA). */
  types: number[];
  lengths: number[];
  enterprises: number[];
  /** Bytes one data record takes, or -1 when a field is variable-length. */
  recordLength: number;
  /** Where the record sits in the buffer, for callers that cache templates as raw bytes. */
  offset: number;
  length: number;
}

/** Cursor over the template records of one message; see the protocol modules' nextTemplate. */
export interface TemplateIterator {
  buf: Uint8Array;
  /** End of the message (or of the bytes present, for NetFlow v9, which has no length field). */
  end: number;
  /** Next unread byte. */
  pos: number;
  /** End of the set being read, or -1 between sets. */
  setEnd: number;
  setId: number;
  /** Why iteration stopped: OK at the end of the message, otherwise the problem met. */
  status: DecodeResult;
  record: TemplateRecord;
}

const EMPTY = new Uint8Array(0);

export function createTemplateRecord(): TemplateRecord {
  return {
    setId: 0,
    templateId: 0,
    fieldCount: 0,
    scopeFieldCount: 0,
    types: [],
    lengths: [],
    enterprises: [],
    recordLength: 0,
    offset: 0,
    length: 0,
  };
}

export function createTemplateIterator(): TemplateIterator {
  return { buf: EMPTY, end: 0, pos: 0, setEnd: -1, setId: 0, status: Decode.OK, record: createTemplateRecord() };
}

/** Bytes a data record of `t` takes with fixed-length fields (throws on a variable-length one). */
export function fixedRecordLength(t: Template): number {
  let n = 0;
  for (const f of t.scopeFields ?? []) n += fixedLength(f);
  for (const f of t.fields) n += fixedLength(f);
  return n;
}

function fixedLength(f: FieldSpec): number {
  if (f.length === VARIABLE_LENGTH) throw new RangeError(`field ${f.type} is variable-length`);
  return f.length;
}

/** All field specifiers of `t` in wire order (scope fields first). */
export function allFields(t: Template): readonly FieldSpec[] {
  return t.scopeFields ? [...t.scopeFields, ...t.fields] : t.fields;
}

/** Bytes `value` takes in a field of `length` (variable-length: RFC 7011 §7 length prefix). */
export function valueLength(length: number, value: FieldValue): number {
  if (length !== VARIABLE_LENGTH) return length;
  if (!(value instanceof Uint8Array)) throw new TypeError('a variable-length field takes bytes');
  return (value.length < 255 ? 1 : 3) + value.length;
}

/** Writes `value` into a field of `length` bytes at `off`; returns bytes written. */
export function writeValue(buf: Uint8Array, off: number, length: number, value: FieldValue): number {
  if (length === VARIABLE_LENGTH) {
    if (!(value instanceof Uint8Array)) throw new TypeError('a variable-length field takes bytes');
    const n = value.length;
    if (n > 0xffff) throw new RangeError(`variable-length value of ${n} bytes`);
    let p = off;
    if (n < 255) {
      buf[p++] = n;
    } else {
      // RFC 7011 §7: 255, then the length in two bytes
      buf[p++] = 255;
      buf[p++] = n >>> 8;
      buf[p++] = n & 0xff;
    }
    buf.set(value, p);
    return p + n - off;
  }
  if (value instanceof Uint8Array) {
    if (value.length !== length) throw new RangeError(`value of ${value.length} bytes for a ${length}-byte field`);
    buf.set(value, off);
  } else if (typeof value === 'bigint') {
    let v = BigInt.asUintN(length * 8, value);
    for (let i = length - 1; i >= 0; i--) {
      buf[off + i] = Number(v & 0xffn);
      v >>= 8n;
    }
  } else {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`field value ${value} is not an unsigned integer`);
    let v = value;
    for (let i = length - 1; i >= 0; i--) {
      buf[off + i] = v % 256;
      v = Math.floor(v / 256);
    }
  }
  return length;
}

/** Sets field `i` of `rec`, growing its arrays on first use of that index. */
export function setField(rec: TemplateRecord, i: number, type: number, length: number, enterprise: number): void {
  rec.types[i] = type;
  rec.lengths[i] = length;
  rec.enterprises[i] = enterprise;
}

/** Ends iteration with `status` (OK at the end of the message, else the problem met). */
export function stopIteration(it: TemplateIterator, status: DecodeResult): DecodeResult {
  it.status = status;
  it.pos = it.end;
  it.setEnd = -1;
  return status;
}

/**
 * Moves `it` into the next (Flow)Set whose ID is `templateSetId` or `optionsSetId`, skipping any
 * other by its length — NetFlow v9 (RFC 3954 §5.2) and IPFIX (RFC 7011 §3.3.2) share the 4-byte
 * set header. False at the end of the message, or on a bad set header (status then says which).
 */
export function enterTemplateSet(it: TemplateIterator, templateSetId: number, optionsSetId: number): boolean {
  const buf = it.buf;
  for (;;) {
    if (it.pos >= it.end) return false;
    if (it.end - it.pos < SET_HEADER_LENGTH) {
      stopIteration(it, Decode.TRUNCATED);
      return false;
    }
    const id = readU16(buf, it.pos);
    const length = readU16(buf, it.pos + 2);
    if (length < SET_HEADER_LENGTH) {
      stopIteration(it, Decode.MALFORMED);
      return false;
    }
    if (it.end - it.pos < length) {
      stopIteration(it, Decode.TRUNCATED);
      return false;
    }
    if (id === templateSetId || id === optionsSetId) {
      it.setId = id;
      it.setEnd = it.pos + length;
      it.pos += SET_HEADER_LENGTH;
      return true;
    }
    it.pos += length;
  }
}

const SET_HEADER_LENGTH = 4;
