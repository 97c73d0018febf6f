/**
 * egress.mode: packet — frames written straight to the collector link. Until the kernel has
 * resolved the collector's neighbour, packets take the raw IP path (which resolves it); once the
 * gateway has read the next hop, whole datagrams and fragments leave as frames, still from the
 * exporter's address and port, and the collector's kernel takes them like any other.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Iface } from '../../src/lab/plan.js';
import { Tcpdump } from '../../src/lab/peers.js';
import { deliverWhole, reapStaleTestLabs, requireTools, skipLab, testLab } from './helpers.js';

describe('lab: packet egress', { skip: skipLab, timeout: 90_000 }, () => {
  const lab = testLab('pkt', { mtu: 1500 });

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool', 'tcpdump', 'tshark', '/usr/bin/python3');
    await reapStaleTestLabs();
    await lab.up();
    await lab.startGateway({ config: { ...lab.gatewayConfig(), egress: { mode: 'packet' } } });
  });

  after(async () => {
    await lab.down();
  });

  async function hop() {
    return (await lab.status()).destinations[0].backends[0].nextHop;
  }

  test('the first datagram goes through the kernel, which resolves the collector; later ones leave as frames', async () => {
    await deliverWhole(lab, 600); // no next hop yet: raw IP path, which makes the kernel resolve the neighbour
    const deadline = Date.now() + 5000;
    let h = await hop();
    while ((!h || 'none' in h) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      h = await hop();
    }
    assert.ok(h && 'dev' in h, `the next hop was read within 5 s: ${JSON.stringify(h)}`);
    assert.equal(h.dev, Iface.gatewayToCollector(0), 'the collector link');

    const before = await lab.counters();
    const dump = await Tcpdump.start(lab, 'collector0', { iface: Iface.COLLECTOR, filter: 'ip and not icmp', name: 'pkt-collector' });
    await deliverWhole(lab, 600);
    await deliverWhole(lab, 2852); // fragmented to the 1500-byte link: fragments are built at the start of their slot
    await dump.stop();
    const c = await lab.counters();
    const direct = (c['tx.direct'] ?? 0) - (before['tx.direct'] ?? 0);
    const packets = c['tx.packets'] - before['tx.packets'];
    assert.equal(packets, 1 + 2, 'one packet, then two fragments');
    assert.equal(direct, packets, 'all of them written as frames');

    const frames = await dump.packets();
    assert.equal(frames.length, 3, 'the collector link carried them');
    for (const f of frames) {
      assert.equal(f.src, lab.exporter);
      assert.equal(f.dst, lab.collector(0));
      assert.ok(f.ipLength <= 1500);
    }
    const s = await lab.status();
    assert.equal(s.accounting.balanced, true);

    const text = await lab.cli('gateway', ['status', '-c', lab.gatewayConfigPath]);
    assert.match(text.stdout, new RegExp(`${lab.collector(0).replaceAll('.', '\\.')}:\\d+ .* frames on ${Iface.gatewayToCollector(0)} to ${h.dstMac}`), 'status names the next hop');
  });
});
