/**
 * listen.fastPath through the whole lab, at both hooks: an exporter's datagrams, mirrored by the
 * kernel's vxlan device, learn their flow on the normal path and are then forwarded by the
 * program itself (in the XDP ingress program, or at tc ingress in front of the sockets), out of
 * the collector link, still from the exporter's address and port. The counters include them
 * (received = forwarded, per exporter, per backend), and a reload starts a new generation. From
 * XDP, a collector link that cannot take redirected frames (a veth whose peer has GRO off) is
 * found out, counted and left to the normal path, which then delivers everything; from tc, where
 * what is redirected is an ordinary skb, the same link takes them. The program follows a NetFlow
 * v9 exporter's sequence while it holds the flow: a gap counts once, and neither the hand-over
 * to the program nor the one back counts as loss.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Iface, TelemetryPort } from '../../src/lab/plan.js';
import { Tcpdump } from '../../src/lab/peers.js';
import { deliverWhole, reapStaleTestLabs, requireTools, skipLab, sleep, testLab } from './helpers.js';

const EXPORTER_PORT = 41000;
const V9_PORT = 41009;

for (const hook of ['xdp', 'tc'] as const) describe(`lab: fast path at the ${hook} hook`, { skip: skipLab, timeout: 120_000 }, () => {
  const lab = testLab(`fast${hook}`, { mtu: 1500 });

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool', 'tcpdump', 'tshark', '/usr/bin/python3');
    await reapStaleTestLabs();
    await lab.up();
    const config = lab.gatewayConfig();
    const listen =
      hook === 'xdp'
        ? { ...config.listen, xdp: { interface: Iface.GATEWAY_UPLINK }, fastPath: { hook } }
        : { ...config.listen, fastPath: { hook, interface: Iface.GATEWAY_UPLINK } };
    await lab.startGateway({ config: { ...config, listen, egress: { mode: 'packet' } } });
    // Packet egress (and so the fast path) needs the collector's next hop, which the kernel
    // resolves when the first datagram takes the raw path.
    await deliverWhole(lab, 600);
    const deadline = Date.now() + 5000;
    for (;;) {
      const hop = (await lab.status()).destinations[0].backends[0].nextHop;
      if (hop && 'dev' in hop) break;
      assert.ok(Date.now() < deadline, `the next hop was read within 5 s: ${JSON.stringify(hop)}`);
      await sleep(200);
    }
  });

  after(async () => {
    await lab.down();
  });

  /** Sends `count` datagrams of one flow (a fixed source port), paced, and returns what the collector link carried of it. */
  async function stream(count: number): Promise<{ src: string; srcPort: number; dst: string; checksum: string }[]> {
    const dump = await Tcpdump.start(lab, 'collector0', { iface: Iface.COLLECTOR, filter: `udp and src port ${EXPORTER_PORT}`, name: `fast-${Date.now()}`, snaplen: 256, bufferKiB: 8192 });
    const script = [
      'import socket, sys, time',
      's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      `s.bind((sys.argv[1], ${EXPORTER_PORT}))`,
      'p = bytes(200)',
      'for i in range(int(sys.argv[3])):',
      '    s.sendto(p, (sys.argv[2], ' + TelemetryPort.NETFLOW + '))',
      '    if i % 20 == 19: time.sleep(0.002)',
    ].join('\n');
    await lab.exec('exporter', '/usr/bin/python3', ['-c', script, lab.exporter, lab.monitored, String(count)]);
    await sleep(500);
    await dump.stop();
    return (await dump.packets()).map((p) => ({ src: p.src, srcPort: p.srcPort, dst: p.dst, checksum: p.checksum }));
  }

  const delta = (a: Record<string, number>, b: Record<string, number>, name: string) => (b[name] ?? 0) - (a[name] ?? 0);

  /**
   * Sends the flow's first packets and waits until the program holds it: how long the main thread
   * takes to install a flow depends on the machine's load, and the measured stream should not.
   */
  async function learn(): Promise<void> {
    if (((await lab.status()) as { fastPath?: { flows: number } }).fastPath?.flows) return;
    const before = (await lab.counters())['fast-path.flows_installed'] ?? 0;
    const deadline = Date.now() + 5000;
    for (;;) {
      await stream(20);
      if (((await lab.counters())['fast-path.flows_installed'] ?? 0) > before) return;
      assert.ok(Date.now() < deadline, 'the flow was installed within 5 s');
    }
  }

  test('after its first packets, a flow is forwarded by the program, source kept and counted', async () => {
    await lab.exec('collector0', 'ethtool', ['-K', Iface.COLLECTOR, 'gro', 'on']); // a veth takes redirected frames only with NAPI
    const installed = (await lab.counters())['fast-path.flows_installed'] ?? 0;
    await learn();
    const c0 = await lab.counters();
    const seen = await stream(2000);
    const c1 = await lab.counters();

    assert.equal(seen.length, 2000, 'every datagram reached the collector link');
    for (const p of seen) assert.deepEqual(p, { src: lab.exporter, srcPort: EXPORTER_PORT, dst: lab.collector(0), checksum: 'good' });
    const fast = delta(c0, c1, 'node.fast-path.packets');
    assert.ok(fast >= 1900, `the program forwarded most of them: ${fast} of 2000`);
    assert.ok((c1['fast-path.flows_installed'] ?? 0) - installed >= 1);
    assert.equal(delta(c0, c1, 'rx_packets'), delta(c0, c1, 'tx.forwarded') + delta(c0, c1, 'drop.unmatched'), 'received = forwarded (+ mirrored non-telemetry)');
    assert.ok(delta(c0, c1, 'tx.forwarded') >= 2000);
    assert.equal(delta(c0, c1, 'tx.errors'), 0);

    const s = await lab.status();
    assert.equal(s.accounting.balanced, true);
    assert.ok(s.destinations[0].backends[0].packets >= 2000, 'the backend\'s count includes the fast path\'s');
    const exporter = s.exporters.rows.find((e: { exporter: string }) => e.exporter === lab.exporter);
    assert.ok(exporter && exporter.packets >= 2000, `the exporter's count includes them: ${JSON.stringify(exporter)}`);
    assert.equal((s as { fastPath?: { hook: string } }).fastPath?.hook, hook, 'status shows the fast path');
  });

  /**
   * Sends NetFlow v9 datagrams from port V9_PORT, source ID 77, with sequence numbers from..to-1
   * except `skip` (each a data flowset; one carrying template `templateAt[1]` at sequence
   * `templateAt[0]`), paced; returns how many reached the collector link.
   */
  async function v9(from: number, to: number, opts: { skip?: [number, number]; templateAt?: [number, number] } = {}): Promise<number> {
    const dump = await Tcpdump.start(lab, 'collector0', { iface: Iface.COLLECTOR, filter: `udp and src port ${V9_PORT}`, name: `v9-${Date.now()}`, snaplen: 96, bufferKiB: 8192 });
    const [skipFrom, skipTo] = opts.skip ?? [-1, -1];
    const [templateSeq, templateId] = opts.templateAt ?? [-1, 0];
    const script = [
      'import socket, struct, sys, time',
      's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      `s.bind((sys.argv[1], ${V9_PORT}))`,
      'data = struct.pack("!HH", 256, 12) + bytes(8)',
      `template = struct.pack("!HHHHHHHH", 0, 16, ${templateId}, 2, 8, 4, 12, 4)`,
      'sent = 0',
      `for seq in range(${from}, ${to}):`,
      `    if ${skipFrom} <= seq < ${skipTo}: continue`,
      `    body = template if seq == ${templateSeq} else data`,
      '    s.sendto(struct.pack("!HHIIII", 9, 1, 1000, 1700000000, seq, 77) + body, (sys.argv[2], ' + TelemetryPort.NETFLOW + '))',
      '    sent += 1',
      '    if sent % 20 == 0: time.sleep(0.002)',
    ].join('\n');
    await lab.exec('exporter', '/usr/bin/python3', ['-c', script, lab.exporter, lab.monitored]);
    await sleep(500);
    await dump.stop();
    return (await dump.packets()).length;
  }

  test('the program follows a NetFlow v9 sequence: a gap counts once, hand-overs count none', async () => {
    await lab.exec('collector0', 'ethtool', ['-K', Iface.COLLECTOR, 'gro', 'on']);
    const exporterRow = async () => {
      const row = (await lab.status()).exporters.rows.find((e: { exporter: string }) => e.exporter === lab.exporter);
      return { gaps: row?.gaps ?? 0, lost: row?.lost ?? 0, resets: row?.resets ?? 0 };
    };
    const c0 = await lab.counters();
    const e0 = await exporterRow();
    // The normal path sees the first datagrams and proposes the flow.
    let seq = 0;
    const installed = c0['fast-path.flows_installed'] ?? 0;
    for (const deadline = Date.now() + 5000; ((await lab.counters())['fast-path.flows_installed'] ?? 0) === installed; seq += 20) {
      assert.ok(Date.now() < deadline, 'the v9 flow was installed within 5 s');
      assert.equal(await v9(seq, seq + 20), 20);
    }
    // The program's part: 1000 datagrams, 7 of them lost upstream, one carrying a template.
    const c1 = await lab.counters();
    assert.equal(await v9(seq, seq + 1000, { skip: [seq + 400, seq + 407], templateAt: [seq + 600, 300] }), 993);
    seq += 1000;
    const c2 = await lab.counters();
    assert.ok(delta(c1, c2, 'node.fast-path.packets') >= 900, `the program forwarded most: ${delta(c1, c2, 'node.fast-path.packets')}`);
    assert.equal(delta(c1, c2, 'flow-monitor.templates_cached'), 1, 'the template went on to the normal path\'s cache');
    // A new generation: the normal path has the stream again, then the program once more.
    assert.equal((await lab.control('POST', '/api/reload')).status, 200);
    assert.equal(await v9(seq, seq + 500), 500);
    seq += 500;

    const c3 = await lab.counters();
    const e1 = await exporterRow();
    assert.ok(delta(c0, c3, 'fast-path.generations') >= 1);
    assert.deepEqual({ gaps: delta(c0, c3, 'flow-monitor.gaps'), lost: delta(c0, c3, 'flow-monitor.lost'), resets: delta(c0, c3, 'flow-monitor.resets') }, { gaps: 1, lost: 7, resets: 0 });
    assert.deepEqual({ gaps: e1.gaps - e0.gaps, lost: e1.lost - e0.lost, resets: e1.resets - e0.resets }, { gaps: 1, lost: 7, resets: 0 }, 'the exporter\'s counts');
    assert.equal((await lab.status()).accounting.balanced, true);
  });

  test('a reload starts a new generation; the flow learns again and nothing is lost', async () => {
    const c0 = await lab.counters();
    const r = await lab.control('POST', '/api/reload');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await learn();
    const seen = await stream(1000);
    const c1 = await lab.counters();
    assert.equal(seen.length, 1000);
    assert.ok(delta(c0, c1, 'fast-path.generations') >= 1);
    assert.ok(delta(c0, c1, 'node.fast-path.packets') >= 900);
    assert.equal((await lab.status()).accounting.balanced, true);
  });

  if (hook === 'tc') {
    test('a link with GRO off takes what tc redirects to it', async () => {
      await lab.exec('collector0', 'ethtool', ['-K', Iface.COLLECTOR, 'gro', 'off']);
      await learn();
      const c0 = await lab.counters();
      const seen = await stream(1000);
      const c1 = await lab.counters();
      assert.equal(seen.length, 1000);
      assert.ok(delta(c0, c1, 'node.fast-path.packets') >= 900);
      assert.equal(delta(c0, c1, 'tx.errors'), 0);
      assert.equal((await lab.status()).accounting.balanced, true);
    });
    return;
  }

  test('a link that drops redirected frames is found out, counted, and left to the normal path', async () => {
    await lab.exec('collector0', 'ethtool', ['-K', Iface.COLLECTOR, 'gro', 'off']);
    const c0 = await lab.counters();
    await stream(3000);
    await sleep(2500); // the check runs every second
    const c1 = await lab.counters();
    const lost = delta(c0, c1, 'tx.errors_redirect');
    assert.ok(lost > 0, 'the frames the link dropped are counted as transmit errors');
    assert.equal(delta(c0, c1, 'tx.errors'), lost);

    const seen = await stream(1000);
    assert.equal(seen.length, 1000, 'from then on the normal path delivers every datagram');
    assert.equal((await lab.status()).accounting.balanced, true);
  });
});
