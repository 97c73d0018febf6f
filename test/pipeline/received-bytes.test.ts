/**
 * Received bytes count the tunnel payload (VXLAN header + inner frame) whether a packet came from a
 * socket (outer headers already gone), as a whole frame (XDP ingress, an Ethernet capture) or from
 * its outer IPv4 header (a raw capture). A frame that is not a tunnel packet counts as received,
 * with no payload bytes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertBalanced, ip4, makePipeline, mirror, udp4 } from './helpers.js';

const CONFIG = {
  rules: [{ name: 'all', destination: 'd' }],
  destinations: { d: { backends: ['203.0.113.10:2055'] } },
};

const ETH = 14;
const OUTER_IP_UDP = 20 + 8;

function frames(): Uint8Array[] {
  return [100, 1000, 1400].map((size, k) =>
    mirror(udp4({ src: ip4('198.51.100.1') + k, dst: ip4('192.0.2.10'), srcPort: 2055, dstPort: 2055, payload: new Uint8Array(size) })),
  );
}

const payloadBytes = (fs: Uint8Array[]) => fs.reduce((sum, f) => sum + f.length - ETH - OUTER_IP_UDP, 0);

describe('received bytes', () => {
  test('are the tunnel payload from every entry', () => {
    const fs = frames();
    const expected = payloadBytes(fs);
    assert.equal(expected, 3 * (8 + 14 + 28) + 2500, 'VXLAN header + inner Ethernet + inner IPv4/UDP + payload');

    const whole = makePipeline(CONFIG);
    assert.equal(whole.feed(fs, 0, 'ethernet').length, 3);
    assert.equal(whole.accounting().rxBytes, expected, 'whole frames');

    const fromIp = makePipeline(CONFIG);
    assert.equal(fromIp.feed(fs.map((f) => f.subarray(ETH)), 0, 'ip4').length, 3);
    assert.equal(fromIp.accounting().rxBytes, expected, 'from the outer IPv4 header');

    // A socket hands over the UDP payload and reports the outer addresses itself.
    const bySocket = makePipeline(CONFIG);
    const vec = bySocket.pipeline.vec;
    fs.forEach((f, i) => {
      vec.slot[i].set(f.subarray(ETH + OUTER_IP_UDP), 0);
      vec.start[i] = 0;
      vec.end[i] = f.length - ETH - OUTER_IP_UDP;
      vec.outerSrc[i] = ip4('198.18.0.1');
      vec.outerSrcPort[i] = 49152;
      vec.outerDstPort[i] = 4789;
    });
    bySocket.pipeline.run(fs.length, 'tunnel', 0);
    assert.equal(bySocket.sink.take().length, 3);
    assert.equal(bySocket.accounting().rxBytes, expected, 'from a socket');
  });

  test('a frame that is not a tunnel packet counts as received, with no payload bytes', () => {
    const p = makePipeline(CONFIG);
    const arp = new Uint8Array(60);
    arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x06, 0, 0x5e, 0, 0, 1, 0x08, 0x06], 0);
    const notUdp = mirror(udp4({ src: ip4('198.51.100.1'), dst: ip4('192.0.2.10'), srcPort: 1, dstPort: 2055, payload: new Uint8Array(10) }));
    notUdp[ETH + 9] = 6; // outer protocol TCP (header checksum left stale: the node looks at the protocol)
    assert.equal(p.feed([arp, notUdp], 0, 'ethernet').length, 0);
    const a = p.accounting();
    assert.equal(a.rx, 2);
    assert.equal(a.rxBytes, 0);
    assertBalanced(a);
  });
});
