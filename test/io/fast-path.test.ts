/**
 * The fast path against the kernel, at both hooks: VXLAN frames built by scapy cross a veth into
 * the gateway namespace, whose program (in the XDP ingress program, or alone at tc ingress)
 * forwards the flows it has actions for out of a second veth into a collector namespace, where
 * tcpdump records them and tshark dissects and checks them. Every frame the fast path must not
 * forward (no action, an old generation, too long for the MTU, a bad inner checksum, truncated,
 * an expiring TTL, a VLAN tag) must reach the normal path's receiver instead (the AF_XDP socket,
 * or the UDP socket behind tc), and the counters must count exactly what was forwarded.
 * The gateway side runs in fast-path-agent.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { SocketError } from '../../src/control/errors.js';
import { ipv4ToNumber } from '../../src/core/prefix-set.js';
import { ActionFlag, ExportKind, FastPathMaps, type SlotCounts } from '../../src/io/native/fast-path.js';
import { loadError, nativeAvailable } from '../../src/io/native/index.js';
import { TcProgram } from '../../src/io/native/tc.js';
import { isRoot } from './native/helpers.js';

const skip = !nativeAvailable() ? `native addon not built: ${loadError()}` : !isRoot ? 'builds network namespaces: needs root' : false;
const GW = `mgfg${process.pid}`;
const TX = `mgft${process.pid}`;
const SINK = `mgfs${process.pid}`;
const EXPORTER = '198.18.20.5';
const COLLECTOR = '198.18.10.2';
const MIRROR_SRC = '198.18.9.1';
const VNI = 123;

function ip(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
}

const macOf = (ns: string, dev: string) => (JSON.parse(ip(ns, '-json', 'link', 'show', dev)) as { address: string }[])[0].address;

interface Seen {
  tag: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  ttl: number;
  df: boolean;
  ipChecksumGood: boolean;
  udpChecksum: string;
  ethDst: string;
  ethSrc: string;
}

/** What tshark makes of the capture, checksums verified. */
function dissect(pcap: string): Seen[] {
  const fields = ['ip.src', 'ip.dst', 'udp.srcport', 'udp.dstport', 'ip.ttl', 'ip.flags.df', 'ip.checksum.status', 'udp.checksum', 'udp.checksum.status', 'eth.dst', 'eth.src', 'data.data'];
  const out = execFileSync('tshark', ['-r', pcap, '--disable-protocol', 'cflow', '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-T', 'fields', ...fields.flatMap((f) => ['-e', f]), '-E', 'separator=|'], { encoding: 'utf8' });
  return out.trim().split('\n').filter(Boolean).map((line) => {
    const [src, dst, sport, dport, ttl, df, ipStatus, udpSum, udpStatus, ethDst, ethSrc, data] = line.split('|');
    const tag = /T:[a-w0-9-]+/.exec(Buffer.from(data ?? '', 'hex').toString('latin1'))?.[0] ?? '?';
    // Checksum status 1 is good, 0 bad, 3 not present (a UDP checksum of zero).
    const udpChecksum = udpSum === '0x0000' ? 'none' : udpStatus === '1' ? 'good' : `status ${udpStatus}`;
    return { tag, src, dst, sport: Number(sport), dport: Number(dport), ttl: Number(ttl), df: df === '1' || df === 'True', ipChecksumGood: ipStatus === '1', udpChecksum, ethDst, ethSrc };
  });
}

