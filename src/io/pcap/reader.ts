/**
 * Streaming reader for classic pcap and pcapng capture files.
 *
 * The file is read sequentially in chunks into one reusable buffer, so a replay of a large
 * capture costs no per-record allocation beyond the `data` view. Sequential reads (no
 * positioned reads) keep pipes such as /dev/stdin working.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CaptureError } from '../../control/errors.js';
import { readU16, readU32 } from '../../proto/bytes.js';
import {
  BlockType,
  IdbOption,
  LinkType,
  MAX_RECORD_SIZE,
  PCAPNG_BLOCK_OVERHEAD,
  PCAPNG_BYTE_ORDER_MAGIC,
  PCAPNG_MIN_SHB_LENGTH,
  PCAP_FILE_HEADER_SIZE,
  PCAP_MAGIC_MODIFIED,
  PCAP_MAGIC_MODIFIED_SWAPPED,
  PCAP_MAGIC_NS,
  PCAP_MAGIC_NS_SWAPPED,
  PCAP_MAGIC_US,
  PCAP_MAGIC_US_SWAPPED,
  PCAP_RECORD_HEADER_SIZE,
  PCAP_VERSION_MAJOR,
} from './format.js';

export { LinkType, MAX_RECORD_SIZE };

export interface CaptureRecord {
  linkType: number;
  /** Nanoseconds since the epoch as a double: exact to well under a microsecond for current dates. */
  timestampNs: number;
  /** A view into the reader's buffer, valid until the next call to `next()`. */
  data: Buffer;
  originalLength: number;
  /** Index of the pcapng interface within its section; always 0 for classic pcap. */
  interfaceId: number;
}

export function createRecord(): CaptureRecord {
  return { linkType: 0, timestampNs: 0, data: Buffer.alloc(0), originalLength: 0, interfaceId: 0 };
}

export type CaptureFormat = 'pcap' | 'pcapng';

const INITIAL_BUFFER_SIZE = 64 * 1024;
/** A pcapng block around the largest record may also carry options; 64 KiB is ample for those. */
const MAX_BLOCK_SIZE = MAX_RECORD_SIZE + 64 * 1024;
const NS_PER_S = 1e9;
const TWO_POW_32 = 4294967296;

export class CaptureReader {
  readonly path: string;
  private fd: number;
  private buf: Buffer = Buffer.allocUnsafe(INITIAL_BUFFER_SIZE);
  /** Unconsumed bytes are buf[start, end); buf[0] sits at file offset `base`. */
  private start = 0;
  private end = 0;
  private base = 0;
  private eof = false;
  private le = false;
  private count = 0;
  private kind: CaptureFormat = 'pcap';

  // Classic pcap: one link type for the whole file.
  private pcapLinkType = 0;
  private pcapNsPerFraction = 1000;

  // pcapng: interfaces of the current section, indexed by interface id.
  private readonly ifLinkType: number[] = [];
  private readonly ifSnaplen: number[] = [];
  private readonly ifNsPerUnit: number[] = [];
  private readonly ifOffsetNs: number[] = [];

  private constructor(path: string, fd: number) {
    this.path = path;
    this.fd = fd;
  }

