/**
 * Golden check against an independent implementation: Wireshark's dissectors (tshark) must read
 * the generated mirror frames without a single expert item, agree on every version, sequence
 * number and domain we generated, find all IPv4 and inner UDP checksums good, and raise no
 * "Unexpected flow sequence" (its own NetFlow v9 / IPFIX sequence analysis).
 *
 * tshark is a hard requirement: without it this test fails, it does not skip.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as netflow5 from '../../src/flow/netflow5.js';
import { type MirrorFrameSpec, buildMirrorFrame, buildMirrorFrame6, mirrorFrameLength, mirrorFrameLength6 } from '../../src/gen/mirror.js';
import { DEFAULT_SCENARIO, type ScenarioOptions, generateScenario } from '../../src/gen/scenario.js';

const TSHARK = '/usr/bin/tshark';
const dir = mkdtempSync(join(tmpdir(), 'mg-tshark-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Minimal classic pcap: little-endian, magic a1b2c3d4, µs timestamps, LINKTYPE_ETHERNET. */
function writePcap(path: string, packets: { timestampNs: number; frame: Uint8Array }[]): void {
  const parts: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeInt32LE(0, 8);
  gh.writeUInt32LE(0, 12);
  gh.writeUInt32LE(65535, 16);
  gh.writeUInt32LE(1, 20);
  parts.push(gh);
  for (const p of packets) {
    const micros = Math.floor(p.timestampNs / 1000);
    const sec = Math.floor(micros / 1e6);
    const rh = Buffer.alloc(16);
    rh.writeUInt32LE(sec, 0);
    rh.writeUInt32LE(micros - sec * 1e6, 4);
    rh.writeUInt32LE(p.frame.length, 8);
    rh.writeUInt32LE(p.frame.length, 12);
    parts.push(rh, Buffer.from(p.frame));
  }
  writeFileSync(path, Buffer.concat(parts));
}

const DECODE_AS = [
  '-d', 'udp.port==2055,cflow',
  '-d', 'udp.port==9995,cflow',
  '-d', 'udp.port==4739,cflow',
  '-d', 'udp.port==6343,sflow',
  '-o', 'ip.check_checksum:TRUE',
  '-o', 'udp.check_checksum:TRUE',
];

function tshark(args: string[]): string {
  if (!existsSync(TSHARK)) {
    assert.fail(`${TSHARK} not found: the golden test needs tshark (apt-get install tshark); it does not skip`);
  }
  return execFileSync(TSHARK, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** One row per frame, one array per field (all occurrences, in order). */
function fields(path: string, names: string[]): Map<string, string[]>[] {
  const format = ['-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=|', '-E', 'separator=\t'];
  const out = tshark(['-r', path, ...DECODE_AS, ...format, ...names.flatMap((n) => ['-e', n])]);
  return out
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const cols = line.split('\t');
      return new Map(names.map((n, i) => [n, cols[i] ? cols[i].split('|') : []]));
    });
}

/** `tshark -z expert`: its report, which must hold no problem of any severity. */
function expertReport(path: string): string {
  return tshark(['-r', path, ...DECODE_AS, '-q', '-z', 'expert']);
}

const GOOD = '1'; // ip/udp .checksum.status: 0 bad, 1 good, 2 unverified, 3 not present

const FIELDS = [
  'frame.number',
  'vxlan.vni',
  'ip.src',
  'ip.checksum.status',
  'udp.checksum.status',
  'udp.dstport',
  'cflow.version',
  'cflow.count',
  'cflow.sequence',
  'cflow.source_id',
  'cflow.od_id',
  'cflow.engine_type',
  'cflow.engine_id',
  'cflow.template_id',
  'sflow_245.version',
  'sflow_245.agent',
  'sflow_245.sub_agent_id',
  'sflow_245.sequence_number',
  'sflow_245.numsamples',
  'sflow.flow_sample.sequence_number',
  'sflow.flow_sample.index',
  'sflow.counters_sample.sequence_number',
  'sflow.counters_sample.source_id_index',
  '_ws.malformed',
  '_ws.expert.message',
];

