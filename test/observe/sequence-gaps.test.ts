/**
 * Sequence gaps from a real exporter. softflowd reads a capture of 2000 flows and exports them as
 * NetFlow v9, IPFIX and NetFlow v5 to a test socket; each recorded datagram is wrapped into an AWS
 * mirror frame (exporter source address, softflowd's own source port, collector 203.0.113.10),
 * chosen datagrams are left out, and the rest go to a live gateway in order. The per-exporter gap
 * and loss metrics must say exactly what was left out:
 *
 * - NetFlow v9 (sequence = export packets): lost = datagrams dropped; #7 and #8 adjacent are one gap.
 * - IPFIX (sequence = data records): lost = data records in the dropped messages, counted by
 *   decoding the messages with src/flow/ipfix.ts.
 * - NetFlow v5 (sequence = flows): lost = flows in the dropped datagrams.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ipfix from '../../src/flow/ipfix.js';
import { createTemplateIterator } from '../../src/flow/template.js';
import { buildMirrorFrame } from '../../src/gen/mirror.js';
import { CaptureWriter, LinkType } from '../../src/io/pcap/writer.js';
import * as ethernet from '../../src/proto/ethernet/packet.js';
import * as ipv4 from '../../src/proto/ipv4/packet.js';
import { readU16, readU32, writeU16, writeU32 } from '../../src/proto/bytes.js';
import { Backend, type Metrics, mirrorFrame, PORTS, requireTool, scratchDir, sendFrames, skipObserve, sleep, type Status, TestGateway, startGatewayWithBackend, stopGatewayWithBackend } from './helpers.js';

const P = PORTS.gaps;
const FLOWS = 2000;
/** Datagrams left out, 1-based in export order: #7 and #8 are adjacent, so 2 gap events. */
const DROPPED = [3, 7, 8];

interface Recorded {
  payload: Buffer;
  srcPort: number;
}

/** A capture of `FLOWS` flows (3/4 UDP, 1/4 TCP), two packets each, as softflowd's input. */
function writeFlowCapture(path: string): void {
  const w = CaptureWriter.create(path, LinkType.ETHERNET);
  const buf = Buffer.alloc(2048);
  const eth = ethernet.create();
  const ip = ipv4.create();
  let t = 1_700_000_000_000_000_000;
  for (let f = 0; f < FLOWS; f++) {
    const src = `10.${(f >> 8) & 0xff}.${f & 0xff}.${1 + (f % 7)}`;
    for (let k = 0; k < 2; k++) {
      let len: number;
      if (f % 4 !== 3) {
        // UDP: the inner frame of a mirror frame is a valid Ethernet/IPv4/UDP frame (checksums too).
        const n = buildMirrorFrame(
          {
            outerSrc: '198.18.1.1', outerDst: '198.18.255.1', outerSrcPort: 50000, vni: 1,
            innerSrcMac: 0x02_00_00_00_00_01, innerDstMac: 0x02_00_00_00_00_02,
            innerSrc: src, innerDst: '192.0.2.53', innerSrcPort: 1024 + f, innerDstPort: 53, payload: Buffer.alloc(32 + (f % 64), f & 0xff),
          },
          buf,
          0,
        );
        buf.copy(buf, 0, 50, n); // drop outer Ethernet/IPv4/UDP and VXLAN
        len = n - 50;
      } else {
        eth.src = 0x02_00_00_00_00_01;
        eth.dst = 0x02_00_00_00_00_02;
        eth.tagCount = 0;
        eth.etherType = ethernet.EtherType.IPV4;
        let p = ethernet.encode(eth, buf, 0);
        ip.tos = 0;
        ip.totalLength = 20 + 20 + 10;
        ip.id = f & 0xffff;
        ip.flags = ipv4.FLAG_DF;
        ip.fragmentOffset = 0;
        ip.ttl = 64;
        ip.protocol = 6;
        ip.src = ((10 << 24) | (((f >> 8) & 0xff) << 16) | ((f & 0xff) << 8) | (1 + (f % 7))) >>> 0;
        ip.dst = ((192 << 24) | (2 << 8) | 80) >>> 0; // 192.0.2.80
        ip.options = null;
        p += ipv4.encode(ip, buf, p);
        writeU16(buf, p, 20000 + f);
        writeU16(buf, p + 2, 443);
        writeU32(buf, p + 4, 1000 + k);
        writeU32(buf, p + 8, 0);
        buf[p + 12] = 5 << 4;
        buf[p + 13] = k === 0 ? 0x02 : 0x10; // SYN, then ACK
        writeU16(buf, p + 14, 65535);
        writeU16(buf, p + 16, 0);
        writeU16(buf, p + 18, 0);
        buf.fill(0x61, p + 20, p + 30);
        len = p + 30;
      }
      w.write(buf, 0, len, t);
      t += 250_000;
    }
  }
  w.close();
}

