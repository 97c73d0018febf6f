import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { CaptureError } from '../../src/control/errors.js';
import { CaptureReader, LinkType, createRecord, type CaptureRecord } from '../../src/io/pcap/reader.js';
import { CaptureWriter } from '../../src/io/pcap/writer.js';

const dir = mkdtempSync(join(tmpdir(), 'mg-pcap-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileSeq = 0;
function tempPath(ext = 'pcap'): string {
  return join(dir, `f${fileSeq++}.${ext}`);
}

/** Builds files field by field, in the byte order the spec layout says, independent of the code under test. */
class Bytes {
  private readonly out: number[] = [];
  constructor(private readonly le: boolean) {}
  u8(v: number): this {
    this.out.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.le ? this.u8(v).u8(v >>> 8) : this.u8(v >>> 8).u8(v);
  }
  u32(v: number): this {
    return this.le ? this.u16(v & 0xffff).u16(v >>> 16) : this.u16(v >>> 16).u16(v & 0xffff);
  }
  u64(v: bigint): this {
    const hi = Number(BigInt.asUintN(64, v) >> 32n);
    const lo = Number(BigInt.asUintN(64, v) & 0xffffffffn);
    return this.le ? this.u32(lo).u32(hi) : this.u32(hi).u32(lo);
  }
  /** pcapng packet timestamps: high word first whatever the byte order, unlike true 64-bit fields. */
  ts(v: bigint): this {
    return this.u32(Number(v >> 32n)).u32(Number(v & 0xffffffffn));
  }
  raw(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.out.push(b[i]);
    return this;
  }
  pad4(): this {
    while (this.out.length % 4 !== 0) this.out.push(0);
    return this;
  }
  get length(): number {
    return this.out.length;
  }
  buffer(): Buffer {
    return Buffer.from(this.out);
  }
}

/** pcapng block: type, total length, body padded to 32 bits, total length again. */
function block(le: boolean, type: number, body: (b: Bytes) => void, trailer?: number): Buffer {
  const inner = new Bytes(le);
  body(inner);
  inner.pad4();
  const total = inner.length + 12;
  return new Bytes(le).u32(type).u32(total).raw(inner.buffer()).u32(trailer ?? total).buffer();
}

function option(b: Bytes, code: number, value: ArrayLike<number>): void {
  b.u16(code).u16(value.length).raw(value).pad4();
}

function shb(le: boolean): Buffer {
  return block(le, 0x0a0d0d0a, (b) => {
    b.u32(0x1a2b3c4d).u16(1).u16(0).u64(-1n);
    option(b, 4, Buffer.from('mirrorgate test')); // shb_userappl, ignored
    b.u16(0).u16(0);
  });
}

function idb(le: boolean, linkType: number, snaplen: number, options: (b: Bytes) => void = () => {}): Buffer {
  return block(le, 1, (b) => {
    b.u16(linkType).u16(0).u32(snaplen);
    options(b);
  });
}

function epb(le: boolean, iface: number, ts: bigint, data: number[], originalLength = data.length): Buffer {
  return block(le, 6, (b) => {
    b.u32(iface).ts(ts).u32(data.length).u32(originalLength).raw(data).pad4();
    option(b, 2, new Bytes(le).u32(0x1).buffer()); // epb_flags, ignored
    b.u16(0).u16(0);
  });
}

function readAll(path: string): { records: Array<Omit<CaptureRecord, 'data'> & { data: number[] }>; reader: CaptureReader } {
  const reader = CaptureReader.open(path);
  const rec = createRecord();
  const records = [];
  try {
    while (reader.next(rec)) records.push({ ...rec, data: [...rec.data] });
  } finally {
    reader.close();
  }
  return { records, reader };
}

function expectCaptureError(fn: () => unknown, fragment: string | RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown !== undefined, `expected a CaptureError matching ${fragment}, nothing was thrown`);
  assert.ok(thrown instanceof CaptureError, `expected a CaptureError, got ${String(thrown)}`);
  assert.equal(thrown.code, 'MG_ERR_CAPTURE');
  if (typeof fragment === 'string') assert.ok(thrown.message.includes(fragment), `"${thrown.message}" lacks "${fragment}"`);
  else assert.match(thrown.message, fragment);
}

/** Reads a file made of `bytes` to the end; errors are left to the caller. */
function readBytes(bytes: Buffer): { path: string; count: number } {
  const path = tempPath();
  writeFileSync(path, bytes);
  const reader = CaptureReader.open(path);
  const rec = createRecord();
  let count = 0;
  try {
    while (reader.next(rec)) count++;
  } finally {
    reader.close();
  }
  return { path, count };
}

/** Doubles near 1.7e18 are 256 ns apart, so nanosecond values are compared to within that. */
function assertNear(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1024, `${what}: ${actual} != ${expected}`);
}

