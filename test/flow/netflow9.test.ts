import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as netflow9 from '../../src/flow/netflow9.js';
import { type Template, createTemplateIterator } from '../../src/flow/template.js';
import { Decode } from '../../src/proto/result.js';
import { collect, readRecords, sets } from './helpers.js';

const T4: Template = {
  templateId: 256,
  fields: [
    { type: 8, length: 4 }, // IPV4_SRC_ADDR
    { type: 12, length: 4 }, // IPV4_DST_ADDR
    { type: 4, length: 1 }, // PROTOCOL
    { type: 1, length: 4 }, // IN_BYTES
    { type: 7, length: 2 }, // L4_SRC_PORT
  ],
};
const T6: Template = {
  templateId: 300,
  fields: [
    { type: 27, length: 16 },
    { type: 28, length: 16 },
  ],
};
const OPT: Template = {
  templateId: 258,
  scopeFields: [{ type: netflow9.Scope.SYSTEM, length: 4 }],
  fields: [
    { type: 34, length: 4 },
    { type: 35, length: 1 },
  ],
};
const info = { sysUptime: 5000, unixSecs: 1700000000, sequence: 41, sourceId: 0x01020304 };
const v6a = Uint8Array.from({ length: 16 }, (_, i) => 0x20 + i);
const v6b = Uint8Array.from({ length: 16 }, (_, i) => 0x40 + i);

const packet: netflow9.FlowSet[] = [
  { kind: 'template', templates: [T4, T6] },
  { kind: 'options', templates: [OPT] },
  { kind: 'data', template: OPT, records: [[0xc6120001, 1000, 2]] },
  {
    kind: 'data',
    template: T4,
    records: [
      [0xc0000201, 0xcb00710a, 6, 123456, 40000],
      [0xc6336402, 0xcb00710a, 17, 99, 53],
    ],
  },
  { kind: 'data', template: T6, records: [[v6a, v6b]] },
];

function build(off = 0, extra = 0): { buf: Uint8Array; len: number } {
  const len = netflow9.encodingLength(packet);
  const buf = new Uint8Array(off + len + extra).fill(0xee);
  assert.equal(netflow9.encodePacket(info, packet, buf, off), len);
  return { buf, len };
}

test('netflow9: header round trip and FlowSet walk at an offset', () => {
  const off = 13;
  const { buf, len } = build(off, 50);
  assert.equal(buf[off + len], 0xee, 'nothing written past the packet');
  const h = netflow9.create();
  assert.equal(netflow9.decode(buf, off, off + len, h), Decode.OK);
  assert.deepEqual(h, {
    version: 9,
    count: 2 + 1 + 1 + 2 + 1, // template, options template and data records alike (RFC 3954 §5.1)
    ...info,
    templateFlowSets: 1,
    optionsTemplateFlowSets: 1,
    dataFlowSets: 3,
    reservedFlowSets: 0,
  });
});

test('netflow9: wire layout: FlowSet IDs, lengths padded to 4, records', () => {
  const { buf, len } = build();
  assert.deepEqual([...buf.subarray(0, 4)], [0, 9, 0, 7]);
  const found = sets(buf, 20, len);
  assert.deepEqual(
    found.map(([id, s, e]) => [id, e - s + 4]),
    [
      [0, 4 + (4 + 5 * 4) + (4 + 2 * 4)],
      [1, 4 + 6 + 3 * 4 + 2], // 22 → padded to 24
      [258, 4 + 9 + 3], // 13 → 16
      [256, 4 + 2 * 15 + 2], // 34 → 36
      [300, 4 + 32],
    ],
  );
  // template record 256: id, count, then (type, length) pairs
  assert.deepEqual([...buf.subarray(24, 32)], [1, 0, 0, 5, 0, 8, 0, 4]);
  // options template: id 258, scope length 4, option length 8, scope System/4
  const opt = found[1][1];
  assert.deepEqual([...buf.subarray(opt, opt + 10)], [1, 2, 0, 4, 0, 8, 0, 1, 0, 4]);
  assert.deepEqual([...buf.subarray(opt + 18, opt + 20)], [0, 0], 'padding is zero');
  const [, s, e] = found[3];
  assert.deepEqual(readRecords(buf, s, e, T4.fields), [
    [0xc0000201, 0xcb00710a, 6, 123456, 40000],
    [0xc6336402, 0xcb00710a, 17, 99, 53],
  ]);
  const [, s6, e6] = found[4];
  assert.deepEqual(readRecords(buf, s6, e6, T6.fields), [[Buffer.from(v6a).toString('hex'), Buffer.from(v6b).toString('hex')]]);
});