/**
 * Runs `softflowd -r CAPTURE -v VERSION -n 127.0.0.1:PORT -d` and returns the datagrams it
 * exported. softflowd 1.1's main loop waits on its control socket between pcap reads even when
 * reading a file, so a `softflowctl statistics` poke keeps it going until it expires every flow
 * at EOF and exits.
 */
async function recordSoftflowd(capture: string, version: '5' | '9' | '10', dir: string): Promise<Recorded[]> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
  const got: Recorded[] = [];
  sock.on('message', (payload, r) => got.push({ payload, srcPort: r.port }));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const ctl = join(dir, `softflowd-v${version}.ctl`);
  const child = spawn(
    'softflowd',
    ['-r', capture, '-n', `127.0.0.1:${sock.address().port}`, '-v', version, '-d', '-c', ctl, '-p', join(dir, `softflowd-v${version}.pid`)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = ''; // and stdout, where the final statistics go
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let exited = false;
  child.on('exit', () => (exited = true));
  const deadline = Date.now() + 15_000;
  try {
    while (!exited) {
      if (Date.now() > deadline) throw new Error(`softflowd -v ${version} did not finish: ${stderr}`);
      try {
        execFileSync('softflowctl', ['-c', ctl, 'statistics'], { stdio: 'ignore', timeout: 2000 });
      } catch {
        // not listening yet, or gone
      }
      await sleep(30);
    }
    await sleep(200);
  } finally {
    if (!exited) child.kill('SIGKILL');
    sock.close();
  }
  assert.match(stderr, new RegExp(`Flows exported: ${FLOWS} \\(${FLOWS} records\\)`), stderr);
  return got;
}

/** Data records per IPFIX message (options data included), from the templates seen so far. */
function ipfixRecordCounts(messages: readonly Buffer[]): number[] {
  const lengths = new Map<number, number>();
  const it = createTemplateIterator();
  return messages.map((m) => {
    ipfix.beginTemplates(m, 0, m.length, it);
    while (ipfix.nextTemplate(it)) lengths.set(it.record.templateId, it.record.recordLength);
    let records = 0;
    for (let q = ipfix.HEADER_LENGTH; q + ipfix.SET_HEADER_LENGTH <= m.length; ) {
      const id = readU16(m, q);
      const len = readU16(m, q + 2);
      if (id >= ipfix.MIN_DATA_SET_ID) records += Math.floor((len - ipfix.SET_HEADER_LENGTH) / lengths.get(id)!);
      q += len;
    }
    return records;
  });
}

/** What RFC 7011's definition predicts a collector sees: each message's sequence against the previous one's plus its records. */
function ipfixModel(seqs: readonly number[], records: readonly number[]): { gaps: number; lost: number; resets: number } {
  const r = { gaps: 0, lost: 0, resets: 0 };
  for (let k = 1; k < seqs.length; k++) {
    const diff = (seqs[k] - ((seqs[k - 1] + records[k - 1]) >>> 0)) | 0;
    if (diff > 0) {
      r.gaps++;
      r.lost += diff;
    } else if (diff < 0) r.resets++;
  }
  return r;
}

const keep = <T>(items: readonly T[]) => items.filter((_, k) => !DROPPED.includes(k + 1));

describe('observe: sequence gaps from softflowd through a live gateway', { skip: skipObserve, timeout: 60_000 }, () => {
  const scratch = scratchDir('gaps');
  const recorded: Record<'v9' | 'ipfix' | 'v5', Recorded[]> = { v9: [], ipfix: [], v5: [] };
  let backend: Backend;
  let gw: TestGateway;
  let m: Metrics;
  let counters: Record<string, number>;
  let status: Status;
  const sent = { v9: 0, ipfixAll: 0, ipfixDropped: 0, v5: 0 };

  before(async () => {
    requireTool('softflowd', 'softflowd');
    requireTool('softflowctl', 'softflowd');
    const capture = join(scratch.dir, 'flows.pcap');
    writeFlowCapture(capture);
    recorded.v9 = await recordSoftflowd(capture, '9', scratch.dir);
    recorded.ipfix = await recordSoftflowd(capture, '10', scratch.dir);
    recorded.v5 = await recordSoftflowd(capture, '5', scratch.dir);
    for (const [k, v] of Object.entries(recorded)) assert.ok(v.length >= 20, `softflowd ${k}: ${v.length} datagrams`);

    ({ backend, gw } = await startGatewayWithBackend(scratch, P));
    const wrap = (src: string, dstPort: number, list: readonly Recorded[]) => list.map((d) => mirrorFrame(src, d.srcPort, dstPort, d.payload));
    const streams = [
      wrap('198.18.0.11', 2055, keep(recorded.v9)),
      wrap('198.18.0.12', 4739, recorded.ipfix), // all of them: softflowd's own baseline
      wrap('198.18.0.22', 4739, keep(recorded.ipfix)),
      wrap('198.18.0.13', 2055, keep(recorded.v5)),
    ];
    [sent.v9, sent.ipfixAll, sent.ipfixDropped, sent.v5] = streams.map((s) => s.length);
    for (const s of streams) await sendFrames(P, s);
    counters = await gw.waitForRx(streams.reduce((n, s) => n + s.length, 0));
    m = await gw.metrics();
    status = await gw.status();
  });

  after(() => stopGatewayWithBackend(gw, backend, scratch));

  const gaps = (exporter: string) => m.value('mirrorgate_exporter_sequence_gaps_total', { exporter });
  const lost = (exporter: string) => m.value('mirrorgate_exporter_sequence_lost_total', { exporter });

  test('every datagram is forwarded unchanged with the exporter address and softflowd source port', () => {
    const total = sent.v9 + sent.ipfixAll + sent.ipfixDropped + sent.v5;
    assert.equal(m.value('mirrorgate_forwarded_packets_total'), total);
    assert.equal(backend.received.length, total);
    const fromV9 = backend.received.filter((r) => r.address === '198.18.0.11');
    assert.deepEqual(
      fromV9.map((r) => [r.port, r.payload.toString('hex')]),
      keep(recorded.v9).map((d) => [d.srcPort, d.payload.toString('hex')]),
    );
    for (const [e, n] of [['198.18.0.11', sent.v9], ['198.18.0.12', sent.ipfixAll], ['198.18.0.22', sent.ipfixDropped], ['198.18.0.13', sent.v5]] as const) {
      assert.equal(m.value('mirrorgate_exporter_packets_total', { exporter: e }), n, e);
      assert.equal(m.value('mirrorgate_exporter_malformed_total', { exporter: e }), 0, e);
    }
  });

  test('NetFlow v9: dropping #3, #7 and #8 is 2 gaps and 3 datagrams lost', () => {
    const seqs = recorded.v9.map((d) => readU32(d.payload, 12));
    assert.ok(seqs.every((s, k) => k === 0 || s === seqs[k - 1] + 1), `softflowd v9 numbers its export packets 1 by 1: ${seqs.slice(0, 10).join(',')}`);
    assert.equal(gaps('198.18.0.11'), 2);
    assert.equal(lost('198.18.0.11'), DROPPED.length);
  });

  test('NetFlow v5: lost = the flows in the dropped datagrams', () => {
    const flows = recorded.v5.map((d) => readU16(d.payload, 2));
    const seqs = recorded.v5.map((d) => readU32(d.payload, 16));
    assert.ok(seqs.every((s, k) => k === 0 || s === seqs[k - 1] + flows[k - 1]), 'softflowd v5 flow_sequence counts flows before the datagram');
    const droppedFlows = DROPPED.reduce((s, k) => s + flows[k - 1], 0);
    assert.ok(droppedFlows > 0);
    assert.equal(gaps('198.18.0.13'), 2);
    assert.equal(lost('198.18.0.13'), droppedFlows);
  });

  test('IPFIX: lost = the data records in the dropped messages, on top of softflowd\'s own baseline', (t) => {
    const msgs = recorded.ipfix.map((d) => d.payload);
    const records = ipfixRecordCounts(msgs);
    const seqs = msgs.map((m) => readU32(m, 8));
    const droppedRecords = DROPPED.reduce((s, k) => s + records[k - 1], 0);
    assert.ok(droppedRecords > 0);
    // softflowd 1.1 stamps each message with the record count *including* its own flow records
    // (RFC 7011 §3.1: those sent *before* it), and leaves its options data records out; so even
    // a lossless stream shows a gap after, and a reset before, each template refresh.
    t.diagnostic(`softflowd IPFIX: first message sequence ${seqs[0]} with ${records[0]} data records; sequences ${seqs.slice(0, 4).join(', ')}, ...`);
    const baseline = ipfixModel(seqs, records);
    const withDrops = ipfixModel(keep(seqs), keep(records));
    t.diagnostic(`RFC 7011 model: all messages ${JSON.stringify(baseline)}; without #${DROPPED.join(', #')} ${JSON.stringify(withDrops)}`);
    assert.deepEqual({ gaps: withDrops.gaps - baseline.gaps, lost: withDrops.lost - baseline.lost, resets: withDrops.resets - baseline.resets }, { gaps: 2, lost: droppedRecords, resets: 0 });

    assert.equal(gaps('198.18.0.12'), baseline.gaps, 'lossless stream: the gateway counts what the RFC model predicts');
    assert.equal(lost('198.18.0.12'), baseline.lost);
    assert.equal(gaps('198.18.0.22'), withDrops.gaps);
    assert.equal(lost('198.18.0.22'), withDrops.lost);
    assert.equal(gaps('198.18.0.22') - gaps('198.18.0.12'), 2);
    assert.equal(lost('198.18.0.22') - lost('198.18.0.12'), droppedRecords);
    const row = (e: string) => status.exporters.rows.find((r) => r.exporter === e)!;
    assert.equal(row('198.18.0.12').resets, baseline.resets, 'resets (in /api/status) as the model predicts');
    assert.equal(row('198.18.0.22').resets, withDrops.resets);
  });

  test('the flow-monitor totals in /api/counters add up the per-exporter metrics', () => {
    assert.equal(counters['flow-monitor.gaps'], m.sum('mirrorgate_exporter_sequence_gaps_total'));
    assert.equal(counters['flow-monitor.lost'], m.sum('mirrorgate_exporter_sequence_lost_total'));
    assert.equal(counters['flow-monitor.datagrams'], sent.v9 + sent.ipfixAll + sent.ipfixDropped + sent.v5);
    assert.equal(counters['flow-monitor.malformed'], 0);
  });
});
