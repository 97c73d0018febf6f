import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import { createFlowHeaderInfo, decodeFlowHeader, ipfix, netflow5, netflow9 } from '../../src/flow/index.js';
import { createTemplateIterator } from '../../src/flow/template.js';
import { formatIPv4 } from '../../src/gen/mirror.js';
import { DEFAULT_SCENARIO, type ScenarioFrame, generateScenario, outerSourcePort } from '../../src/gen/scenario.js';
import { Decode } from '../../src/proto/result.js';
import { sets } from '../flow/helpers.js';
import { dissect, ipv4HeaderOk, udpChecksumOk } from './helpers.js';

const docs = new BlockList();
docs.addSubnet('198.18.0.0', 15);
docs.addSubnet('192.0.2.0', 24);
docs.addSubnet('198.51.100.0', 24);
docs.addSubnet('203.0.113.0', 24);

const frames: ScenarioFrame[] = [...generateScenario(DEFAULT_SCENARIO)];

test('scenario: DEFAULT_SCENARIO', () => {
  assert.equal(DEFAULT_SCENARIO.vni, 123);
  assert.equal(DEFAULT_SCENARIO.collector, '203.0.113.10');
  assert.ok(DEFAULT_SCENARIO.exporters.length >= 3);
  for (const e of DEFAULT_SCENARIO.exporters) assert.ok(e.startsWith('198.18.0.'), e);
  assert.ok(Object.isFrozen(DEFAULT_SCENARIO));
  const { exporters, datagramsPerExporter, protocols } = DEFAULT_SCENARIO;
  assert.equal(frames.length, exporters.length * datagramsPerExporter * protocols.length);
});

test('scenario: deterministic for a seed, different across seeds', () => {
  const again = [...generateScenario(DEFAULT_SCENARIO)];
  assert.equal(again.length, frames.length);
  again.forEach((f, i) => {
    assert.equal(f.timestampNs, frames[i].timestampNs);
    assert.ok(f.frame.equals(frames[i].frame), `frame ${i}`);
  });
  const other = [...generateScenario({ ...DEFAULT_SCENARIO, seed: 2 })];
  assert.ok(other.some((f, i) => !f.frame.equals(frames[i].frame)));
});

test('scenario: time order within the duration', () => {
  const start = DEFAULT_SCENARIO.startNs;
  for (let i = 0; i < frames.length; i++) {
    assert.ok(frames[i].timestampNs >= start);
    assert.ok(frames[i].timestampNs < start + DEFAULT_SCENARIO.durationMs * 1e6);
    if (i) assert.ok(frames[i].timestampNs >= frames[i - 1].timestampNs, `frame ${i} out of order`);
  }
});

test('scenario: mirror encapsulation and addressing', () => {
  const eniByExporter = new Map<string, string>();
  for (const f of frames) {
    const d = dissect(f.frame);
    assert.equal(d.vni, DEFAULT_SCENARIO.vni);
    const outerSrc = formatIPv4(d.outerIp.src);
    assert.ok(outerSrc.startsWith('198.18.'), `outer source ${outerSrc} is ENI-like`);
    assert.equal(formatIPv4(d.outerIp.dst), DEFAULT_SCENARIO.mirrorTarget);
    const ip = d.innerIp4!;
    assert.equal(formatIPv4(ip.src), f.info.exporter);
    assert.equal(formatIPv4(ip.dst), DEFAULT_SCENARIO.collector);
    assert.ok(ipv4HeaderOk(f.frame, d.innerIpOff));
    assert.ok(udpChecksumOk(f.frame, d));
    assert.equal(d.innerUdp.srcPort, f.info.srcPort);
    assert.equal(d.innerUdp.dstPort, f.info.dstPort);
    assert.equal(d.outerUdp.srcPort, outerSourcePort(ip.src, ip.dst, 17, d.innerUdp.srcPort, d.innerUdp.dstPort));
    assert.ok(d.outerUdp.srcPort >= 49152);
    const expected = { netflow5: [2055], netflow9: [2055, 9995], ipfix: [4739], sflow5: [6343] }[f.info.protocol];
    assert.ok(expected.includes(d.innerUdp.dstPort), `${f.info.protocol} to ${d.innerUdp.dstPort}`);
    const eni = eniByExporter.get(f.info.exporter) ?? outerSrc;
    assert.equal(outerSrc, eni, 'one ENI per exporter');
    eniByExporter.set(f.info.exporter, eni);
    for (const a of [outerSrc, formatIPv4(d.outerIp.dst), formatIPv4(ip.src), formatIPv4(ip.dst)]) {
      assert.ok(docs.check(a), `${a} is a documentation address`);
    }
  }
  assert.equal(new Set(eniByExporter.values()).size, DEFAULT_SCENARIO.exporters.length);
  // NetFlow v9 goes to both of its ports across exporters
  const v9ports = new Set(frames.filter((f) => f.info.protocol === 'netflow9').map((f) => f.info.dstPort));
  assert.deepEqual([...v9ports].sort(), [2055, 9995]);
});