function classicHeader(le: boolean, magic: number, linkType: number, snaplen = 65535): Bytes {
  // The magic is written in the file's own byte order, which is how readers detect it.
  return new Bytes(le).u32(magic).u16(2).u16(4).u32(0).u32(0).u32(snaplen).u32(linkType);
}

// ---------------------------------------------------------------------------------------------
// Round trips

for (const linkType of [LinkType.ETHERNET, LinkType.RAW]) {
  test(`writer → reader round trip, link type ${linkType}`, () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            data: fc.uint8Array({ maxLength: 3000 }),
            us: fc.integer({ min: 0, max: 0xffffffff * 1e6 + 999999 }),
          }),
          { maxLength: 60 },
        ),
        fc.integer({ min: 1, max: 262144 }),
        (packets, snaplen) => {
          const path = tempPath();
          const w = CaptureWriter.create(path, linkType, snaplen);
          for (const p of packets) w.write(p.data, 0, p.data.length, p.us * 1000);
          assert.equal(w.records, packets.length);
          w.close();

          const r = CaptureReader.open(path);
          const rec = createRecord();
          try {
            assert.equal(r.format, 'pcap');
            for (const p of packets) {
              assert.ok(r.next(rec));
              assert.equal(rec.linkType, linkType);
              assert.equal(rec.interfaceId, 0);
              assert.equal(rec.originalLength, p.data.length);
              assert.deepEqual(rec.data, Buffer.from(p.data.subarray(0, snaplen)));
              assertNear(rec.timestampNs, p.us * 1000, 'timestamp');
            }
            assert.equal(r.next(rec), false);
            assert.equal(r.next(rec), false, 'end of file is sticky');
            assert.equal(r.records, packets.length);
          } finally {
            r.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
}

test('round trip across writer flushes, reader chunk refills and buffer growth', () => {
  const path = tempPath();
  const sizes: number[] = [];
  for (let i = 0; i < 1500; i++) sizes.push(i === 700 ? 262144 : i === 701 ? 200_000 : 60 + ((i * 7919) % 1441));
  const w = CaptureWriter.create(path, LinkType.ETHERNET);
  const src = Buffer.alloc(262144);
  for (let i = 0; i < sizes.length; i++) {
    src.fill(i & 0xff, 0, sizes[i]);
    src.writeUInt32BE(i, 0);
    w.write(src, 0, sizes[i], 1_700_000_000e9 + i * 1000);
  }
  w.close();
  w.close(); // idempotent

  const r = CaptureReader.open(path);
  const rec = createRecord();
  for (let i = 0; i < sizes.length; i++) {
    assert.ok(r.next(rec), `record ${i}`);
    assert.equal(rec.data.length, sizes[i], `record ${i} length`);
    assert.equal(rec.data.readUInt32BE(0), i);
    assert.equal(rec.data[rec.data.length - 1], i & 0xff);
    assertNear(rec.timestampNs, 1_700_000_000e9 + i * 1000, `record ${i} timestamp`);
  }
  assert.equal(r.next(rec), false);
  r.close();
});

test('writer emits the classic little-endian microsecond layout byte for byte', () => {
  const path = tempPath();
  const w = CaptureWriter.create(path, LinkType.ETHERNET, 4);
  w.write(Uint8Array.of(9, 1, 2, 3, 4, 5, 9), 1, 5, 1_700_000_000_123_456_789);
  w.close();
  const expected = new Bytes(true)
    .raw([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]) // magic, version 2.4
    .u32(0).u32(0).u32(4).u32(1) // thiszone, sigfigs, snaplen, link type
    .u32(1_700_000_000).u32(123_456).u32(4).u32(5) // seconds, microseconds, caplen, original
    .raw([1, 2, 3, 4])
    .buffer();
  assert.deepEqual(readFileSync(path), expected);
});

test('writer defaults to LINKTYPE_RAW and rejects bad arguments', () => {
  const path = tempPath();
  const w = CaptureWriter.create(path);
  w.close();
  assert.equal(readFileSync(path).readUInt32LE(20), LinkType.RAW);
  assert.equal(readFileSync(path).readUInt32LE(16), 262144);
  expectCaptureError(() => w.write(Buffer.alloc(1), 0, 1, 0), 'writer is closed');
  expectCaptureError(() => CaptureWriter.create(tempPath(), LinkType.RAW, 0), 'invalid snaplen');
  expectCaptureError(() => CaptureWriter.create(tempPath(), 70000), 'invalid link type');
  expectCaptureError(() => CaptureWriter.create(join(dir, 'no', 'such', 'dir.pcap')), 'directory not found');
  const w2 = CaptureWriter.create(tempPath());
  expectCaptureError(() => w2.write(Buffer.alloc(1), 0, 1, -5000), 'outside the pcap range');
  w2.close();
});

// ---------------------------------------------------------------------------------------------
// Golden files built from the spec layout

test('classic pcap, big-endian, microseconds', () => {
  const bytes = classicHeader(false, 0xa1b2c3d4, LinkType.ETHERNET)
    .u32(1_700_000_000).u32(123_456).u32(4).u32(60).raw([0xde, 0xad, 0xbe, 0xef])
    .u32(1).u32(999_999).u32(0).u32(0)
    .buffer();
  assert.deepEqual([...bytes.subarray(0, 4)], [0xa1, 0xb2, 0xc3, 0xd4]);
  const path = tempPath();
  writeFileSync(path, bytes);
  const { records, reader } = readAll(path);
  assert.equal(reader.records, 2);
  assert.equal(records.length, 2);
  assert.deepEqual(records[0].data, [0xde, 0xad, 0xbe, 0xef]);
  assert.equal(records[0].linkType, 1);
  assert.equal(records[0].originalLength, 60);
  assertNear(records[0].timestampNs, 1_700_000_000_123_456_000, 'timestamp');
  assert.equal(records[1].timestampNs, 1_999_999_000);
  assert.deepEqual(records[1].data, []);
});

test('classic pcap, little-endian, nanoseconds, link type with FCS bits', () => {
  const bytes = classicHeader(true, 0xa1b23c4d, 0x1000_0000 | LinkType.RAW)
    .u32(1).u32(999_999_999).u32(3).u32(3).raw([0x45, 0, 0])
    .buffer();
  assert.deepEqual([...bytes.subarray(0, 4)], [0x4d, 0x3c, 0xb2, 0xa1]);
  const path = tempPath();
  writeFileSync(path, bytes);
  const { records } = readAll(path);
  assert.equal(records.length, 1);
  assert.equal(records[0].timestampNs, 1_999_999_999);
  assert.equal(records[0].linkType, LinkType.RAW);
  assert.deepEqual(records[0].data, [0x45, 0, 0]);
});

test('pcapng: two sections of opposite byte order, several interfaces, every packet block kind', () => {
  const le = true;
  const be = false;
  const bytes = Buffer.concat([
    shb(le),
    idb(le, LinkType.ETHERNET, 8, (b) => {
      option(b, 2, Buffer.from('eth0')); // if_name, ignored
      option(b, 9, [9]); // if_tsresol: nanoseconds
      b.u16(0).u16(0);
    }),
    epb(le, 0, 1_700_000_000_000_000_123n, [1, 2, 3, 4, 5]),
    block(le, 0x00000bad, (b) => b.raw([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])), // unknown: skipped
    block(le, 0x40000bad, (b) => b.raw(new Array(70_000).fill(7))), // bigger than the read buffer, skipped
    idb(le, LinkType.RAW, 0), // default resolution: microseconds
    epb(le, 1, 1_700_000_000_123_456n, [6, 5, 4, 3, 2, 1], 1500),
    block(le, 3, (b) => b.u32(10).raw([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])), // SPB, cut to IDB 0's snaplen 8
    block(le, 3, (b) => b.u32(3).raw([0xa, 0xb, 0xc])),
    shb(be),
    idb(be, LinkType.IPV4, 65535, (b) => {
      option(b, 9, [0x83]); // if_tsresol: 2^-3 s
      option(b, 14, new Bytes(be).u64(1000n).buffer()); // if_tsoffset: 1000 s
      b.u16(0).u16(0);
    }),
    epb(be, 0, 16n, [0x45]),
    block(be, 2, (b) => b.u16(0).u16(0).ts(8n).u32(3).u32(20).raw([7, 8, 9]).pad4()), // obsolete Packet Block
  ]);
  assert.deepEqual([...bytes.subarray(8, 12)], [0x4d, 0x3c, 0x2b, 0x1a], 'first section is little-endian');

  const path = tempPath('pcapng');
  writeFileSync(path, bytes);
  const { records, reader } = readAll(path);
  assert.equal(reader.format, 'pcapng');
  assert.equal(reader.records, 6);
  const summary = records.map(({ timestampNs, data, ...rest }) => ({ ...rest, data }));
  assert.deepEqual(summary, [
    { linkType: 1, originalLength: 5, interfaceId: 0, data: [1, 2, 3, 4, 5] },
    { linkType: 101, originalLength: 1500, interfaceId: 1, data: [6, 5, 4, 3, 2, 1] },
    { linkType: 1, originalLength: 10, interfaceId: 0, data: [0, 1, 2, 3, 4, 5, 6, 7] },
    { linkType: 1, originalLength: 3, interfaceId: 0, data: [0xa, 0xb, 0xc] },
    { linkType: 228, originalLength: 1, interfaceId: 0, data: [0x45] },
    { linkType: 228, originalLength: 20, interfaceId: 0, data: [7, 8, 9] },
  ]);
  assertNear(records[0].timestampNs, 1_700_000_000_000_000_123, 'nanosecond interface');
  assertNear(records[1].timestampNs, 1_700_000_000_123_456_000, 'microsecond interface');
  assert.equal(records[2].timestampNs, 0, 'simple packets carry no timestamp');
  assert.equal(records[4].timestampNs, 1_002_000_000_000, 'binary resolution plus offset');
  assert.equal(records[5].timestampNs, 1_001_000_000_000);
});

// ---------------------------------------------------------------------------------------------
// Bad files

test('missing, empty and unrecognised files', () => {
  expectCaptureError(() => CaptureReader.open(join(dir, 'absent.pcap')), /absent\.pcap: file not found$/);
  const empty = tempPath();
  writeFileSync(empty, Buffer.alloc(0));
  expectCaptureError(() => CaptureReader.open(empty), `${empty}: empty file`);
  expectCaptureError(() => CaptureReader.open(dir), 'is a directory');
  const bad = tempPath();
  writeFileSync(bad, Buffer.concat([Buffer.from([0x12, 0x34, 0x56, 0x78]), Buffer.alloc(40)]));
  expectCaptureError(() => CaptureReader.open(bad), `${bad}: not a pcap or pcapng file (magic 0x12345678)`);
  expectCaptureError(() => readBytes(Buffer.from([0xd4, 0xc3])), 'truncated file header');
  expectCaptureError(() => readBytes(classicHeader(false, 0xa1b2cd34, 1).buffer()), 'modified (Kuznetzov)');
  expectCaptureError(() => readBytes(new Bytes(true).u32(0xa1b2c3d4).u16(1).u16(0).raw(new Array(16).fill(0)).buffer()), 'unsupported pcap version 1.0');
});

test('truncated classic headers and records', () => {
  expectCaptureError(() => readBytes(classicHeader(true, 0xa1b2c3d4, 1).buffer().subarray(0, 10)), 'truncated file header');
  const full = classicHeader(true, 0xa1b2c3d4, 1).u32(0).u32(0).u32(4).u32(4).raw([1, 2, 3, 4]);
  // Record header cut short after one good record.
  const shortHeader = Buffer.concat([full.buffer(), Buffer.alloc(10)]);
  expectCaptureError(() => readBytes(shortHeader), 'truncated record at byte 44');
  // Record body cut short: the good record is delivered before the error.
  const shortBody = Buffer.concat([full.buffer(), new Bytes(true).u32(0).u32(0).u32(100).u32(100).buffer(), Buffer.alloc(50)]);
  const path = tempPath();
  writeFileSync(path, shortBody);
  const r = CaptureReader.open(path);
  const rec = createRecord();
  assert.ok(r.next(rec));
  expectCaptureError(() => r.next(rec), `${path}: truncated record at byte 44`);
  r.close();
  expectCaptureError(() => r.next(rec), 'reader is closed');
  const huge = classicHeader(true, 0xa1b2c3d4, 1).u32(0).u32(0).u32(300_000).u32(300_000).buffer();
  expectCaptureError(() => readBytes(huge), 'record at byte 24 is 300000 bytes, over the 262144-byte limit');
});

test('bad pcapng blocks', () => {
  const le = true;
  const head = Buffer.concat([shb(le), idb(le, 1, 0)]);
  const at = head.length;
  const withBlock = (...blocks: Buffer[]) => Buffer.concat([head, ...blocks]);

  const odd = withBlock(new Bytes(le).u32(6).u32(13).raw(new Array(12).fill(0)).buffer());
  expectCaptureError(() => readBytes(odd), `bad block length 13 at byte ${at}`);
  const tiny = withBlock(new Bytes(le).u32(0xbad).u32(8).buffer());
  expectCaptureError(() => readBytes(tiny), `bad block length 8 at byte ${at}`);
  const mismatch = withBlock(block(le, 6, (b) => b.u32(0).ts(0n).u32(0).u32(0), 36));
  expectCaptureError(() => readBytes(mismatch), `block length mismatch at byte ${at} (leading 32, trailing 36)`);
  const skippedMismatch = withBlock(block(le, 0xbad, (b) => b.u32(0), 99));
  expectCaptureError(() => readBytes(skippedMismatch), `block length mismatch at byte ${at} (leading 16, trailing 99)`);
  const cut = withBlock(epb(le, 0, 0n, [1, 2, 3, 4]).subarray(0, 20));
  expectCaptureError(() => readBytes(cut), `truncated block at byte ${at}`);
  const cutSkipped = withBlock(block(le, 0xbad, (b) => b.raw(new Array(100_000).fill(1))).subarray(0, 90_000));
  expectCaptureError(() => readBytes(cutSkipped), `truncated block at byte ${at}`);
  const overrun = withBlock(block(le, 6, (b) => b.u32(0).ts(0n).u32(64).u32(64).raw([1, 2, 3, 4])));
  expectCaptureError(() => readBytes(overrun), `captured length 64 overruns the block at byte ${at}`);
  const badBom = Buffer.from(shb(le));
  badBom.writeUInt32LE(0x11223344, 8);
  expectCaptureError(() => readBytes(badBom), 'bad pcapng byte-order magic 0x44332211 at byte 8');
  expectCaptureError(() => readBytes(shb(le).subarray(0, 20)), 'truncated file header');
  // Interface ids are per section: the second section has only one interface.
  const scoped = Buffer.concat([head, idb(le, 1, 0), shb(le), idb(le, 1, 0), epb(le, 1, 0n, [1])]);
  expectCaptureError(() => readBytes(scoped), 'names interface 1, but its section declares 1 interface');
  const spbFirst = Buffer.concat([shb(le), block(le, 3, (b) => b.u32(1).raw([1]))]);
  expectCaptureError(() => readBytes(spbFirst), 'declares 0 interfaces');
});

// ---------------------------------------------------------------------------------------------
// Interoperability with Wireshark's tools

function tool(name: string, pkg: string): string {
  for (const d of ['/usr/bin', '/usr/sbin', '/usr/local/bin']) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  assert.fail(`${name} is required for the interop test but was not found; install the Debian package "${pkg}"`);
}

function run(bin: string, args: string[]): string {
  return execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('interop: tshark reads our pcap; editcap conversions read back identically', () => {
  const tshark = tool('tshark', 'tshark');
  const editcap = tool('editcap', 'wireshark-common');

  const path = tempPath();
  const w = CaptureWriter.create(path, LinkType.ETHERNET, 1000);
  const sent: Array<{ data: Buffer; len: number; ns: number }> = [];
  for (let i = 0; i < 300; i++) {
    const len = 14 + ((i * 613) % 1487);
    const data = Buffer.alloc(len, i);
    data.writeUInt16BE(0x0800, 12);
    const ns = 1_700_000_000e9 + i * 1_234_000;
    w.write(data, 0, len, ns);
    sent.push({ data: data.subarray(0, Math.min(len, 1000)), len, ns });
  }
  w.close();

  const frames = run(tshark, ['-r', path, '-T', 'fields', '-e', 'frame.number']).split('\n').filter((l) => l.trim() !== '');
  assert.equal(frames.length, sent.length, 'tshark frame count');

  for (const [format, expected] of [['pcapng', 'pcapng'], ['nsecpcap', 'pcap']] as const) {
    const converted = tempPath(format);
    run(editcap, ['-F', format, path, converted]);
    const r = CaptureReader.open(converted);
    assert.equal(r.format, expected);
    const rec = createRecord();
    for (let i = 0; i < sent.length; i++) {
      assert.ok(r.next(rec), `${format} record ${i}`);
      assert.equal(rec.linkType, LinkType.ETHERNET);
      assert.ok(rec.data.equals(sent[i].data), `${format} record ${i} bytes differ`);
      assert.equal(rec.originalLength, sent[i].len);
      assertNear(rec.timestampNs, sent[i].ns, `${format} record ${i} timestamp`);
    }
    assert.equal(r.next(rec), false);
    r.close();
  }

  const raw = tempPath();
  const wr = CaptureWriter.create(raw);
  wr.write(Buffer.from('450000140000000040000000c0a80001c0a80002', 'hex'), 0, 20, 0);
  wr.close();
  const protos = run(tshark, ['-r', raw, '-T', 'fields', '-e', 'ip.dst']).trim();
  assert.equal(protos, '192.168.0.2', 'tshark decodes LINKTYPE_RAW as IPv4');
});
