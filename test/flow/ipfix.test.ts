import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as ipfix from '../../src/flow/ipfix.js';
import { type Template, VARIABLE_LENGTH, createTemplateIterator } from '../../src/flow/template.js';
import { Decode } from '../../src/proto/result.js';
import { collect, readRecords, sets } from './helpers.js';

const T: Template = {
  templateId: 256,
  fields: [
    { type: 8, length: 4 }, // sourceIPv4Address
    { type: 1, length: 8 }, // octetDeltaCount
    { type: 96, length: VARIABLE_LENGTH }, // applicationName
    { type: 1, length: 4, enterprise: 32473 }, // enterprise-specific
  ],
};
const OPT: Template = {
  templateId: 258,
  scopeFields: [{ type: 144, length: 4 }],
  fields: [
    { type: 41, length: 8 },
    { type: 42, length: 8 },
  ],
};
const info = { exportTime: 1700000000, sequenceNumber: 0xfffffffe, observationDomainId: 77 };
const long = new Uint8Array(300).fill(0x61);

const message: ipfix.IpfixSet[] = [
  { kind: 'template', templates: [T] },
  { kind: 'options', templates: [OPT] },
  { kind: 'data', template: OPT, records: [[1, 10, 200n]] },
  {
    kind: 'data',
    template: T,
    records: [
      [0xc0000201, 2 ** 40, new TextEncoder().encode('dns'), 5],
      [0xc0000202, 123n, long, 6],
    ],
  },
];

function build(off = 0, extra = 0): { buf: Uint8Array; len: number } {
  const len = ipfix.encodingLength(message);
  const buf = new Uint8Array(off + len + extra).fill(0xee);
  assert.equal(ipfix.encodeMessage(info, message, buf, off), len);
  return { buf, len };
}

test('ipfix: header round trip and Set walk at an offset', () => {
  const off = 21;
  const { buf, len } = build(off, 9);
  assert.equal(buf[off + len], 0xee);
  const h = ipfix.create();
  assert.equal(ipfix.decode(buf, off, off + len, h), Decode.OK);
  assert.deepEqual(h, { version: 10, length: len, ...info, templateSets: 1, optionsTemplateSets: 1, dataSets: 2, reservedSets: 0 });
  assert.equal(ipfix.dataRecordCount(message), 3, 'options data records are data records (RFC 7011 §3.1)');
});

test('ipfix: wire layout: field specifiers, enterprise bit, variable-length values', () => {
  const { buf, len } = build();
  assert.deepEqual([...buf.subarray(0, 4)], [0, 10, len >>> 8, len & 0xff]);
  const found = sets(buf, 16, len);
  assert.deepEqual(found.map(([id]) => id), [2, 3, 258, 256]);
  const t = found[0][1];
  // template 256 with 4 fields; the last has E set and the PEN after it
  assert.deepEqual([...buf.subarray(t, t + 4)], [1, 0, 0, 4]);
  assert.deepEqual([...buf.subarray(t + 12, t + 16)], [0, 96, 0xff, 0xff]);
  assert.deepEqual([...buf.subarray(t + 16, t + 24)], [0x80, 1, 0, 4, 0, 0, 0x7e, 0xd9]);
  assert.equal(found[0][2] - found[0][1], 4 + 4 * 4 + 4, 'no padding');
  const o = found[1][1];
  assert.deepEqual([...buf.subarray(o, o + 6)], [1, 2, 0, 3, 0, 1], 'options: id, field count 3, scope count 1');
  const [, s, e] = found[3];
  const recs = readRecords(buf, s, e, T.fields);
  assert.deepEqual(recs, [
    [0xc0000201, '0000010000000000', 'dns', 5],
    [0xc0000202, '000000000000007b', 'a'.repeat(300), 6],
  ]);
  // a 300-byte value takes the 3-byte length prefix (RFC 7011 §7)
  assert.deepEqual([...buf.subarray(s + 12 + 1 + 3 + 4 + 12, s + 12 + 1 + 3 + 4 + 15)], [255, 1, 44]);
});

