/**
 * A full egress queue against the kernel: a namespace's loopback device gets a token-bucket
 * qdisc, so raw and UDP sends to a local address find its queue full exactly as they would a busy
 * NIC's or a veth peer's ring. Short stalls are waited out; a queue that stays full costs refused
 * packets, reported as ENOBUFS, and a little time only; and what the sender reports as sent is
 * what arrives (the kernel hides qdisc drops from raw and UDP sockets unless asked).
 * The sending happens in egress-backoff-agent.ts, run inside the namespace.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, test } from 'node:test';
import { loadError, nativeAvailable } from '../../src/io/native/index.js';
import { isRoot } from './native/helpers.js';

const skip = !nativeAvailable() ? `native addon not built: ${loadError()}` : !isRoot ? 'builds a network namespace: needs root' : false;
const NS = `mgbo${process.pid}`;

interface SendReport {
  sent: number;
  busyWaits: number;
  lastErrno: string | null;
  elapsedMs: number;
}
interface AgentReport {
  first: SendReport;
  second: SendReport;
  third: SendReport;
  fourth: SendReport;
  received: number;
}

/** Sends `count` 1000-byte datagrams four times through loopback shaped to `rate` (see the agent). */
function burstsThrough(kind: 'raw' | 'udp', rate: string, count: number, pauseMs: number): AgentReport {
  execFileSync('ip', ['netns', 'add', NS]);
  const inNs = (...args: string[]) => execFileSync('ip', ['netns', 'exec', NS, ...args], { encoding: 'utf8', timeout: 20_000 });
  inNs('ip', 'link', 'set', 'lo', 'up');
  inNs('ip', 'addr', 'add', '198.18.9.1/32', 'dev', 'lo');
  // Room for about two packets in the bucket and two in the queue: a burst overflows it at once.
  inNs('tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', rate, 'burst', '2000', 'limit', '3000');
  const agent = fileURLToPath(new URL('./egress-backoff-agent.js', import.meta.url));
  return JSON.parse(inNs(process.execPath, agent, kind, String(count), '1000', String(pauseMs))) as AgentReport;
}

afterEach(() => {
  if (skip) return;
  try {
    execFileSync('ip', ['netns', 'del', NS]);
  } catch {
    // not created, or already gone
  }
});

test('a queue that drains: the send waits it out, and every packet leaves and arrives', { skip }, () => {
  // 100 Mbit/s drains a 1000-byte datagram every ~84 µs, much slower than we hand them over.
  const r = burstsThrough('raw', '100mbit', 6, 20);
  for (const s of [r.first, r.second, r.third]) assert.deepEqual([s.sent, s.lastErrno], [6, null], JSON.stringify(r));
  assert.ok(r.first.busyWaits + r.second.busyWaits + r.third.busyWaits >= 2, `the bursts must have found the queue full: ${JSON.stringify(r)}`);
  assert.equal(r.received, 18 + r.fourth.sent);
});

for (const kind of ['raw', 'udp'] as const) {
  test(`a queue that stays full (${kind}): ENOBUFS within about a millisecond, then no waiting for a while`, { skip }, () => {
    // 1 Mbit/s takes 8 ms per datagram: no wait of ours sees it drain.
    const r = burstsThrough(kind, '1mbit', 8, 30);
    const all = JSON.stringify(r);
    assert.ok(r.first.sent < 8 && r.first.lastErrno === 'ENOBUFS', all);
    assert.ok(r.first.busyWaits >= 1 && r.first.elapsedMs < 20, `waited, but briefly: ${all}`);
    assert.deepEqual([r.second.busyWaits, r.second.lastErrno], [0, 'ENOBUFS'], `right after giving up, no waits: ${all}`);
    assert.ok(r.third.busyWaits >= 1, `after the pause, waiting again: ${all}`);
    assert.ok(r.fourth.busyWaits === 0 && r.fourth.lastErrno === 'ENOBUFS', `a sender told not to wait refuses at once: ${all}`);
    assert.equal(r.received, r.first.sent + r.second.sent + r.third.sent + r.fourth.sent, `what was reported sent is what arrived: ${all}`);
  });
}
