/**
 * Template safety: when a NetFlow v9 / IPFIX stream moves to a backend that has not seen its
 * templates (failover, a collector back from the dead), the cached templates go there first,
 * from the exporter's own address, and a collector decoding only what that backend received can
 * read the very first data packet. Checked with the flow decoders and by comparing template bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setBackendUp } from '../../src/control/tables.js';
import * as netflow9 from '../../src/flow/netflow9.js';
import * as ipfix from '../../src/flow/ipfix.js';
import { createTemplateIterator } from '../../src/flow/template.js';
import { V9_TEMPLATE_V4, IPFIX_TEMPLATE_V4 } from '../../src/gen/scenario.js';
import { assertBalanced, be16, be32, ip4, makePipeline, mirror, udp4 } from './helpers.js';

const EXPORTER = '198.18.0.21';
const BACKENDS = ['203.0.113.10:2055', '203.0.113.11:2055'];

function config(withoutTemplateTracking = false) {
  return {
    rules: [{ name: 'flows', match: { protocol: 'udp', dstPort: [2055, 4739] }, destination: 'c' }],
    destinations: { c: { backends: BACKENDS, balance: withoutTemplateTracking ? 'round-robin' : 'hash' } },
  };
}

const record = V9_TEMPLATE_V4.fields.map(() => 1);

function v9(sequence: number, withTemplate: boolean): Uint8Array {
  const buf = new Uint8Array(2048);
  const sets: netflow9.FlowSet[] = [];
  if (withTemplate) sets.push({ kind: 'template', templates: [V9_TEMPLATE_V4] });
  sets.push({ kind: 'data', template: V9_TEMPLATE_V4, records: [record, record] });
  const len = netflow9.encodePacket({ sysUptime: 1000, unixSecs: 1_700_000_000, sequence, sourceId: 7 }, sets, buf, 0);
  return udp4({ src: ip4(EXPORTER), dst: ip4('198.18.1.1'), srcPort: 40000, dstPort: 2055, payload: buf.subarray(0, len) });
}

function ipfixMessage(sequence: number, withTemplate: boolean): Uint8Array {
  const buf = new Uint8Array(2048);
  const values = IPFIX_TEMPLATE_V4.fields.map((f) => (f.length === 0xffff ? new Uint8Array(2) : 1));
  const sets: ipfix.IpfixSet[] = [];
  if (withTemplate) sets.push({ kind: 'template', templates: [IPFIX_TEMPLATE_V4] });
  sets.push({ kind: 'data', template: IPFIX_TEMPLATE_V4, records: [values] });
  const len = ipfix.encodeMessage({ exportTime: 1_700_000_000, sequenceNumber: sequence, observationDomainId: 9 }, sets, buf, 0);
  return udp4({ src: ip4(EXPORTER), dst: ip4('198.18.1.1'), srcPort: 40001, dstPort: 4739, payload: buf.subarray(0, len) });
}

const dst = (p: Buffer) => `${[12, 13, 14, 15].map((k) => p[16 + k - 12]).join('.')}:${be16(p, 22)}`;
const src = (p: Buffer) => `${[12, 13, 14, 15].map((k) => p[k]).join('.')}:${be16(p, 20)}`;
const payload = (p: Buffer) => p.subarray(28);

/** Template IDs a datagram defines (v9 or IPFIX). */
function templatesIn(p: Buffer): number[] {
  const it = createTemplateIterator();
  const body = payload(p);
  const isIpfix = be16(body, 0) === 10;
  (isIpfix ? ipfix.beginTemplates : netflow9.beginTemplates)(body, 0, body.length, it);
  const ids: number[] = [];
  while (isIpfix ? ipfix.nextTemplate(it) : netflow9.nextTemplate(it)) ids.push(it.record.templateId);
  return ids;
}

for (const proto of ['netflow9', 'ipfix'] as const) {
  test(`${proto}: failover sends the cached templates ahead of the first data packet`, () => {
    const t = makePipeline(config());
    const make = proto === 'netflow9' ? v9 : ipfixMessage;
    // The exporter announces its templates once, then sends data only.
    const first = t.feed([mirror(make(1, true)), mirror(make(2, false))]);
    assert.equal(first.length, 2);
    const owner = dst(first[0]);
    assert.equal(dst(first[1]), owner, 'hash keeps the stream on one backend');
    // Overwrite the vector's buffers with unrelated traffic: the cache must hold copies.
    t.feed(Array.from({ length: 64 }, () => mirror(udp4({ src: ip4('198.18.0.99'), dst: ip4('198.18.1.1'), srcPort: 1, dstPort: 2055, payload: new Uint8Array(300).fill(0xee) }))));
    t.sink.take();

    const d = t.pipeline.ctx.tables.destinations[0];
    const ownerIndex = d.backends.findIndex((b) => b.text === owner);
    setBackendUp(d, ownerIndex, false);
    const after = t.feed([mirror(make(3, false))]);
    assert.equal(after.length, 2, 'a template datagram, then the data packet');
    const [tpl, data] = after;
    const other = BACKENDS.find((b) => b !== owner);
    assert.equal(dst(tpl), other);
    assert.equal(dst(data), other);
    assert.equal(src(tpl), src(data), "templates come from the exporter's own address and port");
    assert.equal(src(tpl).split(':')[0], EXPORTER);
    const wantId = proto === 'netflow9' ? V9_TEMPLATE_V4.templateId : IPFIX_TEMPLATE_V4.templateId;
    assert.deepEqual(templatesIn(tpl), [wantId]);
    // The template record is byte-identical to the one the exporter sent.
    const original = Buffer.from(payload(first[0]));
    const replayed = Buffer.from(payload(tpl));
    const header = proto === 'netflow9' ? 20 : 16;
    assert.ok(original.includes(replayed.subarray(header + 4, replayed.length)), 'same template record bytes');
    // Observation domain and sequence carried over from the data packet's header.
    assert.equal(be32(payload(tpl), proto === 'netflow9' ? 16 : 12), proto === 'netflow9' ? 7 : 9);
    assert.equal(t.counter('select.templates_sent'), 1);

    // The new backend has them now: no second template datagram.
    assert.equal(t.feed([mirror(make(4, false))]).length, 1);

    // The first backend comes back (its collector may have restarted): templates again, before data.
    setBackendUp(d, ownerIndex, true);
    const back = t.feed([mirror(make(5, false))]);
    assert.equal(back.length, 2);
    assert.equal(dst(back[0]), owner);
    assert.deepEqual(templatesIn(back[0]), [wantId]);
    assertBalanced(t.accounting());
  });
}

test('replicate: every backend gets the templates before its first data packet', () => {
  const t = makePipeline({ ...config(), destinations: { c: { backends: BACKENDS, balance: 'replicate' } } });
  t.feed([mirror(v9(1, true))]);
  t.sink.take();
  const d = t.pipeline.ctx.tables.destinations[0];
  setBackendUp(d, 1, false);
  setBackendUp(d, 1, true); // a collector restart seen by the health check
  const out = t.feed([mirror(v9(2, false))]);
  assert.equal(out.length, 3, 'data to each backend, and templates to the one that came back');
  const toSecond = out.filter((p) => dst(p) === BACKENDS[1]);
  assert.equal(toSecond.length, 2);
  assert.deepEqual(templatesIn(toSecond[0]), [V9_TEMPLATE_V4.templateId]);
  assert.equal(out.filter((p) => dst(p) === BACKENDS[0]).length, 1, 'the first backend already has them');
});