  static open(path: string): CaptureReader {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      throw fsError(path, err, 'cannot open');
    }
    const reader = new CaptureReader(path, fd);
    try {
      reader.readFileHeader();
    } catch (err) {
      reader.close();
      throw err;
    }
    return reader;
  }

  get format(): CaptureFormat {
    return this.kind;
  }

  /** Records returned by `next()` so far. */
  get records(): number {
    return this.count;
  }

  /** Fills `out` with the next record; false at a clean end of file. */
  next(out: CaptureRecord): boolean {
    if (this.fd < 0) throw this.error('reader is closed');
    const found = this.kind === 'pcap' ? this.nextPcap(out) : this.nextPcapng(out);
    if (found) this.count++;
    return found;
  }

  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    closeSync(fd);
  }

  private readFileHeader(): void {
    if (!this.fill(4)) {
      throw this.error(this.available() === 0 ? 'empty file' : 'truncated file header');
    }
    const magic = readU32(this.buf, this.start);
    switch (magic) {
      case PCAP_MAGIC_US:
      case PCAP_MAGIC_NS:
      case PCAP_MAGIC_US_SWAPPED:
      case PCAP_MAGIC_NS_SWAPPED:
        this.readPcapHeader(magic);
        return;
      case BlockType.SECTION_HEADER:
        this.kind = 'pcapng';
        if (!this.fill(PCAPNG_MIN_SHB_LENGTH)) throw this.error('truncated file header');
        return; // the SHB is parsed by nextPcapng like any later section
      case PCAP_MAGIC_MODIFIED:
      case PCAP_MAGIC_MODIFIED_SWAPPED:
        throw this.error('modified (Kuznetzov) pcap format is not supported');
      default:
        throw this.error(`not a pcap or pcapng file (magic 0x${hex32(magic)})`);
    }
  }

  private readPcapHeader(magic: number): void {
    this.le = magic === PCAP_MAGIC_US_SWAPPED || magic === PCAP_MAGIC_NS_SWAPPED;
    this.pcapNsPerFraction = magic === PCAP_MAGIC_NS || magic === PCAP_MAGIC_NS_SWAPPED ? 1 : 1000;
    if (!this.fill(PCAP_FILE_HEADER_SIZE)) throw this.error('truncated file header');
    const h = this.start;
    const major = this.u16(h + 4);
    if (major !== PCAP_VERSION_MAJOR) throw this.error(`unsupported pcap version ${major}.${this.u16(h + 6)}`);
    // The upper bits of the link-type field carry FCS information, not the type.
    this.pcapLinkType = this.u32(h + 20) & 0xffff;
    this.start += PCAP_FILE_HEADER_SIZE;
  }

  private nextPcap(out: CaptureRecord): boolean {
    const at = this.offset();
    if (!this.fill(PCAP_RECORD_HEADER_SIZE)) {
      if (this.available() === 0) return false;
      throw this.error(`truncated record at byte ${at}`);
    }
    const h = this.start;
    const caplen = this.u32(h + 8);
    if (caplen > MAX_RECORD_SIZE) {
      throw this.error(`record at byte ${at} is ${caplen} bytes, over the ${MAX_RECORD_SIZE}-byte limit`);
    }
    if (!this.fill(PCAP_RECORD_HEADER_SIZE + caplen)) throw this.error(`truncated record at byte ${at}`);
    const s = this.start; // fill() may have moved the window
    out.linkType = this.pcapLinkType;
    out.timestampNs = this.u32(s) * NS_PER_S + this.u32(s + 4) * this.pcapNsPerFraction;
    out.originalLength = this.u32(s + 12);
    out.interfaceId = 0;
    out.data = this.buf.subarray(s + PCAP_RECORD_HEADER_SIZE, s + PCAP_RECORD_HEADER_SIZE + caplen);
    this.start += PCAP_RECORD_HEADER_SIZE + caplen;
    return true;
  }

  private nextPcapng(out: CaptureRecord): boolean {
    for (;;) {
      const at = this.offset();
      if (!this.fill(8)) {
        if (this.available() === 0) return false;
        throw this.error(`truncated block at byte ${at}`);
      }
      // A new section may switch byte order; its type reads the same either way.
      if (readU32(this.buf, this.start) === BlockType.SECTION_HEADER) this.readByteOrder(at);
      const blockType = this.u32(this.start);
      const length = this.u32(this.start + 4);
      if (length % 4 !== 0 || length < PCAPNG_BLOCK_OVERHEAD) {
        throw this.error(`bad block length ${length} at byte ${at}`);
      }
      if (!isInterpreted(blockType)) {
        this.skipBlock(at, length);
        continue;
      }
      if (length > MAX_BLOCK_SIZE) {
        throw this.error(`block at byte ${at} is ${length} bytes, over the ${MAX_BLOCK_SIZE}-byte limit`);
      }
      if (!this.fill(length)) throw this.error(`truncated block at byte ${at}`);
      this.checkTrailer(at, length, this.u32(this.start + length - 4));
      const found = this.interpretBlock(blockType, length, at, out);
      this.start += length;
      if (found) return true;
    }
  }

  /** Sets the byte order from a Section Header Block's byte-order magic. */
  private readByteOrder(at: number): void {
    if (!this.fill(12)) throw this.error(`truncated block at byte ${at}`);
    const bom = readU32(this.buf, this.start + 8);
    if (bom === PCAPNG_BYTE_ORDER_MAGIC) this.le = false;
    else if (bom === swap32(PCAPNG_BYTE_ORDER_MAGIC)) this.le = true;
    else throw this.error(`bad pcapng byte-order magic 0x${hex32(bom)} at byte ${at + 8}`);
  }

  private interpretBlock(type: number, length: number, at: number, out: CaptureRecord): boolean {
    switch (type) {
      case BlockType.SECTION_HEADER:
        this.readSectionHeader(length, at);
        return false;
      case BlockType.INTERFACE_DESCRIPTION:
        this.readInterface(length, at);
        return false;
      case BlockType.ENHANCED_PACKET:
        return this.readPacket(length, at, out, this.u32(this.start + 8));
      case BlockType.PACKET:
        return this.readPacket(length, at, out, this.u16(this.start + 8));
      case BlockType.SIMPLE_PACKET:
        return this.readSimplePacket(length, at, out);
      default:
        return false;
    }
  }

  private readSectionHeader(length: number, at: number): void {
    if (length < PCAPNG_MIN_SHB_LENGTH) throw this.error(`bad block length ${length} at byte ${at}`);
    const major = this.u16(this.start + 12);
    if (major !== 1) throw this.error(`unsupported pcapng version ${major}.${this.u16(this.start + 14)} at byte ${at}`);
    // Interface ids are scoped to their section.
    this.ifLinkType.length = 0;
    this.ifSnaplen.length = 0;
    this.ifNsPerUnit.length = 0;
    this.ifOffsetNs.length = 0;
  }

  private readInterface(length: number, at: number): void {
    if (length < 20) throw this.error(`bad block length ${length} at byte ${at}`);
    const b = this.start;
    let nsPerUnit = 1000; // if_tsresol defaults to microseconds
    let offsetNs = 0;
    const optionsEnd = b + length - 4;
    for (let o = b + 16; o + 4 <= optionsEnd; ) {
      const code = this.u16(o);
      const len = this.u16(o + 2);
      if (code === IdbOption.END) break;
      if (o + 4 + len > optionsEnd) throw this.error(`bad option length ${len} in block at byte ${at}`);
      if (code === IdbOption.TSRESOL && len >= 1) nsPerUnit = tsresolToNs(this.buf[o + 4]);
      else if (code === IdbOption.TSOFFSET && len >= 8) offsetNs = this.i64(o + 4) * NS_PER_S;
      o += 4 + pad4(len);
    }
    this.ifLinkType.push(this.u16(b + 8));
    this.ifSnaplen.push(this.u32(b + 12));
    this.ifNsPerUnit.push(nsPerUnit);
    this.ifOffsetNs.push(offsetNs);
  }

  /** Enhanced Packet Block and the obsolete Packet Block share the layout after the interface id. */
  private readPacket(length: number, at: number, out: CaptureRecord, interfaceId: number): boolean {
    if (length < 32) throw this.error(`bad block length ${length} at byte ${at}`);
    this.checkInterface(interfaceId, at);
    const b = this.start;
    const caplen = this.u32(b + 20);
    if (caplen > MAX_RECORD_SIZE) {
      throw this.error(`record at byte ${at} is ${caplen} bytes, over the ${MAX_RECORD_SIZE}-byte limit`);
    }
    if (28 + pad4(caplen) + 4 > length) {
      throw this.error(`captured length ${caplen} overruns the block at byte ${at}`);
    }
    const units = this.u32(b + 12) * TWO_POW_32 + this.u32(b + 16);
    out.linkType = this.ifLinkType[interfaceId];
    out.timestampNs = units * this.ifNsPerUnit[interfaceId] + this.ifOffsetNs[interfaceId];
    out.originalLength = this.u32(b + 24);
    out.interfaceId = interfaceId;
    out.data = this.buf.subarray(b + 28, b + 28 + caplen);
    return true;
  }

  private readSimplePacket(length: number, at: number, out: CaptureRecord): boolean {
    if (length < 16) throw this.error(`bad block length ${length} at byte ${at}`);
    this.checkInterface(0, at);
    const b = this.start;
    const originalLength = this.u32(b + 8);
    const snaplen = this.ifSnaplen[0];
    let caplen = Math.min(originalLength, length - 16);
    if (snaplen !== 0) caplen = Math.min(caplen, snaplen);
    if (caplen > MAX_RECORD_SIZE) {
      throw this.error(`record at byte ${at} is ${caplen} bytes, over the ${MAX_RECORD_SIZE}-byte limit`);
    }
    out.linkType = this.ifLinkType[0];
    out.timestampNs = 0; // a Simple Packet Block carries no timestamp
    out.originalLength = originalLength;
    out.interfaceId = 0;
    out.data = this.buf.subarray(b + 12, b + 12 + caplen);
    return true;
  }

  private checkInterface(id: number, at: number): void {
    if (id >= this.ifLinkType.length) {
      const n = this.ifLinkType.length;
      throw this.error(`packet at byte ${at} names interface ${id}, but its section declares ${n} interface${n === 1 ? '' : 's'}`);
    }
  }

  /** Skips a block we do not interpret without buffering it, so its size is unbounded. */
  private skipBlock(at: number, length: number): void {
    let remaining = length - 4;
    while (remaining > 0) {
      if (this.available() === 0 && !this.fill(1)) throw this.error(`truncated block at byte ${at}`);
      const n = Math.min(remaining, this.available());
      this.start += n;
      remaining -= n;
    }
    if (!this.fill(4)) throw this.error(`truncated block at byte ${at}`);
    this.checkTrailer(at, length, this.u32(this.start));
    this.start += 4;
  }

  private checkTrailer(at: number, length: number, trailer: number): void {
    if (trailer !== length) {
      throw this.error(`block length mismatch at byte ${at} (leading ${length}, trailing ${trailer})`);
    }
  }

  /** Makes at least `n` unconsumed bytes available; false if the file ends first. */
  private fill(n: number): boolean {
    if (this.end - this.start >= n) return true;
    if (n > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(MAX_BLOCK_SIZE, Math.max(n, this.buf.length * 2)));
      this.buf.copy(grown, 0, this.start, this.end);
      this.shift(grown);
    } else if (this.start + n > this.buf.length) {
      this.buf.copyWithin(0, this.start, this.end);
      this.shift(this.buf);
    }
    while (this.end - this.start < n && !this.eof) {
      let got: number;
      try {
        got = readSync(this.fd, this.buf, this.end, this.buf.length - this.end, null);
      } catch (err) {
        throw fsError(this.path, err, 'read failed');
      }
      if (got === 0) this.eof = true;
      this.end += got;
    }
    return this.end - this.start >= n;
  }

  /** Moves the unconsumed bytes' bookkeeping to the front of `to`, where they were just copied. */
  private shift(to: Buffer): void {
    this.base += this.start;
    this.end -= this.start;
    this.start = 0;
    this.buf = to;
  }

  private available(): number {
    return this.end - this.start;
  }

  private offset(): number {
    return this.base + this.start;
  }

  private u16(off: number): number {
    return this.le ? this.buf.readUInt16LE(off) : readU16(this.buf, off);
  }

  private u32(off: number): number {
    return this.le ? this.buf.readUInt32LE(off) : readU32(this.buf, off);
  }

  private i64(off: number): number {
    return Number(this.le ? this.buf.readBigInt64LE(off) : this.buf.readBigInt64BE(off));
  }

  private error(what: string): CaptureError {
    return new CaptureError(`${this.path}: ${what}`);
  }
}

function isInterpreted(type: number): boolean {
  return (
    type === BlockType.SECTION_HEADER ||
    type === BlockType.INTERFACE_DESCRIPTION ||
    type === BlockType.ENHANCED_PACKET ||
    type === BlockType.SIMPLE_PACKET ||
    type === BlockType.PACKET
  );
}

/** if_tsresol: high bit clear means 10^-n seconds per unit, set means 2^-n. */
function tsresolToNs(v: number): number {
  const n = v & 0x7f;
  return v & 0x80 ? NS_PER_S / 2 ** n : 10 ** (9 - n);
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function swap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

function hex32(v: number): string {
  return v.toString(16).padStart(8, '0');
}

function fsError(path: string, err: unknown, what: string): CaptureError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new CaptureError(`${path}: file not found`, { cause: err });
  if (code === 'EISDIR') return new CaptureError(`${path}: is a directory`, { cause: err });
  if (code === 'EACCES') return new CaptureError(`${path}: permission denied`, { cause: err });
  return new CaptureError(`${path}: ${what} (${code ?? String(err)})`, { cause: err });
}
