import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as sflow5 from '../../src/flow/sflow5.js';
import { Decode } from '../../src/proto/result.js';

const counters: sflow5.InterfaceCounters = {
  ifIndex: 3,
  ifType: 6,
  ifSpeed: 10_000_000_000,
  ifDirection: 1,
  ifStatus: 3,
  ifInOctets: 2n ** 40n + 5n,
  ifInUcastPkts: 1,
  ifInMulticastPkts: 2,
  ifInBroadcastPkts: 3,
  ifInDiscards: 4,
  ifInErrors: 5,
  ifInUnknownProtos: 6,
  ifOutOctets: 2 ** 33,
  ifOutUcastPkts: 7,
  ifOutMulticastPkts: 8,
  ifOutBroadcastPkts: 9,
  ifOutDiscards: 10,
  ifOutErrors: 11,
  ifPromiscuousMode: 0,
};

function datagram(agent: Uint8Array, header = new Uint8Array(61).fill(0xab)): sflow5.Sflow5Datagram {
  return {
    agentAddress: agent,
    subAgentId: 2,
    sequenceNumber: 4242,
    uptime: 86_400_000,
    samples: [
      {
        kind: 'flow',
        sequenceNumber: 17,
        sourceIdType: 0,
        sourceIdIndex: 3,
        samplingRate: 1000,
        samplePool: 17_000,
        drops: 0,
        input: 3,
        output: 0x3fffffff,
        records: [{ kind: 'sampledHeader', protocol: sflow5.HeaderProtocol.ETHERNET, frameLength: 1518, stripped: 4, header }],
      },
      { kind: 'counters', sequenceNumber: 9, sourceIdType: 0, sourceIdIndex: 3, records: [{ kind: 'interface', counters }] },
      {
        kind: 'counters',
        sequenceNumber: 10,
        sourceIdType: 0,
        sourceIdIndex: 4,
        records: [{ kind: 'opaque', enterprise: 0, format: 1001, data: new Uint8Array(6) }],
      },
    ],
  };
}

const V4 = Uint8Array.of(198, 18, 0, 11);
const V6 = Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0x20 : i === 1 ? 0x01 : i === 2 ? 0x0d : i === 3 ? 0xb8 : i));

test('sflow5: round trip with an IPv4 agent at an offset', () => {
  const d = datagram(V4);
  const len = sflow5.encodingLength(d);
  const off = 11;
  const buf = new Uint8Array(off + len + 20).fill(0xee);
  assert.equal(sflow5.encode(d, buf, off), len);
  assert.equal(buf[off + len], 0xee);
  const h = sflow5.create();
  assert.equal(sflow5.decode(buf, off, off + len, h), Decode.OK);
  assert.equal(h.version, 5);
  assert.equal(h.agentAddressType, 1);
  assert.equal(h.agentAddressLength, 4);
  assert.deepEqual([...h.agentAddress.subarray(0, 4)], [...V4]);
  assert.equal(h.agentV4, 0xc612000b);
  assert.equal(h.subAgentId, 2);
  assert.equal(h.sequenceNumber, 4242);
  assert.equal(h.uptime, 86_400_000);
  assert.equal(h.numSamples, 3);
  assert.equal(h.flowSamples, 1);
  assert.equal(h.counterSamples, 2);
  assert.equal(h.otherSamples, 0);
});

test('sflow5: IPv6 agent', () => {
  const d = datagram(V6);
  const len = sflow5.encodingLength(d);
  const buf = new Uint8Array(len);
  sflow5.encode(d, buf, 0);
  const h = sflow5.create();
  assert.equal(sflow5.decode(buf, 0, len, h), Decode.OK);
  assert.equal(h.agentAddressType, 2);
  assert.deepEqual([...h.agentAddress], [...V6]);
  assert.equal(h.agentV4, 0);
  assert.equal(h.sequenceNumber, 4242);
});

test('sflow5: wire layout (sFlow v5 XDR structures)', () => {
  const d = datagram(V4);
  const len = sflow5.encodingLength(d);
  const buf = Buffer.alloc(len);
  sflow5.encode(d, buf, 0);
  const words = (o: number, n: number) => Array.from({ length: n }, (_, i) => buf.readUInt32BE(o + 4 * i));
  assert.deepEqual(words(0, 2), [5, 1]);
  assert.deepEqual(words(12, 4), [2, 4242, 86_400_000, 3]);
  // flow sample: format 0:1, length, seq, source id, rate, pool, drops, input, output, one record
  const flowLength = 32 + 8 + 16 + 64;
  assert.deepEqual(words(28, 11), [1, flowLength, 17, 3, 1000, 17_000, 0, 3, 0x3fffffff, 1, 1]);
  // sampled_header: length 16 + 64 (61 padded), protocol 1, frame length, stripped, header length 61
  assert.deepEqual(words(28 + 44, 5), [16 + 64, 1, 1518, 4, 61]);
  assert.deepEqual([...buf.subarray(28 + 64 + 61, 28 + 64 + 64)], [0, 0, 0], 'XDR padding is zero');
  // counters sample with one if_counters record of 88 bytes
  const c = 28 + 8 + flowLength;
  assert.deepEqual(words(c, 5), [2, 12 + 8 + 88, 9, 3, 1]);
  assert.deepEqual(words(c + 20, 2), [1, 88]);
  assert.equal(buf.readBigUInt64BE(c + 28 + 8), 10_000_000_000n);
  assert.equal(buf.readBigUInt64BE(c + 28 + 24), 2n ** 40n + 5n);
  assert.equal(buf.readBigUInt64BE(c + 28 + 56), 2n ** 33n);
  assert.equal(buf.readUInt32BE(c + 28 + 80), 11);
  // an opaque record keeps its enterprise:format and is padded to 4
  const o = c + 8 + 12 + 8 + 88;
  assert.deepEqual(words(o, 5), [2, 12 + 16, 10, 4, 1]);
  assert.deepEqual(words(o + 20, 2), [1001, 8]);
  assert.equal(o + 28 + 8, len);
});

