/**
 * A 2852-byte UDP datagram with DF set, sent by the exporter's ordinary UDP stack, crosses the
 * 9000-byte mirror path whole and must leave the gateway in fragments for the 1500-byte
 * collector link (DF cleared), which the collector's kernel reassembles into the exact payload.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Iface } from '../../src/lab/plan.js';
import { Tcpdump } from '../../src/lab/peers.js';
import { reapStaleTestLabs, requireTools, sendToCollector, skipLab, testLab } from './helpers.js';

const SIZE = 2852;

describe('lab: a DF datagram larger than the egress MTU', { skip: skipLab, timeout: 60_000 }, () => {
  const lab = testLab('frag', { mtu: 1500 });

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool', 'tcpdump', 'tshark', '/usr/bin/python3');
    await reapStaleTestLabs();
    await lab.up();
    const config = lab.gatewayConfig();
    assert.equal(config.destinations.netflow.mtu, 1500);
    await lab.startGateway({ config });
  });

  after(async () => {
    await lab.down();
  });

  test(`${SIZE} bytes with DF arrive whole at the collector's socket, fragmented on the way`, async () => {
    const dump = await Tcpdump.start(lab, 'collector0', { iface: Iface.COLLECTOR, filter: 'ip and not icmp', name: 'frag-collector' });
    const { sent, got } = await sendToCollector(lab, SIZE);
    await dump.stop();

    assert.equal(got.event, 'datagram', 'the datagram arrived');
    assert.equal(got.length, SIZE, 'whole');
    assert.equal(got.sha256, sent.sha256, 'with the exact payload');
    assert.equal(got.from, lab.exporter, "from the exporter's address");
    assert.equal(got.port, sent.srcPort, "and the exporter's port");

    // On the wire: fragments no larger than the MTU, DF cleared, reassembling to the datagram.
    const frags = await dump.packets();
    assert.ok(frags.length >= 2, `fragmented (${frags.length} packets)`);
    for (const f of frags) {
      assert.ok(f.ipLength <= 1500, `fragment of ${f.ipLength} bytes fits the MTU`);
      assert.equal(f.df, false, 'DF cleared');
      assert.equal(f.src, lab.exporter);
      assert.equal(f.dst, lab.collector(0));
    }
    assert.equal(frags.filter((f) => !f.moreFragments).length, 1, 'one last fragment');
    const payload = frags.reduce((s, f) => s + f.ipLength - 20, 0);
    assert.equal(payload, SIZE + 8, 'fragments carry the UDP header and payload once');

    const s = await lab.status();
    assert.equal(s.accounting.balanced, true);
  });
});
