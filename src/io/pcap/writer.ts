/**
 * Classic pcap writer: little-endian, microsecond timestamps, the format every tool reads.
 * Records are staged in one buffer and written out when it fills, so writing allocates nothing.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { CaptureError } from '../../control/errors.js';
import {
  LinkType,
  MAX_RECORD_SIZE,
  PCAP_FILE_HEADER_SIZE,
  PCAP_MAGIC_US,
  PCAP_RECORD_HEADER_SIZE,
  PCAP_VERSION_MAJOR,
  PCAP_VERSION_MINOR,
} from './format.js';

export { LinkType, MAX_RECORD_SIZE };

const BUFFER_SIZE = 1024 * 1024;
const MAX_SECONDS = 0xffffffff;

export class CaptureWriter {
  readonly path: string;
  readonly linkType: number;
  readonly snaplen: number;
  private fd: number;
  private readonly buf = Buffer.allocUnsafe(BUFFER_SIZE);
  private used = 0;
  private count = 0;

  private constructor(path: string, fd: number, linkType: number, snaplen: number) {
    this.path = path;
    this.fd = fd;
    this.linkType = linkType;
    this.snaplen = snaplen;
    const b = this.buf;
    b.writeUInt32LE(PCAP_MAGIC_US, 0);
    b.writeUInt16LE(PCAP_VERSION_MAJOR, 4);
    b.writeUInt16LE(PCAP_VERSION_MINOR, 6);
    b.writeInt32LE(0, 8); // thiszone: timestamps are UTC
    b.writeUInt32LE(0, 12); // sigfigs: always 0 in practice
    b.writeUInt32LE(snaplen, 16);
    b.writeUInt32LE(linkType, 20);
    this.used = PCAP_FILE_HEADER_SIZE;
  }

  /**
   * Creates (or truncates) `path`. The snaplen is capped at the reader's record limit so that
   * whatever this writes can be read back.
   */
  static create(path: string, linkType: number = LinkType.RAW, snaplen = MAX_RECORD_SIZE): CaptureWriter {
    if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff) {
      throw new CaptureError(`${path}: invalid link type ${linkType}`);
    }
    if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > MAX_RECORD_SIZE) {
      throw new CaptureError(`${path}: invalid snaplen ${snaplen} (1..${MAX_RECORD_SIZE})`);
    }
    let fd: number;
    try {
      fd = openSync(path, 'w');
    } catch (err) {
      throw fsError(path, err, 'cannot create');
    }
    return new CaptureWriter(path, fd, linkType, snaplen);
  }

  /** Records written so far. */
  get records(): number {
    return this.count;
  }

  /** Appends `buf[off, off+len)` as one packet, cut to the snaplen; the original length is kept. */
  write(buf: Uint8Array, off: number, len: number, timestampNs: number): void {
    if (this.fd < 0) throw new CaptureError(`${this.path}: writer is closed`);
    if (off < 0 || len < 0 || off + len > buf.length) {
      throw new RangeError(`packet [${off}, ${off + len}) outside a ${buf.length}-byte buffer`);
    }
    // Whole microseconds first: ns/1000 stays below 2^53, so the split into seconds is exact.
    const micros = Math.floor(timestampNs / 1000);
    const seconds = Math.floor(micros / 1e6);
    if (!(seconds >= 0 && seconds <= MAX_SECONDS)) {
      throw new CaptureError(`${this.path}: timestamp ${timestampNs} ns is outside the pcap range`);
    }
    const caplen = Math.min(len, this.snaplen);
    if (this.used + PCAP_RECORD_HEADER_SIZE + caplen > BUFFER_SIZE) this.flush();
    const b = this.buf;
    const h = this.used;
    b.writeUInt32LE(seconds, h);
    b.writeUInt32LE(micros - seconds * 1e6, h + 4);
    b.writeUInt32LE(caplen, h + 8);
    b.writeUInt32LE(len, h + 12);
    b.set(buf.subarray(off, off + caplen), h + PCAP_RECORD_HEADER_SIZE);
    this.used = h + PCAP_RECORD_HEADER_SIZE + caplen;
    this.count++;
  }

  /** Writes staged records to the file. */
  flush(): void {
    if (this.fd < 0) return;
    let done = 0;
    try {
      while (done < this.used) done += writeSync(this.fd, this.buf, done, this.used - done);
    } catch (err) {
      throw fsError(this.path, err, 'write failed');
    }
    this.used = 0;
  }

  close(): void {
    if (this.fd < 0) return;
    try {
      this.flush();
    } finally {
      const fd = this.fd;
      this.fd = -1;
      closeSync(fd);
    }
  }
}

function fsError(path: string, err: unknown, what: string): CaptureError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new CaptureError(`${path}: directory not found`, { cause: err });
  if (code === 'EACCES') return new CaptureError(`${path}: permission denied`, { cause: err });
  return new CaptureError(`${path}: ${what} (${code ?? String(err)})`, { cause: err });
}