test('scenario: sequence numbers per exporter, protocol and domain', () => {
  const out = createFlowHeaderInfo();
  const next = new Map<string, number>();
  const counts = new Map<string, number>();
  for (const f of frames) {
    const d = dissect(f.frame);
    assert.equal(decodeFlowHeader(f.frame, d.payloadOff, d.payloadEnd, out), Decode.OK);
    assert.equal(out.protocol, f.info.protocol);
    assert.equal(out.sequence, f.info.sequence);
    assert.equal(out.domain, f.info.domain);
    const key = `${f.info.exporter}/${f.info.protocol}/${out.domain}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const want = next.get(key);
    if (want !== undefined) assert.equal(out.sequence, want, `${key}: sequence`);
    // what the header itself says the step is, where it can (IPFIX needs the templates)
    if (out.sequenceStep >= 0) assert.equal(out.sequenceStep, f.info.sequenceStep);
    if (f.info.protocol === 'sflow5') assert.equal(out.agent, Number(out.sflow5.agentV4));
    next.set(key, (out.sequence + f.info.sequenceStep) >>> 0);
  }
  // one sequence space per exporter and protocol
  assert.equal(counts.size, DEFAULT_SCENARIO.exporters.length * 4);
  for (const n of counts.values()) assert.equal(n, DEFAULT_SCENARIO.datagramsPerExporter);
  // and distinct domains across exporters, so collectors never mix them up
  for (const p of ['netflow5', 'netflow9', 'ipfix']) {
    const domains = [...counts.keys()].filter((k) => k.includes(`/${p}/`)).map((k) => k.split('/')[2]);
    assert.equal(new Set(domains).size, DEFAULT_SCENARIO.exporters.length, p);
  }
});

test('scenario: v9 and IPFIX send templates before data that uses them', () => {
  const known = new Map<string, Set<number>>();
  const it = createTemplateIterator();
  const firsts = new Set<string>();
  for (const f of frames) {
    const p = f.info.protocol;
    if (p !== 'netflow9' && p !== 'ipfix') continue;
    const key = `${f.info.exporter}/${p}`;
    const d = dissect(f.frame);
    const have = known.get(key) ?? new Set<number>();
    known.set(key, have);
    if (!firsts.has(key)) {
      firsts.add(key);
      assert.ok(f.info.templates, `${key}: first datagram carries the templates`);
    }
    const begin = p === 'netflow9' ? netflow9.beginTemplates : ipfix.beginTemplates;
    const nextT = p === 'netflow9' ? netflow9.nextTemplate : ipfix.nextTemplate;
    assert.equal(begin(f.frame, d.payloadOff, d.payloadEnd, it), Decode.OK);
    let n = 0;
    while (nextT(it)) {
      have.add(it.record.templateId);
      n++;
    }
    assert.equal(it.status, Decode.OK);
    assert.equal(n > 0, f.info.templates);
    for (const [id] of sets(f.frame, d.payloadOff + (p === 'netflow9' ? 20 : 16), d.payloadEnd)) {
      if (id >= 256) assert.ok(have.has(id), `${key}: data set ${id} after its template`);
    }
  }
  assert.equal(firsts.size, DEFAULT_SCENARIO.exporters.length * 2);
});

test('scenario: flow records use documentation addresses only', () => {
  const h = netflow5.create();
  const r = netflow5.createRecord();
  let seen = 0;
  for (const f of frames) {
    if (f.info.protocol !== 'netflow5') continue;
    const d = dissect(f.frame);
    assert.equal(netflow5.decode(f.frame, d.payloadOff, d.payloadEnd, h), Decode.OK);
    assert.equal(h.count, f.info.records);
    for (let i = 0; i < h.count; i++) {
      netflow5.decodeRecord(f.frame, d.payloadOff, d.payloadEnd, i, r);
      for (const a of [r.srcAddr, r.dstAddr, r.nextHop]) assert.ok(docs.check(formatIPv4(a)), formatIPv4(a));
      assert.ok(r.srcAs >= 64496 && r.srcAs <= 64511);
      seen++;
    }
  }
  assert.ok(seen > 100);
});

test('scenario: sequenceStart makes every counter wrap', () => {
  const out = createFlowHeaderInfo();
  const wrapped = new Set<string>();
  const last = new Map<string, number>();
  for (const f of generateScenario({ ...DEFAULT_SCENARIO, sequenceStart: 0xfffffff8, datagramsPerExporter: 12 })) {
    const d = dissect(f.frame);
    assert.equal(decodeFlowHeader(f.frame, d.payloadOff, d.payloadEnd, out), Decode.OK);
    const key = `${f.info.exporter}/${f.info.protocol}`;
    if (!last.has(key)) assert.equal(out.sequence, 0xfffffff8, key);
    else if (out.sequence < last.get(key)!) wrapped.add(f.info.protocol);
    last.set(key, out.sequence);
  }
  assert.deepEqual([...wrapped].sort(), ['ipfix', 'netflow5', 'netflow9', 'sflow5']);
  assert.throws(() => [...generateScenario({ ...DEFAULT_SCENARIO, sequenceStart: 2 ** 32 })], RangeError);
});

test('scenario: options', () => {
  const small = [
    ...generateScenario({
      vni: 7,
      exporters: ['192.0.2.1'],
      collector: '198.51.100.9',
      datagramsPerExporter: 3,
      protocols: ['sflow5'],
      durationMs: 50,
      startNs: 0,
      seed: 9,
    }),
  ];
  assert.equal(small.length, 3);
  for (const f of small) {
    assert.equal(f.info.protocol, 'sflow5');
    assert.ok(f.timestampNs >= 0 && f.timestampNs < 50e6);
    assert.equal(dissect(f.frame).vni, 7);
  }
  assert.equal([...generateScenario({ ...DEFAULT_SCENARIO, datagramsPerExporter: 0 })].length, 0);
  assert.throws(() => [...generateScenario({ ...DEFAULT_SCENARIO, collector: 'nope' })], RangeError);
  assert.throws(() => [...generateScenario({ ...DEFAULT_SCENARIO, durationMs: 0 })], RangeError);
});
