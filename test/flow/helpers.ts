/** Test helpers: read back data records by hand, independent of the encoders. */
import { type TemplateIterator, type TemplateRecord, VARIABLE_LENGTH } from '../../src/flow/template.js';

export interface SeenTemplate {
  setId: number;
  templateId: number;
  scopeFieldCount: number;
  fields: { type: number; length: number; enterprise: number }[];
  recordLength: number;
  offset: number;
  length: number;
}

/** Copies the iterator's reusable record into a plain object. */
export function snapshot(rec: TemplateRecord): SeenTemplate {
  const fields = [];
  for (let i = 0; i < rec.fieldCount; i++) {
    fields.push({ type: rec.types[i], length: rec.lengths[i], enterprise: rec.enterprises[i] });
  }
  return {
    setId: rec.setId,
    templateId: rec.templateId,
    scopeFieldCount: rec.scopeFieldCount,
    fields,
    recordLength: rec.recordLength,
    offset: rec.offset,
    length: rec.length,
  };
}

export function collect(it: TemplateIterator, next: (it: TemplateIterator) => boolean): SeenTemplate[] {
  const out: SeenTemplate[] = [];
  while (next(it)) out.push(snapshot(it.record));
  return out;
}

/** Big-endian unsigned integer of up to 6 bytes, or hex beyond that. */
export function readUint(buf: Uint8Array, off: number, len: number): number | string {
  if (len > 6) return Buffer.from(buf.subarray(off, off + len)).toString('hex');
  let v = 0;
  for (let i = 0; i < len; i++) v = v * 256 + buf[off + i];
  return v;
}

/**
 * Splits the records of a data set body (after its 4-byte header) with `fields`, reading
 * variable-length fields per RFC 7011 §7. Stops at padding (fewer bytes than a record's minimum).
 */
export function readRecords(
  buf: Uint8Array,
  start: number,
  end: number,
  fields: readonly { length: number }[],
): (number | string)[][] {
  const out: (number | string)[][] = [];
  const min = fields.reduce((n, f) => n + (f.length === VARIABLE_LENGTH ? 1 : f.length), 0);
  let p = start;
  while (end - p >= min && min > 0) {
    const rec: (number | string)[] = [];
    for (const f of fields) {
      let len = f.length;
      if (len === VARIABLE_LENGTH) {
        len = buf[p++];
        if (len === 255) {
          len = (buf[p] << 8) | buf[p + 1];
          p += 2;
        }
        rec.push(Buffer.from(buf.subarray(p, p + len)).toString('latin1'));
      } else {
        rec.push(readUint(buf, p, len));
      }
      p += len;
    }
    out.push(rec);
  }
  return out;
}

/** Walks the sets/flowsets of a message body: [id, bodyStart, end] for each. */
export function sets(buf: Uint8Array, start: number, end: number): [number, number, number][] {
  const out: [number, number, number][] = [];
  let p = start;
  while (p + 4 <= end) {
    const id = (buf[p] << 8) | buf[p + 1];
    const len = (buf[p + 2] << 8) | buf[p + 3];
    if (len < 4) break;
    out.push([id, p + 4, p + len]);
    p += len;
  }
  return out;
}
