/**
 * listen.xdp: the mirror target's uplink gets the XDP program, and the gateway's worker reads
 * mirror frames from an AF_XDP socket. A datagram whose VXLAN frame fits a ring frame takes that
 * path; a larger one (past the ring's 1792 bytes) takes the kernel path to the UDP socket, and both
 * arrive whole, from the exporter's address and port. Stopping the gateway detaches the program.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Iface } from '../../src/lab/plan.js';
import { deliverWhole, reapStaleTestLabs, requireTools, skipLab, testLab } from './helpers.js';

describe('lab: XDP ingress', { skip: skipLab, timeout: 90_000 }, () => {
  const lab = testLab('xdp', { mtu: 1500 });

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool', 'tcpdump', 'tshark', '/usr/bin/python3');
    await reapStaleTestLabs();
    await lab.up();
    const config = lab.gatewayConfig();
    await lab.startGateway({ config: { ...config, listen: { ...config.listen, xdp: { interface: Iface.GATEWAY_UPLINK } } } });
  });

  after(async () => {
    await lab.down();
  });

  const framesRead = (c: Record<string, number>) => c['node.outer-ethernet.packets'] ?? 0;

  test('frames that fit the ring come through the XDP socket, longer ones through the UDP socket', async () => {
    const link = (await lab.exec('gateway', 'ip', ['-d', 'link', 'show', Iface.GATEWAY_UPLINK])).stdout;
    assert.match(link, /prog\/xdp id \d+/, 'the program is attached to the uplink');

    // The mirror copies whatever else crosses the monitored ENI too (ARP...): compare deltas.
    const c0 = await lab.counters();
    await deliverWhole(lab, 600);
    const c1 = await lab.counters();
    assert.ok(c1.rx_packets - c0.rx_packets >= 1);
    assert.equal(framesRead(c1) - framesRead(c0), c1.rx_packets - c0.rx_packets, 'the 600-byte datagram came as a frame');

    await deliverWhole(lab, 2000);
    const c2 = await lab.counters();
    const bySocket = c2.rx_packets - c1.rx_packets - (framesRead(c2) - framesRead(c1));
    assert.equal(bySocket, 1, 'the 2000-byte one did not fit a frame and came by the socket');

    const s = await lab.status();
    assert.equal(s.accounting.balanced, true);
    assert.equal(c2.rx_socket_drops, 0);
  });

  test('stopping the gateway detaches the program', async () => {
    await lab.stopGateway();
    const link = (await lab.exec('gateway', 'ip', ['-d', 'link', 'show', Iface.GATEWAY_UPLINK])).stdout;
    assert.doesNotMatch(link, /prog\/xdp/, `no XDP program left on the uplink: ${link}`);
  });
});
