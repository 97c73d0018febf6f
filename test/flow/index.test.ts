import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createFlowHeaderInfo, decodeFlowHeader, detectFlowProtocol, ipfix, netflow5, netflow9, sflow5 } from '../../src/flow/index.js';
import { Decode } from '../../src/proto/result.js';

function v5(): Uint8Array {
  const rec = netflow5.createRecord();
  const buf = new Uint8Array(netflow5.encodingLength(3));
  netflow5.encode({ ...netflow5.create(), flowSequence: 1000, engineType: 2, engineId: 9 }, [rec, rec, rec], buf, 0);
  return buf;
}

function v9(): Uint8Array {
  const t = { templateId: 256, fields: [{ type: 8, length: 4 }] };
  const sets: netflow9.FlowSet[] = [
    { kind: 'template', templates: [t] },
    { kind: 'data', template: t, records: [[1], [2]] },
  ];
  const buf = new Uint8Array(netflow9.encodingLength(sets));
  netflow9.encodePacket({ sysUptime: 1, unixSecs: 2, sequence: 77, sourceId: 0xabcdef }, sets, buf, 0);
  return buf;
}

function fix(): Uint8Array {
  const t = { templateId: 256, fields: [{ type: 8, length: 4 }] };
  const sets: ipfix.IpfixSet[] = [
    { kind: 'template', templates: [t] },
    { kind: 'data', template: t, records: [[1], [2], [3]] },
  ];
  const buf = new Uint8Array(ipfix.encodingLength(sets));
  ipfix.encodeMessage({ exportTime: 5, sequenceNumber: 900, observationDomainId: 0xfffffff0 }, sets, buf, 0);
  return buf;
}

function sf(agent: Uint8Array): Uint8Array {
  const d: sflow5.Sflow5Datagram = {
    agentAddress: agent,
    subAgentId: 3,
    sequenceNumber: 55,
    uptime: 1,
    samples: [{ kind: 'counters', sequenceNumber: 1, sourceIdType: 0, sourceIdIndex: 1, records: [] }],
  };
  const buf = new Uint8Array(sflow5.encodingLength(d));
  sflow5.encode(d, buf, 0);
  return buf;
}

test('detectFlowProtocol: by version field', () => {
  assert.equal(detectFlowProtocol(v5(), 0, v5().length), 'netflow5');
  assert.equal(detectFlowProtocol(v9(), 0, v9().length), 'netflow9');
  assert.equal(detectFlowProtocol(fix(), 0, fix().length), 'ipfix');
  assert.equal(detectFlowProtocol(sf(Uint8Array.of(1, 2, 3, 4)), 0, 40), 'sflow5');
  assert.equal(detectFlowProtocol(Uint8Array.of(0, 7, 0, 0), 0, 4), null, 'NetFlow v7 is not handled');
  assert.equal(detectFlowProtocol(Uint8Array.of(0, 0, 0, 4), 0, 4), null, 'sFlow v4 is not handled');
  assert.equal(detectFlowProtocol(Uint8Array.of(0, 0, 0), 0, 3), null);
  assert.equal(detectFlowProtocol(Uint8Array.of(0), 0, 1), null);
  // at an offset, bounded by end
  const b = Uint8Array.of(0xff, 0xff, 0, 10, 0, 9);
  assert.equal(detectFlowProtocol(b, 2, 6), 'ipfix');
  assert.equal(detectFlowProtocol(b, 4, 6), 'netflow9');
  assert.equal(detectFlowProtocol(b, 4, 5), null);
});