test('sflow5: truncated versus malformed', () => {
  const d = datagram(V4);
  const len = sflow5.encodingLength(d);
  const buf = new Uint8Array(len + 4);
  sflow5.encode(d, buf, 0);
  const h = sflow5.create();
  assert.equal(sflow5.decode(buf, 0, 7, h), Decode.TRUNCATED);
  assert.equal(sflow5.decode(buf, 0, 27, h), Decode.TRUNCATED);
  // samples cut short: truncated, header fields still read
  assert.equal(sflow5.decode(buf, 0, 100, h), Decode.TRUNCATED);
  assert.equal(h.sequenceNumber, 4242);
  assert.equal(sflow5.decode(buf, 0, len - 1, h), Decode.TRUNCATED);
  assert.equal(h.flowSamples, 1);
  // bytes after the last sample
  assert.equal(sflow5.decode(buf, 0, len + 4, h), Decode.MALFORMED);
  const v4 = buf.slice(0, len);
  v4[3] = 4;
  assert.equal(sflow5.decode(v4, 0, len, h), Decode.MALFORMED);
  const badType = buf.slice(0, len);
  badType[7] = 3;
  assert.equal(sflow5.decode(badType, 0, len, h), Decode.MALFORMED);
  // fewer samples than present: leftover bytes
  const fewer = buf.slice(0, len);
  fewer[27] = 2;
  assert.equal(sflow5.decode(fewer, 0, len, h), Decode.MALFORMED);
  // more samples than present: truncated
  const more = buf.slice(0, len);
  more[27] = 4;
  assert.equal(sflow5.decode(more, 0, len, h), Decode.TRUNCATED);
  // a huge sample count does not loop forever
  const huge = buf.slice(0, len);
  huge.set([0xff, 0xff, 0xff, 0xff], 24);
  assert.equal(sflow5.decode(huge, 0, len, h), Decode.TRUNCATED);
  // an unknown agent address type 0 carries no address
  const unknown = new Uint8Array(24);
  unknown[3] = 5;
  assert.equal(sflow5.decode(unknown, 0, 24, h), Decode.OK);
  assert.equal(h.agentAddressLength, 0);
});

test('sflow5: encoder refuses a bad agent address or a short buffer', () => {
  assert.throws(() => sflow5.encode(datagram(new Uint8Array(5)), new Uint8Array(2000), 0), RangeError);
  assert.throws(() => sflow5.encode(datagram(V4), new Uint8Array(100), 0), RangeError);
});

test('sflow5: property: header fields and sample counts round-trip', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 })),
      fc.nat({ max: 0xffffffff }),
      fc.nat({ max: 0xffffffff }),
      fc.array(fc.oneof(fc.constant('flow' as const), fc.constant('counters' as const)), { maxLength: 8 }),
      fc.uint8Array({ maxLength: 130 }),
      (agent, seq, sub, kinds, header) => {
        const base = datagram(agent, header);
        const samples = kinds.map((k) => (k === 'flow' ? base.samples[0] : base.samples[1]));
        const d = { ...base, sequenceNumber: seq, subAgentId: sub, samples };
        const len = sflow5.encodingLength(d);
        const buf = new Uint8Array(len);
        assert.equal(sflow5.encode(d, buf, 0), len);
        const h = sflow5.create();
        assert.equal(sflow5.decode(buf, 0, len, h), Decode.OK);
        assert.equal(h.sequenceNumber, seq);
        assert.equal(h.subAgentId, sub);
        assert.equal(h.flowSamples, kinds.filter((k) => k === 'flow').length);
        assert.equal(h.counterSamples, kinds.length - h.flowSamples);
      },
    ),
  );
});

test('sflow5: property: random bytes never throw', () => {
  const h = sflow5.create();
  const versioned = fc.uint8Array({ minLength: 8, maxLength: 400 }).map((b) => {
    b.set([0, 0, 0, 5, 0, 0, 0, 1 + (b[7] & 1)]);
    return b;
  });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), versioned), fc.nat({ max: 5 }), (bytes, o) => {
      const r = sflow5.decode(bytes, Math.min(o, bytes.length), bytes.length, h);
      assert.ok(r === Decode.OK || r === Decode.TRUNCATED || r === Decode.MALFORMED);
    }),
  );
});