function checkScenario(name: string, opts: ScenarioOptions): void {
  const frames = [...generateScenario(opts)];
  const path = join(dir, `${name}.pcap`);
  writePcap(path, frames);

  const report = expertReport(path);
  for (const bad of ['Errors (', 'Warns (', 'Malformed', 'Bad checksum', 'Unexpected flow sequence']) {
    assert.ok(!report.includes(bad), `tshark -z expert reports "${bad}":\n${report}`);
  }

  const rows = fields(path, FIELDS);
  assert.equal(rows.length, frames.length, 'tshark sees every frame');
  const v5next = new Map<string, number>();
  const sflowNext = new Map<string, number>();
  const sampleNext = new Map<string, number>();
  const one = (row: Map<string, string[]>, f: string) => {
    const v = row.get(f)!;
    assert.equal(v.length, 1, `${f}: ${v.join('|')}`);
    return v[0];
  };
  frames.forEach((frame, i) => {
    const row = rows[i];
    const info = frame.info;
    const where = `${name} frame ${i + 1} (${info.protocol} from ${info.exporter})`;
    assert.deepEqual(row.get('_ws.expert.message'), [], `${where}: expert items`);
    assert.deepEqual(row.get('_ws.malformed'), [], `${where}: malformed`);
    assert.equal(one(row, 'vxlan.vni'), String(opts.vni), where);
    // outer, inner and any IPv4 header sampled inside sFlow: all checksums good
    const ipStatus = row.get('ip.checksum.status')!;
    assert.ok(ipStatus.length >= 2 && ipStatus.every((s) => s === GOOD), `${where}: IPv4 checksums ${ipStatus}`);
    assert.equal(row.get('ip.src')![1], info.exporter, where);
    // outer UDP checksum zero ("not present"), inner UDP checksum verified good
    assert.deepEqual(row.get('udp.checksum.status')!.slice(0, 2), ['3', GOOD], `${where}: UDP checksums`);
    assert.equal(row.get('udp.dstport')![1], String(info.dstPort), where);

    if (info.protocol === 'sflow5') {
      assert.equal(one(row, 'sflow_245.version'), '5', where);
      assert.equal(one(row, 'sflow_245.agent'), info.exporter, where);
      assert.equal(one(row, 'sflow_245.sub_agent_id'), String(info.domain), where);
      const seq = Number(one(row, 'sflow_245.sequence_number'));
      assert.equal(seq, info.sequence, `${where}: datagram sequence`);
      assert.equal(Number(one(row, 'sflow_245.numsamples')), info.records, where);
      const key = `${info.exporter}/${info.domain}`;
      if (sflowNext.has(key)) assert.equal(seq, sflowNext.get(key), `${where}: sFlow datagram sequence continues`);
      sflowNext.set(key, (seq + 1) >>> 0);
      // per data source: flow and counter sample sequences each advance by one
      for (const [kind, seqField, idxField] of [
        ['flow', 'sflow.flow_sample.sequence_number', 'sflow.flow_sample.index'],
        ['counters', 'sflow.counters_sample.sequence_number', 'sflow.counters_sample.source_id_index'],
      ] as const) {
        const seqs = row.get(seqField)!;
        const idx = row.get(idxField)!;
        assert.equal(seqs.length, idx.length, where);
        seqs.forEach((s, k) => {
          const sk = `${key}/${kind}/${idx[k]}`;
          if (sampleNext.has(sk)) assert.equal(Number(s), sampleNext.get(sk), `${where}: ${kind} sample sequence of source ${idx[k]}`);
          sampleNext.set(sk, (Number(s) + 1) >>> 0);
        });
      }
      return;
    }
    const version = { netflow5: '5', netflow9: '9', ipfix: '10' }[info.protocol];
    assert.equal(one(row, 'cflow.version'), version, where);
    assert.equal(Number(one(row, 'cflow.sequence')), info.sequence, `${where}: sequence`);
    if (info.protocol === 'netflow5') {
      const count = Number(one(row, 'cflow.count'));
      assert.equal(count, info.records, where);
      const domain = (Number(one(row, 'cflow.engine_type')) << 8) | Number(one(row, 'cflow.engine_id'));
      assert.equal(domain, info.domain, where);
      const key = `${info.exporter}/${domain}`;
      if (v5next.has(key)) assert.equal(info.sequence, v5next.get(key), `${where}: v5 flow sequence continues`);
      v5next.set(key, (info.sequence + count) >>> 0);
    } else if (info.protocol === 'netflow9') {
      assert.equal(Number(one(row, 'cflow.source_id')), info.domain, where);
      assert.equal(Number(one(row, 'cflow.count')), info.records, where);
    } else {
      assert.equal(Number(one(row, 'cflow.od_id')), info.domain, where);
    }
    if (info.protocol !== 'netflow5') {
      const ids = row.get('cflow.template_id')!;
      assert.deepEqual(ids, info.templates ? ['256', '257', '258'] : [], `${where}: templates`);
    }
  });
  // every stream was actually followed
  assert.equal(v5next.size, opts.exporters.length);
  assert.equal(sflowNext.size, opts.exporters.length);
}

