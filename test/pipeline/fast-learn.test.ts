/**
 * Learning for the fast path: with listen.fastPath, the pipeline proposes each flow it
 * forwards to a destination whose treatment never varies, with the key the program reads off the
 * wire (before DNAT), at most once a second per flow; never for destinations that balance,
 * sample or set DSCP, nor for packets the program would not forward (IPv6, IP options, GENEVE).
 * With the fast path off, packets go from select straight to DNAT.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ipv6ToBytes } from '../../src/core/prefix-set.js';
import { PROPOSAL_FIELDS, ProposalField } from '../../src/pipeline/fast-learn.js';
import { assertBalanced, ip4, makePipeline, mirror, udp4, udp6 } from './helpers.js';

function config(destinations: Record<string, object>, fastPath = true) {
  return {
    listen: fastPath ? { fastPath: { interface: 'eth0' } } : {},
    egress: { mode: 'packet' },
    rules: [
      { name: 'one', match: { dstPort: 2055 }, destination: 'one' },
      { name: 'other', match: { dstPort: 2056 }, destination: 'other' },
    ],
    destinations: { one: { backends: ['203.0.113.10:9995'] }, ...destinations },
  };
}

const packet = (k: number, dstPort = 2055) => udp4({ src: ip4('198.51.100.1') + k, dst: ip4('192.0.2.10'), srcPort: 40000 + k, dstPort, payload: new Uint8Array(100) });

function rows(p: ReturnType<typeof makePipeline>): number[][] {
  const r = p.pipeline.ctx.fastProposals?.take();
  if (!r) return [];
  return Array.from({ length: r.length / PROPOSAL_FIELDS }, (_, k) => Array.from(r.subarray(k * PROPOSAL_FIELDS, (k + 1) * PROPOSAL_FIELDS)));
}

describe('fast path learning', () => {
  test('proposes each flow once, with the pre-DNAT key, the destination and the backend', () => {
    const p = makePipeline(config({ other: { backends: ['203.0.113.11:9995'] } }));
    const frames = [packet(0), packet(0), packet(1), packet(0, 2056)].map((f) => mirror(f, { vni: 77, outerSrc: ip4('198.18.0.9') }));
    assert.equal(p.feed(frames, 5000).length, 4);
    const got = rows(p);
    assert.equal(got.length, 3, 'three flows; the repeated one proposed once');
    const [first] = got;
    assert.equal(first[ProposalField.OUTER_SRC], ip4('198.18.0.9') | 0);
    assert.equal(first[ProposalField.VNI], 77);
    assert.equal(first[ProposalField.SRC], ip4('198.51.100.1') | 0);
    assert.equal(first[ProposalField.DST], ip4('192.0.2.10') | 0, 'the destination before DNAT');
    assert.deepEqual([first[ProposalField.SRC_PORT], first[ProposalField.DST_PORT]], [40000, 2055]);
    assert.deepEqual(got.map((r) => [r[ProposalField.DESTINATION], r[ProposalField.BACKEND]]), [[0, 0], [0, 0], [1, 0]]);
    assert.equal(p.counter('fast-learn.proposed'), 3);
    assertBalanced(p.accounting());

    p.feed([mirror(packet(0), { vni: 77, outerSrc: ip4('198.18.0.9') })], 5500);
    assert.deepEqual(rows(p), [], 'not again within a second');
    p.feed([mirror(packet(0), { vni: 77, outerSrc: ip4('198.18.0.9') })], 6100);
    assert.equal(rows(p).length, 1, 'again after a second (the main thread may have turned it down)');
  });

  test('destinations whose treatment varies are not proposed', () => {
    for (const other of [
      { backends: ['203.0.113.11:9995', '203.0.113.12:9995'] },
      { backends: ['203.0.113.11:9995'], sample: 10 },
      { backends: ['203.0.113.11:9995'], dscp: 46 },
      { backends: ['203.0.113.11:9995'], ttl: 32 },
    ]) {
      const p = makePipeline(config({ other }));
      p.feed(Array.from({ length: 20 }, (_, k) => mirror(packet(k, 2056))), 0);
      assert.deepEqual(rows(p), [], JSON.stringify(other));
    }
    const decrement = makePipeline(config({ other: { backends: ['203.0.113.11:9995'], ttl: 'decrement' } }));
    decrement.feed([mirror(packet(0, 2056))], 0);
    assert.equal(rows(decrement).length, 1, 'TTL decrement is the program\'s to do');
  });

  test('packets the program would not forward are not proposed', () => {
    const p = makePipeline({ ...config({ other: { backends: ['203.0.113.11:9995'] } }), destinations: { one: { backends: ['[2001:db8::10]:9995'] }, other: { backends: ['203.0.113.11:9995'] } } });
    const v6 = udp6({ src: ipv6ToBytes('2001:db8::1'), dst: ipv6ToBytes('2001:db8::2'), srcPort: 40000, dstPort: 2055, payload: new Uint8Array(10) });
    const options = packet(0, 2056);
    const withOptions = new Uint8Array(options.length + 4);
    withOptions.set(options.subarray(0, 20));
    withOptions.set([1, 1, 1, 0], 20); // NOP NOP NOP EOL
    withOptions.set(options.subarray(20), 24);
    withOptions[0] = 0x46;
    withOptions[2] = (withOptions.length >>> 8) & 0xff;
    withOptions[3] = withOptions.length & 0xff;
    withOptions[10] = withOptions[11] = 0;
    let sum = 0;
    for (let i = 0; i < 24; i += 2) sum += (withOptions[i] << 8) | withOptions[i + 1];
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    withOptions[10] = (~sum >>> 8) & 0xff;
    withOptions[11] = ~sum & 0xff;
    const sent = p.feed([mirror(v6), mirror(withOptions), mirror(packet(1, 2056), { tunnel: 'geneve' })], 0);
    assert.equal(sent.length, 3, 'all forwarded by the normal path');
    assert.deepEqual(rows(p), []);
  });

  test('with the fast path off nothing is proposed and select hands packets straight to DNAT', () => {
    const p = makePipeline(config({ other: { backends: ['203.0.113.11:9995'] } }, false));
    assert.equal(p.feed([mirror(packet(0))], 0).length, 1);
    assert.equal(p.pipeline.ctx.fastProposals, null);
    assert.equal(p.counter('node.fast-learn.packets'), 0);
  });
});