test('ipfix: template iteration, withdrawals included', () => {
  const withdraw: ipfix.IpfixSet[] = [
    { kind: 'withdraw', templateIds: [256, 2] },
    { kind: 'withdraw', templateIds: [3], options: true },
  ];
  const sets2 = [...message, ...withdraw];
  const len = ipfix.encodingLength(sets2);
  const buf = new Uint8Array(len + 5);
  ipfix.encodeMessage(info, sets2, buf, 5);
  const it = createTemplateIterator();
  assert.equal(ipfix.beginTemplates(buf, 5, 5 + len, it), Decode.OK);
  const seen = collect(it, ipfix.nextTemplate);
  assert.equal(it.status, Decode.OK);
  assert.deepEqual(
    seen.map((t) => [t.setId, t.templateId, t.fields.length, t.scopeFieldCount, t.recordLength, t.length]),
    [
      [2, 256, 4, 0, -1, 24],
      [3, 258, 3, 1, 20, 18],
      [2, 256, 0, 0, 0, 4],
      [2, 2, 0, 0, 0, 4],
      [3, 3, 0, 0, 0, 4],
    ],
  );
  assert.deepEqual(seen[0].fields, [
    { type: 8, length: 4, enterprise: 0 },
    { type: 1, length: 8, enterprise: 0 },
    { type: 96, length: 0xffff, enterprise: 0 },
    { type: 1, length: 4, enterprise: 32473 },
  ]);
});

test('ipfix: truncated versus malformed', () => {
  const { buf, len } = build(0, 4);
  const h = ipfix.create();
  assert.equal(ipfix.decode(buf, 0, 15, h), Decode.TRUNCATED);
  // fewer bytes than Length: truncated, header and whole Sets still reported
  assert.equal(ipfix.decode(buf, 0, len - 1, h), Decode.TRUNCATED);
  assert.equal(h.sequenceNumber, info.sequenceNumber);
  assert.equal(h.dataSets, 1);
  assert.equal(ipfix.decode(buf, 0, 16 + 2, h), Decode.TRUNCATED);
  // more bytes than Length: one message per datagram, so malformed
  assert.equal(ipfix.decode(buf, 0, len + 1, h), Decode.MALFORMED);
  const bad = buf.slice(0, len);
  bad[3] = 15;
  bad[2] = 0; // Length 15 < 16
  assert.equal(ipfix.decode(bad, 0, len, h), Decode.MALFORMED);
  const shortSet = buf.slice(0, len);
  shortSet[19] = 2; // first Set length 2
  assert.equal(ipfix.decode(shortSet, 0, len, h), Decode.MALFORMED);
  // Set overrunning a complete message
  const overrun = buf.slice(0, len);
  overrun[18] = 0xff;
  assert.equal(ipfix.decode(overrun, 0, len, h), Decode.MALFORMED);
  const v9 = buf.slice(0, len);
  v9[1] = 9;
  assert.equal(ipfix.decode(v9, 0, len, h), Decode.MALFORMED);
});

test('ipfix: template iteration stops at bad records', () => {
  const { buf, len } = build();
  const it = createTemplateIterator();
  const t = 16 + 4;
  const lowId = buf.slice(0, len);
  lowId[t] = 0;
  lowId[t + 1] = 200;
  ipfix.beginTemplates(lowId, 0, len, it);
  assert.equal(collect(it, ipfix.nextTemplate).length, 0);
  assert.equal(it.status, Decode.MALFORMED);

  const many = buf.slice(0, len);
  many[t + 3] = 9; // 9 fields in a Set with room for 4
  ipfix.beginTemplates(many, 0, len, it);
  assert.equal(collect(it, ipfix.nextTemplate).length, 0);
  assert.equal(it.status, Decode.MALFORMED);

  const o = 16 + 28 + 4;
  const noScope = buf.slice(0, len);
  noScope[o + 5] = 0; // scope field count 0 (RFC 7011 §3.4.2.2)
  ipfix.beginTemplates(noScope, 0, len, it);
  assert.equal(collect(it, ipfix.nextTemplate).length, 1);
  assert.equal(it.status, Decode.MALFORMED);

  // truncated message: the template Set that arrived whole still comes out
  ipfix.beginTemplates(buf, 0, o + 2, it);
  assert.equal(collect(it, ipfix.nextTemplate).length, 1);
  assert.equal(it.status, Decode.TRUNCATED);
});