test('netflow9: template iteration', () => {
  const off = 7;
  const { buf, len } = build(off);
  const it = createTemplateIterator();
  assert.equal(netflow9.beginTemplates(buf, off, off + len, it), Decode.OK);
  const seen = collect(it, netflow9.nextTemplate);
  assert.equal(it.status, Decode.OK);
  assert.deepEqual(
    seen.map((t) => [t.setId, t.templateId, t.scopeFieldCount, t.recordLength, t.length]),
    [
      [0, 256, 0, 15, 24],
      [0, 300, 0, 32, 12],
      [1, 258, 1, 9, 18],
    ],
  );
  assert.deepEqual(
    seen[2].fields,
    [...OPT.scopeFields!, ...OPT.fields].map((f) => ({ ...f, enterprise: 0 })),
  );
  assert.deepEqual(seen[0].fields, T4.fields.map((f) => ({ ...f, enterprise: 0 })));
  assert.equal(seen[0].offset, off + 24);
  assert.equal(netflow9.nextTemplate(it), false, 'stays finished');
  // a reused iterator starts over
  assert.equal(netflow9.beginTemplates(buf, off, off + len, it), Decode.OK);
  assert.equal(collect(it, netflow9.nextTemplate).length, 3);
});

test('netflow9: truncated versus malformed', () => {
  const { buf, len } = build(0, 8);
  const h = netflow9.create();
  assert.equal(netflow9.decode(buf, 0, 19, h), Decode.TRUNCATED);
  assert.equal(netflow9.decode(buf, 0, 20, h), Decode.OK, 'a header alone is a packet with no FlowSets');
  // cut inside the last FlowSet: truncated, header and earlier FlowSets still counted
  assert.equal(netflow9.decode(buf, 0, len - 10, h), Decode.TRUNCATED);
  assert.equal(h.sequence, 41);
  assert.equal(h.dataFlowSets, 2);
  // 1-3 bytes after the last FlowSet: a FlowSet header cut short
  assert.equal(netflow9.decode(buf, 0, len + 3, h), Decode.TRUNCATED);
  const bad = buf.slice(0, len);
  bad[1] = 8;
  assert.equal(netflow9.decode(bad, 0, len, h), Decode.MALFORMED);
  bad[1] = 9;
  bad[23] = 3; // first FlowSet length 3 (< 4)
  bad[22] = 0;
  assert.equal(netflow9.decode(bad, 0, len, h), Decode.MALFORMED);
  // reserved FlowSet IDs are counted, not rejected
  const res = buf.slice(0, len);
  res[20] = 0;
  res[21] = 7;
  assert.equal(netflow9.decode(res, 0, len, h), Decode.OK);
  assert.equal(h.reservedFlowSets, 1);
  assert.equal(h.templateFlowSets, 0);
});

test('netflow9: template iteration stops at bad records', () => {
  const { buf, len } = build();
  const it = createTemplateIterator();
  // truncated inside the options template FlowSet: the two templates before it still come out
  netflow9.beginTemplates(buf, 0, 20 + 40 + 10, it);
  assert.equal(collect(it, netflow9.nextTemplate).length, 2);
  assert.equal(it.status, Decode.TRUNCATED);

  const lowId = buf.slice(0, len);
  lowId[20 + 4 + 4 + 20] = 0; // second template's ID 300 → 44
  lowId[20 + 4 + 4 + 20 + 1] = 44;
  netflow9.beginTemplates(lowId, 0, len, it);
  assert.equal(collect(it, netflow9.nextTemplate).length, 1);
  assert.equal(it.status, Decode.MALFORMED);

  const overrun = buf.slice(0, len);
  overrun[20 + 4 + 3] = 50; // first template claims 50 fields
  netflow9.beginTemplates(overrun, 0, len, it);
  assert.equal(collect(it, netflow9.nextTemplate).length, 0);
  assert.equal(it.status, Decode.MALFORMED);

  const oddScope = buf.slice(0, len);
  oddScope[20 + 40 + 4 + 3] = 5; // options scope length 5
  netflow9.beginTemplates(oddScope, 0, len, it);
  assert.equal(collect(it, netflow9.nextTemplate).length, 2);
  assert.equal(it.status, Decode.MALFORMED);

  assert.equal(netflow9.beginTemplates(buf, 0, 10, it), Decode.TRUNCATED);
  assert.equal(netflow9.nextTemplate(it), false);
});

