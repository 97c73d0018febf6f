/**
 * Packet egress against the kernel: frames written on a namespace's loopback device are taken by
 * its IPv4 and IPv6 receive paths like any others, so the kernel judges the Ethernet header, the
 * IP header checksum and where the bytes start. Covered: a packet with room in front of its IP
 * header (written in place), one built at the start of its slot (moved up 14 bytes), an IPv6
 * packet, a backend without a next hop and a datagram outside the arena (both through raw IP).
 * The sending and receiving happen in packet-sink-agent.ts, run inside the namespace.
 * A second test has the kernel's neighbour table judge the periodic packet through the kernel
 * (packet-sink-confirm-agent.ts): it must take a stale entry up again.
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

test('every interval one packet per next hop goes through the kernel, which re-checks a stale neighbour', { skip }, () => {
  // A second namespace answers ARP for 198.18.9.66 on a veth link, as a router would.
  const peerNs = `${NS}p`;
  execFileSync('ip', ['netns', 'add', peerNs]);
  try {
    ip('link', 'add', 'c0', 'type', 'veth', 'peer', 'name', 'c1', 'netns', peerNs);
    ip('addr', 'add', '198.18.9.65/26', 'dev', 'c0');
    ip('link', 'set', 'c0', 'up');
    execFileSync('ip', ['-n', peerNs, 'addr', 'add', '198.18.9.66/26', 'dev', 'c1']);
    execFileSync('ip', ['-n', peerNs, 'link', 'set', 'c1', 'up']);
    const peerMac = (JSON.parse(execFileSync('ip', ['-n', peerNs, '-json', 'link', 'show', 'c1'], { encoding: 'utf8' })) as { address: string }[])[0].address;
    ip('neigh', 'replace', '198.18.9.66', 'lladdr', peerMac, 'nud', 'stale', 'dev', 'c0');
    const agent = fileURLToPath(new URL('./packet-sink-confirm-agent.js', import.meta.url));
    const out = execFileSync('ip', ['netns', 'exec', NS, process.execPath, agent, '198.18.9.66', '300'], { encoding: 'utf8', timeout: 20_000 });
    const r = JSON.parse(out) as { hop: boolean; fresh: Batch; due: Batch; notYet: Batch };
    assert.ok(r.hop, out);
    assert.deepEqual([r.fresh.sent, r.fresh.direct, r.fresh.state], [3, 3, 'STALE'], `a fresh hop: all frames, the entry untouched: ${out}`);
    assert.deepEqual([r.due.sent, r.due.direct], [3, 2], `one packet through the kernel: ${out}`);
    assert.match(r.due.state, /DELAY|PROBE|REACHABLE/, `the kernel took the stale entry up: ${out}`);
    assert.deepEqual([r.notYet.sent, r.notYet.direct, r.notYet.state], [3, 3, 'STALE'], `not due again yet: ${out}`);
  } finally {
    execFileSync('ip', ['netns', 'del', peerNs]);
  }
});

interface Batch {
  sent: number;
  direct: number;
  state: string;
}
