import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as netflow5 from '../../src/flow/netflow5.js';
import { Decode } from '../../src/proto/result.js';

function record(i: number): netflow5.Netflow5Record {
  return {
    srcAddr: 0xc0000201 + i, // 192.0.2.1 + i
    dstAddr: 0xcb007100 + i, // 203.0.113.0 + i
    nextHop: 0xc6336401, // 198.51.100.1
    input: 1 + i,
    output: 2,
    packets: 10 * (i + 1),
    octets: 1500 * (i + 1),
    first: 1000 + i,
    last: 2000 + i,
    srcPort: 40000 + i,
    dstPort: 443,
    tcpFlags: 0x1b,
    protocol: 6,
    tos: 0x28,
    srcAs: 64496,
    dstAs: 64511,
    srcMask: 24,
    dstMask: 16,
  };
}

const header: netflow5.Netflow5Header = {
  version: 5,
  count: 0, // ignored by encode
  sysUptime: 123456789,
  unixSecs: 1700000000,
  unixNsecs: 999999999,
  flowSequence: 0xfffffff0,
  engineType: 1,
  engineId: 7,
  samplingInterval: (1 << 14) | 100,
};

test('netflow5: round trip at an offset inside a larger buffer', () => {
  const records = [record(0), record(1), record(2)];
  const len = netflow5.encodingLength(3);
  assert.equal(len, 24 + 3 * 48);
  const buf = new Uint8Array(len + 100).fill(0xee);
  const off = 37;
  assert.equal(netflow5.encode(header, records, buf, off), len);
  assert.equal(buf[off - 1], 0xee);
  assert.equal(buf[off + len], 0xee, 'nothing written past the datagram');

  const h = netflow5.create();
  assert.equal(netflow5.decode(buf, off, off + len, h), Decode.OK);
  assert.deepEqual(h, { ...header, count: 3 });
  const r = netflow5.createRecord();
  for (let i = 0; i < 3; i++) {
    assert.equal(netflow5.decodeRecord(buf, off, off + len, i, r), Decode.OK);
    assert.deepEqual(r, record(i));
  }
  assert.equal(netflow5.decodeRecord(buf, off, off + len, 3, r), Decode.TRUNCATED);
});

test('netflow5: wire layout of the header (Cisco v5 format)', () => {
  const buf = new Uint8Array(netflow5.encodingLength(1));
  netflow5.encode(header, [record(0)], buf, 0);
  assert.deepEqual(
    [...buf.subarray(0, 24)],
    [0, 5, 0, 1, 0x07, 0x5b, 0xcd, 0x15, 0x65, 0x53, 0xf1, 0x00, 0x3b, 0x9a, 0xc9, 0xff, 0xff, 0xff, 0xff, 0xf0, 1, 7, 0x40, 100],
  );
  // record: srcaddr, dstaddr, nexthop, then the pads at 36 and 46-47 are zero
  assert.deepEqual([...buf.subarray(24, 28)], [192, 0, 2, 1]);
  assert.equal(buf[24 + 36], 0);
  assert.equal(buf[24 + 37], 0x1b); // tcp_flags
  assert.equal(buf[24 + 38], 6); // prot
  assert.deepEqual([...buf.subarray(24 + 46, 24 + 48)], [0, 0]);
});

test('netflow5: truncated versus malformed', () => {
  const len = netflow5.encodingLength(2);
  const buf = new Uint8Array(len + 1);
  netflow5.encode(header, [record(0), record(1)], buf, 0);
  const h = netflow5.create();
  assert.equal(netflow5.decode(buf, 0, 0, h), Decode.TRUNCATED);
  assert.equal(netflow5.decode(buf, 0, 23, h), Decode.TRUNCATED);
  // Records cut short, as a mirror session's packet-length limit does: truncated, header still read
  assert.equal(netflow5.decode(buf, 0, len - 1, h), Decode.TRUNCATED);
  assert.equal(h.flowSequence, header.flowSequence);
  assert.equal(h.count, 2);
  assert.equal(netflow5.decode(buf, 0, 24, h), Decode.TRUNCATED);
  // A byte more than count records: the count lies
  assert.equal(netflow5.decode(buf, 0, len + 1, h), Decode.MALFORMED);
  const bad = buf.slice(0, len);
  bad[1] = 9;
  assert.equal(netflow5.decode(bad, 0, len, h), Decode.MALFORMED);
  bad[1] = 5;
  bad[3] = 1; // count 1 with two records present
  assert.equal(netflow5.decode(bad, 0, len, h), Decode.MALFORMED);
});

test('netflow5: encode refuses a short buffer', () => {
  assert.throws(() => netflow5.encode(header, [record(0)], new Uint8Array(71), 0), RangeError);
  assert.throws(() => netflow5.encode(header, [record(0)], new Uint8Array(100), 30), RangeError);
});

const recordArb = fc.record({
  srcAddr: fc.nat({ max: 0xffffffff }),
  dstAddr: fc.nat({ max: 0xffffffff }),
  nextHop: fc.nat({ max: 0xffffffff }),
  input: fc.nat({ max: 0xffff }),
  output: fc.nat({ max: 0xffff }),
  packets: fc.nat({ max: 0xffffffff }),
  octets: fc.nat({ max: 0xffffffff }),
  first: fc.nat({ max: 0xffffffff }),
  last: fc.nat({ max: 0xffffffff }),
  srcPort: fc.nat({ max: 0xffff }),
  dstPort: fc.nat({ max: 0xffff }),
  tcpFlags: fc.nat({ max: 0xff }),
  protocol: fc.nat({ max: 0xff }),
  tos: fc.nat({ max: 0xff }),
  srcAs: fc.nat({ max: 0xffff }),
  dstAs: fc.nat({ max: 0xffff }),
  srcMask: fc.nat({ max: 0xff }),
  dstMask: fc.nat({ max: 0xff }),
});

test('netflow5: property: any records round-trip', () => {
  fc.assert(
    fc.property(fc.array(recordArb, { maxLength: 30 }), fc.nat({ max: 0xffffffff }), fc.nat({ max: 64 }), (records, seq, off) => {
      const len = netflow5.encodingLength(records.length);
      const buf = new Uint8Array(off + len);
      netflow5.encode({ ...header, flowSequence: seq }, records, buf, off);
      const h = netflow5.create();
      assert.equal(netflow5.decode(buf, off, off + len, h), Decode.OK);
      assert.equal(h.count, records.length);
      assert.equal(h.flowSequence, seq);
      const r = netflow5.createRecord();
      records.forEach((want, i) => {
        assert.equal(netflow5.decodeRecord(buf, off, off + len, i, r), Decode.OK);
        assert.deepEqual(r, { ...want }); // fast-check records have a null prototype
      });
    }),
  );
});

test('netflow5: property: random bytes never throw', () => {
  const h = netflow5.create();
  const r = netflow5.createRecord();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 40 }), fc.integer({ min: -2, max: 8 }), (bytes, off, index) => {
      const res = netflow5.decode(bytes, Math.min(off, bytes.length), bytes.length, h);
      assert.ok(res === Decode.OK || res === Decode.TRUNCATED || res === Decode.MALFORMED);
      netflow5.decodeRecord(bytes, Math.min(off, bytes.length), bytes.length, index, r);
    }),
  );
});