test('netflow9: encoder refuses what it cannot write', () => {
  const buf = new Uint8Array(2000);
  assert.throws(() => netflow9.encodePacket(info, [{ kind: 'data', template: T4, records: [[1, 2, 3]] }], buf, 0), RangeError);
  assert.throws(() => netflow9.encodePacket(info, [{ kind: 'template', templates: [{ templateId: 255, fields: [] }] }], buf, 0), RangeError);
  assert.throws(() => netflow9.encodePacket(info, packet, new Uint8Array(50), 0), RangeError);
  assert.throws(
    () => netflow9.encodePacket(info, [{ kind: 'data', template: T6, records: [[v6a, new Uint8Array(4)]] }], buf, 0),
    RangeError,
  );
});

const fieldArb = fc.record({ type: fc.integer({ min: 1, max: 0xffff }), length: fc.integer({ min: 1, max: 16 }) });
const templateArb = fc.record({
  templateId: fc.integer({ min: 256, max: 0xffff }),
  fields: fc.array(fieldArb, { minLength: 1, maxLength: 20 }),
});

test('netflow9: property: templates and data round-trip', () => {
  fc.assert(
    fc.property(fc.array(templateArb, { minLength: 1, maxLength: 4 }), fc.nat({ max: 7 }), fc.nat({ max: 5 }), (templates, off, nrec) => {
      const t = templates[0];
      const records = Array.from({ length: nrec }, (_, r) => t.fields.map((f) => (r * 7 + f.type) % 2 ** Math.min(48, f.length * 8)));
      const flowSets: netflow9.FlowSet[] = [
        { kind: 'template', templates },
        { kind: 'data', template: t, records },
      ];
      const len = netflow9.encodingLength(flowSets);
      const buf = new Uint8Array(off + len);
      netflow9.encodePacket(info, flowSets, buf, off);
      const h = netflow9.create();
      assert.equal(netflow9.decode(buf, off, off + len, h), Decode.OK);
      assert.equal(h.count, templates.length + nrec);
      const it = createTemplateIterator();
      netflow9.beginTemplates(buf, off, off + len, it);
      const seen = collect(it, netflow9.nextTemplate);
      assert.equal(it.status, Decode.OK);
      assert.deepEqual(
        seen.map((s) => [s.templateId, s.fields.map((f) => [f.type, f.length])]),
        templates.map((x) => [x.templateId, x.fields.map((f) => [f.type, f.length])]),
      );
      const [, s, e] = sets(buf, off + 20, off + len)[1];
      // readRecords gives fields wider than 6 bytes as hex
      const want = records.map((r) => r.map((v, i) => (t.fields[i].length > 6 ? v.toString(16).padStart(t.fields[i].length * 2, '0') : v)));
      assert.deepEqual(readRecords(buf, s, e, t.fields).slice(0, nrec), want);
    }),
  );
});

test('netflow9: property: random bytes never throw', () => {
  const h = netflow9.create();
  const it = createTemplateIterator();
  const versioned = fc.uint8Array({ maxLength: 400 }).map((b) => {
    if (b.length >= 2) {
      b[0] = 0;
      b[1] = 9;
    }
    return b;
  });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), versioned), fc.nat({ max: 30 }), (bytes, o) => {
      const off = Math.min(o, bytes.length);
      const r = netflow9.decode(bytes, off, bytes.length, h);
      assert.ok(r === Decode.OK || r === Decode.TRUNCATED || r === Decode.MALFORMED);
      netflow9.beginTemplates(bytes, off, bytes.length, it);
      let guard = 0;
      while (netflow9.nextTemplate(it)) {
        assert.ok(it.record.offset + it.record.length <= bytes.length);
        assert.ok(++guard < 1000);
      }
    }),
  );
});