test('ipfix: encoder refuses what it cannot write', () => {
  const buf = new Uint8Array(4000);
  const one = (set: ipfix.IpfixSet) => () => ipfix.encodeMessage(info, [set], buf, 0);
  const f4 = { type: 1, length: 4 };
  assert.throws(one({ kind: 'options', templates: [{ templateId: 300, fields: [f4] }] }), RangeError, 'no scope');
  assert.throws(one({ kind: 'template', templates: [{ templateId: 300, fields: [] }] }), RangeError, 'no fields');
  assert.throws(one({ kind: 'template', templates: [{ templateId: 300, fields: [{ type: 0x8001, length: 4 }] }] }), RangeError);
  assert.throws(one({ kind: 'template', templates: [{ templateId: 255, fields: [f4] }] }), RangeError);
  assert.throws(one({ kind: 'data', template: T, records: [[1, 2, 3, 4]] }), TypeError, 'variable-length takes bytes');
  assert.throws(() => ipfix.encodeMessage(info, message, new Uint8Array(40), 0), RangeError);
});

const specArb = fc.record({
  type: fc.integer({ min: 1, max: 0x7fff }),
  length: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.constant(VARIABLE_LENGTH)),
  enterprise: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 0xffffffff })),
});

test('ipfix: property: templates round-trip through iteration', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ templateId: fc.integer({ min: 256, max: 0xffff }), fields: fc.array(specArb, { minLength: 1, maxLength: 12 }) }),
        { minLength: 1, maxLength: 4 },
      ),
      fc.nat({ max: 9 }),
      (templates, off) => {
        const s: ipfix.IpfixSet[] = [{ kind: 'template', templates }];
        const len = ipfix.encodingLength(s);
        const buf = new Uint8Array(off + len);
        ipfix.encodeMessage(info, s, buf, off);
        const h = ipfix.create();
        assert.equal(ipfix.decode(buf, off, off + len, h), Decode.OK);
        const it = createTemplateIterator();
        ipfix.beginTemplates(buf, off, off + len, it);
        const seen = collect(it, ipfix.nextTemplate);
        assert.equal(it.status, Decode.OK);
        assert.deepEqual(
          seen.map((x) => [x.templateId, x.fields]),
          templates.map((x) => [x.templateId, x.fields.map((f) => ({ type: f.type, length: f.length, enterprise: f.enterprise }))]),
        );
      },
    ),
  );
});

test('ipfix: property: random bytes never throw', () => {
  const h = ipfix.create();
  const it = createTemplateIterator();
  const versioned = fc.uint8Array({ minLength: 4, maxLength: 400 }).map((b) => {
    b[0] = 0;
    b[1] = 10;
    b[2] = b.length >>> 8;
    b[3] = b.length & 0xff;
    return b;
  });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), versioned), fc.nat({ max: 3 }), (bytes, o) => {
      const off = Math.min(o, bytes.length);
      const r = ipfix.decode(bytes, off, bytes.length, h);
      assert.ok(r === Decode.OK || r === Decode.TRUNCATED || r === Decode.MALFORMED);
      ipfix.beginTemplates(bytes, off, bytes.length, it);
      let guard = 0;
      while (ipfix.nextTemplate(it)) {
        assert.ok(it.record.offset + it.record.length <= bytes.length);
        assert.ok(++guard < 1000);
      }
    }),
  );
});