test('tshark: the default scenario dissects cleanly and agrees with the generator', () => {
  checkScenario('default', DEFAULT_SCENARIO);
});

test('tshark: another seed, sequences wrapping around 2^32', () => {
  checkScenario('wrap', {
    ...DEFAULT_SCENARIO,
    seed: 7,
    datagramsPerExporter: 40,
    exporters: ['198.18.0.21', '198.18.0.22'],
    sequenceStart: 0xffffffe0,
  });
});

test('tshark: mirror frame variants (802.1Q, GENEVE, inner IPv6)', () => {
  const payload = new Uint8Array(netflow5.encodingLength(1));
  netflow5.encode(
    { ...netflow5.create(), flowSequence: 4321, engineId: 3 },
    [{ ...netflow5.createRecord(), srcAddr: 0xc0000201, dstAddr: 0xc6336402, protocol: 17, srcPort: 5353, dstPort: 53, packets: 1, octets: 80 }],
    payload,
    0,
  );
  const base: MirrorFrameSpec = {
    outerSrc: '198.18.1.9',
    outerDst: '198.18.255.1',
    outerSrcPort: 50001,
    vni: 4242,
    innerSrcMac: 0x02_00_00_00_00_01,
    innerDstMac: 0x02_00_00_00_00_02,
    innerSrc: '198.18.0.50',
    innerDst: '203.0.113.10',
    innerSrcPort: 40000,
    innerDstPort: 2055,
    payload,
  };
  const specs: [MirrorFrameSpec, boolean][] = [
    [{ ...base, vlan: 42, df: true, ipId: 7 }, false],
    [{ ...base, tunnel: 'geneve' }, false],
    [{ ...base, innerSrc: '2001:db8::50', innerDst: '2001:db8::10' }, true],
    [{ ...base, tunnel: 'geneve', vlan: 100, innerSrc: '2001:db8::50', innerDst: '2001:db8::10' }, true],
  ];
  const packets = specs.map(([s, v6], i) => {
    const frame = Buffer.alloc(v6 ? mirrorFrameLength6(s) : mirrorFrameLength(s));
    (v6 ? buildMirrorFrame6 : buildMirrorFrame)(s, frame, 0);
    return { timestampNs: 1_700_000_000_000_000_000 + i * 1000, frame };
  });
  const path = join(dir, 'variants.pcap');
  writePcap(path, packets);
  const report = expertReport(path);
  assert.ok(!/Errors \(|Warns \(|Malformed|Bad checksum/.test(report), report);
  const rows = fields(path, [
    'vxlan.vni',
    'geneve.vni',
    'geneve.proto_type',
    'vlan.id',
    'ip.flags.df',
    'ip.id',
    'ipv6.src',
    'udp.checksum.status',
    'cflow.version',
    'cflow.sequence',
    'cflow.srcaddr',
    '_ws.expert.message',
    '_ws.malformed',
  ]);
  assert.equal(rows.length, 4);
  const get = (i: number, f: string) => rows[i].get(f)!;
  assert.deepEqual(get(0, 'vxlan.vni'), ['4242']);
  assert.deepEqual(get(0, 'vlan.id'), ['42']);
  assert.deepEqual(get(0, 'ip.flags.df'), ['0', '1'], 'outer DF clear, inner DF as asked');
  assert.deepEqual(get(0, 'ip.id'), ['0x0000', '0x0007']);
  assert.deepEqual(get(1, 'geneve.vni'), ['0x001092'], 'tshark shows the GENEVE VNI in hex: 4242');
  assert.deepEqual(get(1, 'geneve.proto_type'), ['0x6558']);
  assert.deepEqual(get(2, 'ipv6.src'), ['2001:db8::50']);
  assert.deepEqual(get(3, 'vlan.id'), ['100']);
  assert.deepEqual(get(3, 'geneve.vni'), ['0x001092']);
  for (let i = 0; i < 4; i++) {
    assert.deepEqual(get(i, 'udp.checksum.status'), ['3', GOOD], `frame ${i + 1}: UDP checksums`);
    assert.deepEqual(get(i, 'cflow.version'), ['5']);
    assert.deepEqual(get(i, 'cflow.sequence'), ['4321']);
    assert.deepEqual(get(i, 'cflow.srcaddr'), ['192.0.2.1']);
    assert.deepEqual(get(i, '_ws.expert.message'), [], `frame ${i + 1}: expert items`);
    assert.deepEqual(get(i, '_ws.malformed'), []);
  }
});
