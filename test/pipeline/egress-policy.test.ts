/** Per-destination TTL and DSCP policies: values on the wire, and checksums still right. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertBalanced, ip4, makePipeline, mirror, naiveChecksum, udp4, udpVerifies, pseudoHeader4 } from './helpers.js';

function run(policy: Record<string, unknown>, ttl = 64, tos = 0) {
  const t = makePipeline({
    rules: [{ name: 'all', match: { protocol: 'udp' }, destination: 'c' }],
    destinations: { c: { backends: ['203.0.113.10:2055'], ...policy } },
  });
  const inner = udp4({ src: ip4('198.18.0.7'), dst: ip4('198.18.1.1'), srcPort: 5000, dstPort: 2055, payload: new Uint8Array(40).fill(3), ttl });
  inner[1] = tos; // TOS byte, then fix the header checksum by hand
  inner[10] = inner[11] = 0;
  const c = naiveChecksum(inner, 0, 20);
  inner[10] = c >>> 8;
  inner[11] = c & 0xff;
  const out = t.feed([mirror(inner)]);
  assertBalanced(t.accounting());
  return { out, t };
}

function headerOk(p: Buffer): void {
  assert.equal(naiveChecksum(p, 0, 20), 0, 'IPv4 header checksum verifies');
  assert.ok(udpVerifies(pseudoHeader4(p.readUInt32BE(12), p.readUInt32BE(16), p.length - 20), p.subarray(20)), 'UDP checksum verifies');
}

test('ttl: keep leaves TTL and TOS alone', () => {
  const { out } = run({}, 37, 0xb9);
  assert.equal(out[0][8], 37);
  assert.equal(out[0][1], 0xb9);
  headerOk(out[0]);
});

test('ttl: decrement acts like a router, and drops at zero', () => {
  assert.equal(run({ ttl: 'decrement' }, 37).out[0][8], 36);
  headerOk(run({ ttl: 'decrement' }, 37).out[0]);
  const { out, t } = run({ ttl: 'decrement' }, 1);
  assert.equal(out.length, 0);
  assert.equal(t.accounting().drops.ttl_expired, 1);
});

test('ttl: a number sets it', () => {
  const { out } = run({ ttl: 200 }, 3);
  assert.equal(out[0][8], 200);
  headerOk(out[0]);
});

test('dscp sets the top six bits of TOS and keeps ECN', () => {
  const { out } = run({ dscp: 46 }, 64, 0b0000_0011);
  assert.equal(out[0][1], (46 << 2) | 0b11);
  headerOk(out[0]);
});

test('bad policies are config errors naming the field', () => {
  assert.throws(() => run({ ttl: 0 }), /destinations\.c\.ttl/);
  assert.throws(() => run({ dscp: 64 }), /destinations\.c\.dscp/);
});
