/**
 * Packet egress against the kernel: frames written on a namespace's loopback device are taken by
 * its IPv4 and IPv6 receive paths like any others, so the kernel judges the Ethernet header, the
 * IP header checksum and where the bytes start. Covered: a packet with room in front of its IP
 * header (written in place), one built at the start of its slot (moved up 14 bytes), an IPv6
 * packet, a backend without a next hop and a datagram outside the arena (both through raw IP).
 * The sending and receiving happen in packet-sink-agent.ts, run inside the namespace.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { loadError, nativeAvailable } from '../../src/io/native/index.js';
import { isRoot } from './native/helpers.js';

const skip = !nativeAvailable() ? `native addon not built: ${loadError()}` : !isRoot ? 'builds a network namespace: needs root' : false;
const NS = `mgps${process.pid}`;
const ip = (...args: string[]) => execFileSync('ip', ['-n', NS, ...args], { encoding: 'utf8' });

before(() => {
  if (skip) return;
  execFileSync('ip', ['netns', 'add', NS]);
  ip('link', 'set', 'lo', 'up');
  ip('addr', 'add', '198.18.9.1/32', 'dev', 'lo');
  ip('addr', 'add', '198.18.9.2/32', 'dev', 'lo');
});
after(() => {
  if (skip) return;
  try {
    execFileSync('ip', ['netns', 'del', NS]);
  } catch {
    // already gone
  }
});

test('frames arrive from the exporter: in place, moved up, IPv6; raw IP for the rest', { skip }, () => {
  const agent = fileURLToPath(new URL('./packet-sink-agent.js', import.meta.url));
  const out = execFileSync('ip', ['netns', 'exec', NS, process.execPath, agent], { encoding: 'utf8', timeout: 20_000 });
  const r = JSON.parse(out) as { result: { sent: number; failed: number; direct: number; lastError: string }; got4: string[]; got6: string[]; movedL3: number };
  assert.deepEqual([r.result.sent, r.result.failed, r.result.direct], [5, 0, 3], r.result.lastError);
  assert.deepEqual(r.got4, [
    `198.18.0.10:50004 no next hop`,
    `198.18.0.11:50005 outside the arena`,
    `198.18.0.7:50001 in place`,
    `198.18.0.8:50002 moved up`,
  ]);
  assert.deepEqual(r.got6, ['2001:2::9:50003 ipv6']);
  assert.equal(r.movedL3, 14, 'the moved packet now starts after the room for the Ethernet header');
});