const HOOKS = { xdp: 'the xdp hook', tc: 'the tc hook (tcx link)', 'tc-filter': 'the tc hook (clsact filter, as where the kernel has no tcx)' };
for (const [hook, where] of Object.entries(HOOKS)) describe(`fast path at ${where}`, { skip, timeout: 120_000 }, () => {
  let gwMac = '';
  let sinkMac = '';
  let egressMac = '';
  let dir = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mg-fast-'));
    for (const ns of [GW, TX, SINK]) execFileSync('ip', ['netns', 'add', ns]);
    ip(TX, 'link', 'add', 'x0', 'type', 'veth', 'peer', 'name', 'x1', 'netns', GW);
    ip(GW, 'link', 'add', 'e0', 'type', 'veth', 'peer', 'name', 'e1', 'netns', SINK);
    ip(TX, 'addr', 'add', `${MIRROR_SRC}/24`, 'dev', 'x0');
    ip(GW, 'addr', 'add', '198.18.9.2/24', 'dev', 'x1');
    ip(GW, 'addr', 'add', '198.18.10.1/24', 'dev', 'e0');
    ip(SINK, 'addr', 'add', `${COLLECTOR}/24`, 'dev', 'e1');
    for (const [ns, dev] of [[TX, 'x0'], [GW, 'x1']]) ip(ns, 'link', 'set', dev, 'mtu', '9000'); // mirror frames carry 50 bytes more
    for (const [ns, dev] of [[TX, 'x0'], [GW, 'x1'], [GW, 'e0'], [SINK, 'e1']]) {
      ip(ns, 'link', 'set', dev, 'up');
      ip(ns, 'link', 'set', 'lo', 'up');
    }
    // A veth takes redirected frames only when its peer runs NAPI, which GRO turns on.
    execFileSync('ip', ['netns', 'exec', SINK, 'ethtool', '-K', 'e1', 'gro', 'on']);
    gwMac = macOf(GW, 'x1');
    sinkMac = macOf(SINK, 'e1');
    egressMac = macOf(GW, 'e0');
  });

  after(() => {
    for (const ns of [GW, TX, SINK]) {
      try {
        execFileSync('ip', ['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the agent with `flows` and `generation` while tcpdump records the collector side. */
  async function run(generation: number, flows: object[], script: string): Promise<{ normal: string[]; counters: SlotCounts[]; via: string; seen: Seen[] }> {
    const pcap = join(dir, `sink-${generation}-${Date.now()}.pcap`);
    // Immediate mode: without it, frames wait in the capture ring for a block timeout and a quick stop loses them.
    const dump = spawn('ip', ['netns', 'exec', SINK, 'tcpdump', '--immediate-mode', '-U', '-n', '-i', 'e1', '-w', pcap, 'udp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      dump.stderr.on('data', (d: Buffer) => d.toString().includes('listening on') && resolve());
      dump.on('exit', (code) => reject(new Error(`tcpdump exited ${code}`)));
    });
    const agent = fileURLToPath(new URL('./fast-path-agent.js', import.meta.url));
    let out: string;
    try {
      out = execFileSync('ip', ['netns', 'exec', GW, process.execPath, agent, hook, 'x1', TX, 'x0', String(generation), JSON.stringify(flows), script], { encoding: 'utf8', timeout: 30_000 });
    } finally {
      const exited = new Promise((r) => dump.once('exit', r));
      dump.kill('SIGINT');
      await exited;
    }
    return { ...JSON.parse(out), seen: dissect(pcap) };
  }

  const key = { outerSrc: MIRROR_SRC, vni: VNI, src: EXPORTER, dst: '198.18.30.1', srcPort: 40000, dstPort: 2055 };
  const action = (generation: number, slot: number, flags: number) => ({
    addr: COLLECTOR, port: 9995, mtu: 1500, dstMac: sinkMac, egress: 'e0', slot, flags, generation,
  });
  /** A mirror frame as AWS sends it: outer IPv4/UDP 4789, VXLAN with the VNI, the original frame. */
  const mirror = (inner: string, opts: { vni?: number; sport?: number } = {}) =>
    `Ether(dst='${gwMac}')/IP(src='${MIRROR_SRC}', dst='198.18.9.2')/UDP(sport=${opts.sport ?? 50000}, dport=4789)/VXLAN(vni=${opts.vni ?? VNI}, flags=0x08)/Ether(src='02:00:00:00:00:01', dst='02:00:00:00:00:02')/${inner}`;
  /** The exporter's datagram; the options replace the defaults (TTL 64, DF; port 2055). */
  const flow = (tag: string, ipOpts = ", ttl=64, flags='DF'", udpOpts = ', dport=2055', extra = '') =>
    `IP(src='${EXPORTER}', dst='198.18.30.1'${ipOpts})/UDP(sport=40000${udpOpts})/Raw(b'${tag}'${extra})`;
  const DF = ", ttl=64, flags='DF'";

  test('known flows are decapsulated, DNATed and sent on by the program; everything else takes the normal path', async () => {
    const script = `
frames = [${mirror(flow('T:fast'))}] * 5
frames += [${mirror(flow('T:nosum', DF, ', dport=2055, chksum=0'))}] * 2
frames += [${mirror(flow('T:nodf', ', ttl=64'))}]
frames += [${mirror(flow('T:other', DF, ', dport=2056'))}]
frames += [${mirror(flow('T:vni'), { vni: 124 })}]
frames += [${mirror(flow('T:big', DF, ', dport=2055', " + b'z' * 1500"))}]
frames += [${mirror(flow('T:badsum', `${DF}, chksum=0x1234`))}]
frames += [${mirror(flow('T:trunc', `${DF}, len=400`))}]
frames += [${mirror(flow('T:ttl', ", ttl=1, flags='DF'"))}]
frames += [${mirror(`Dot1Q(vlan=7)/${flow('T:vlan')}`)}]
sendp(frames, iface=IFACE)
`;
    const got = await run(7, [{ key, action: action(7, 3, ActionFlag.CLEAR_DF | ActionFlag.DECREMENT_TTL) }], script);
    assert.equal(got.via, hook === 'tc-filter' ? 'filter' : hook === 'tc' ? 'link' : 'xdp');

    const fast = got.seen.filter((s) => s.tag === 'T:fast');
    assert.equal(fast.length, 5, `forwarded: ${JSON.stringify(got.seen.map((s) => s.tag))}; normal path: ${got.normal}; counted: ${JSON.stringify(got.counters[3])}`);
    for (const s of fast) {
      assert.deepEqual(
        { src: s.src, sport: s.sport, dst: s.dst, dport: s.dport, ttl: s.ttl, df: s.df, ip: s.ipChecksumGood, udp: s.udpChecksum, ethDst: s.ethDst, ethSrc: s.ethSrc },
        { src: EXPORTER, sport: 40000, dst: COLLECTOR, dport: 9995, ttl: 63, df: false, ip: true, udp: 'good', ethDst: sinkMac, ethSrc: egressMac },
      );
    }
    const nosum = got.seen.filter((s) => s.tag === 'T:nosum');
    assert.deepEqual(nosum.map((s) => [s.dst, s.dport, s.udpChecksum, s.ipChecksumGood]), [[COLLECTOR, 9995, 'none', true], [COLLECTOR, 9995, 'none', true]]);
    assert.deepEqual(got.seen.filter((s) => s.tag === 'T:nodf').map((s) => [s.df, s.ipChecksumGood, s.udpChecksum]), [[false, true, 'good']]);
    assert.equal(got.seen.length, 8, 'nothing else left by the fast path');

    assert.deepEqual([...got.normal].sort(), ['T:badsum', 'T:big', 'T:other', 'T:trunc', 'T:ttl', 'T:vlan', 'T:vni'], 'the rest reached the normal path');
    // IP bytes: 20 + 8 + the tag; DF was set on all but T:nodf.
    assert.deepEqual(got.counters[3], { packets: 8, bytes: 5 * 34 + 2 * 35 + 34, dfCleared: 7, aborted: 0, gaps: 0, lost: 0, resets: 0 });
    assert.equal(got.counters.reduce((sum, c) => sum + c.packets, 0), 8, 'only the action\'s slot counted');
  });

  test('the program follows each flow\'s NetFlow v5, v9 or sFlow sequence; other streams and v9 templates take the normal path', async () => {
    // Three flows from the exporter, one per export protocol, each with its own slot.
    const exportFlow = (srcPort: number, slot: number, kind: number, domain: number, agent = '0.0.0.0') => ({
      key: { ...key, srcPort },
      action: { ...action(7, slot, 0), export: { kind, domain, agent: ipv4ToNumber(agent) } },
    });
    const flows = [exportFlow(40001, 4, ExportKind.NETFLOW9, 77), exportFlow(40002, 5, ExportKind.NETFLOW5, 0x0102), exportFlow(40003, 6, ExportKind.SFLOW5, 9, '198.18.7.7')];
    const datagram = (sport: number, payload: string) => mirror(`IP(src='${EXPORTER}', dst='198.18.30.1')/UDP(sport=${sport}, dport=2055)/${payload}`);
    const v9 = (seq: number, tag: string, sourceId = 77, template = false) =>
      datagram(40001, `NetflowHeader(version=9)/NetflowHeaderV9(count=1, packageSequence=${seq}, SourceID=${sourceId})/Raw(${template ? "struct.pack('!HHHHHH', 0, 12, 300, 1, 8, 4) + " : ''}struct.pack('!HH', 256, 12) + b'${tag.padEnd(8, 'z')}')`);
    const v5 = (seq: number, tag: string, engineId = 2) =>
      datagram(40002, `NetflowHeader(version=5)/NetflowHeaderV5(count=2, flowSequence=${seq}, engineType=1, engineID=${engineId})/Raw(b'${tag}')`);
    const sflow = (seq: number, tag: string, agent = '198.18.7.7') =>
      datagram(40003, `Raw(struct.pack('!II', 5, 1) + socket.inet_aton('${agent}') + struct.pack('!IIII', 9, ${seq}, 1000, 0) + b'${tag}')`);
    const script = `
import socket, struct
from scapy.layers.netflow import *
frames = [${[v9(10, 'T:n10'), v9(11, 'T:n11'), v9(12, 'T:n12'), v9(15, 'T:n15'), v9(16, 'T:n16'), v9(17, 'T:tpl', 77, true), v9(14, 'T:n14'), v9(18, 'T:dom', 78)].join(', ')}]
frames += [${[v5(100, 'T:f100'), v5(102, 'T:f102'), v5(110, 'T:f110'), v5(112, 'T:eng', 3), datagram(40002, "NetflowHeader(version=9)/NetflowHeaderV9(count=1, packageSequence=1, SourceID=258)/Raw(b'T:ver')")].join(', ')}]
frames += [${[sflow(1, 'T:s1'), sflow(2, 'T:s2'), sflow(1, 'T:s1again'), sflow(3, 'T:agent', '198.18.7.8')].join(', ')}]
sendp(frames, iface=IFACE)
`;
    const got = await run(7, flows, script);
    const seq = { gaps: 0, lost: 0, resets: 0 };
    const fields = (c: SlotCounts) => ({ packets: c.packets, gaps: c.gaps, lost: c.lost, resets: c.resets });
    // v9: 13-14 skipped after 12 (a gap of 2), 14 late (a step back); the template datagram is
    // counted in order, then left to the normal path, as is another source ID's.
    assert.deepEqual(fields(got.counters[4]), { ...seq, packets: 6, gaps: 1, lost: 2, resets: 1 }, `normal path: ${got.normal}`);
    // v5: 100 and 102 carry 2 flows each, so 104 was next: 6 flows lost before 110.
    assert.deepEqual(fields(got.counters[5]), { ...seq, packets: 3, gaps: 1, lost: 6 });
    // sFlow: 1, 2, then 1 again (the agent restarted); another agent's datagram is not this stream's.
    assert.deepEqual(fields(got.counters[6]), { ...seq, packets: 3, resets: 1 });
    assert.deepEqual([...got.normal].sort(), ['T:agent', 'T:dom', 'T:eng', 'T:tpl', 'T:ver']);
    assert.equal(got.seen.length, 12, `forwarded: ${JSON.stringify(got.seen.map((s) => s.tag))}`);
  });

  test('an action of another generation is not used, and generation 0 turns the fast path off', async () => {
    const script = `sendp([${mirror(flow('T:gen'))}] * 3, iface=IFACE)`;
    const stale = await run(8, [{ key, action: action(7, 1, 0) }], script);
    assert.deepEqual([stale.normal, stale.seen.length, stale.counters[1].packets], [['T:gen', 'T:gen', 'T:gen'], 0, 0]);
    const off = await run(0, [{ key, action: action(0, 1, 0) }], script);
    assert.deepEqual([off.normal.length, off.seen.length, off.counters[1].packets], [3, 0, 0]);
  });
});

for (const attach of ['link', 'filter'] as const) {
  test(`a tc program (by ${attach}) on an interface that does not exist is a clear error`, { skip }, () => {
    const maps = new FastPathMaps(16, 16, 'MG_ERR_TC');
    try {
      assert.throws(
        () => new TcProgram({ iface: { name: 'mg-none', ifindex: 0x7ffffff0 }, address: '0.0.0.0', vxlanPort: 4789, fast: maps, attach }),
        (e: SocketError) => e.code === 'MG_ERR_TC' && e.errno === 'ENODEV' && e.message === 'tc fast path on mg-none: ENODEV — no such interface',
      );
    } finally {
      maps.close();
    }
  });
}