test('decodeFlowHeader: common fields per protocol', () => {
  const out = createFlowHeaderInfo();
  const pick = () => {
    const { protocol, sequence, domain, agent, records, sequenceStep } = out;
    return { protocol, sequence, domain, agent, records, sequenceStep };
  };

  let b = v5();
  assert.equal(decodeFlowHeader(b, 0, b.length, out), Decode.OK);
  assert.deepEqual(pick(), { protocol: 'netflow5', sequence: 1000, domain: (2 << 8) | 9, agent: 0, records: 3, sequenceStep: 3 });
  b = v9();
  assert.equal(decodeFlowHeader(b, 0, b.length, out), Decode.OK);
  assert.deepEqual(pick(), { protocol: 'netflow9', sequence: 77, domain: 0xabcdef, agent: 0, records: 3, sequenceStep: 1 });
  assert.equal(out.netflow9.dataFlowSets, 1);
  b = fix();
  assert.equal(decodeFlowHeader(b, 0, b.length, out), Decode.OK);
  assert.deepEqual(pick(), { protocol: 'ipfix', sequence: 900, domain: 0xfffffff0, agent: 0, records: -1, sequenceStep: -1 });
  b = sf(Uint8Array.of(198, 18, 0, 12));
  assert.equal(decodeFlowHeader(b, 0, b.length, out), Decode.OK);
  assert.deepEqual(pick(), { protocol: 'sflow5', sequence: 55, domain: 3, agent: 0xc612000c, records: 1, sequenceStep: 1 });
  const v6 = new Uint8Array(16);
  v6[15] = 1;
  b = sf(v6);
  assert.equal(decodeFlowHeader(b, 0, b.length, out), Decode.OK);
  const agent6 = out.agent;
  v6[15] = 2;
  b = sf(v6);
  decodeFlowHeader(b, 0, b.length, out);
  assert.notEqual(out.agent, agent6, 'IPv6 agents get distinct keys');
});

test('decodeFlowHeader: at an offset; truncation keeps the sequence', () => {
  const out = createFlowHeaderInfo();
  // header alone: v9 has no length field, so a bare header is a whole (empty) packet
  for (const [bytes, seq, header, headerAlone] of [
    [v5(), 1000, 24, Decode.TRUNCATED],
    [v9(), 77, 20, Decode.OK],
    [fix(), 900, 16, Decode.TRUNCATED],
    [sf(Uint8Array.of(1, 2, 3, 4)), 55, 28, Decode.TRUNCATED],
  ] as const) {
    const off = 9;
    const buf = new Uint8Array(off + bytes.length + 7).fill(0xa5);
    buf.set(bytes, off);
    assert.equal(decodeFlowHeader(buf, off, off + bytes.length, out), Decode.OK);
    assert.equal(out.sequence, seq);
    out.sequence = -1;
    assert.equal(decodeFlowHeader(buf, off, off + bytes.length - 1, out), Decode.TRUNCATED, String(out.protocol));
    assert.equal(out.sequence, seq, `${out.protocol}: sequence read from a truncated datagram`);
    out.sequence = -1;
    assert.equal(decodeFlowHeader(buf, off, off + header, out), headerAlone);
    assert.equal(out.sequence, seq);
    assert.equal(decodeFlowHeader(buf, off, off + header - 1, out), Decode.TRUNCATED);
  }
});

test('decodeFlowHeader: unknown versions', () => {
  const out = createFlowHeaderInfo();
  assert.equal(decodeFlowHeader(Uint8Array.of(0, 7, 0, 0, 0, 0), 0, 6, out), Decode.MALFORMED);
  assert.equal(out.protocol, null);
  assert.equal(decodeFlowHeader(Uint8Array.of(0, 7), 0, 2, out), Decode.MALFORMED);
  assert.equal(decodeFlowHeader(Uint8Array.of(0, 0, 0), 0, 3, out), Decode.TRUNCATED);
  assert.equal(decodeFlowHeader(Uint8Array.of(0), 0, 1, out), Decode.TRUNCATED);
  assert.equal(decodeFlowHeader(Uint8Array.of(0, 0, 0, 6), 0, 4, out), Decode.MALFORMED);
});

test('decodeFlowHeader: property: random bytes never throw', () => {
  const out = createFlowHeaderInfo();
  const prefixed = fc
    .tuple(fc.constantFrom([0, 5], [0, 9], [0, 10], [0, 0, 0, 5]), fc.uint8Array({ maxLength: 300 }))
    .map(([p, rest]) => Uint8Array.from([...p, ...rest]));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), prefixed), fc.nat({ max: 4 }), (bytes, o) => {
      const off = Math.min(o, bytes.length);
      const r = decodeFlowHeader(bytes, off, bytes.length, out);
      assert.ok(r === Decode.OK || r === Decode.TRUNCATED || r === Decode.MALFORMED);
      if (r === Decode.OK) assert.ok(out.protocol !== null);
    }),
    { numRuns: 2000 },
  );
});
