/**
 * Runs inside a network namespace for egress-backoff.test.ts: sends bursts of datagrams to a
 * local address (so through the namespace's loopback device and the qdisc the test put on it),
 * as whole IPv4 packets through a RawSender or as payloads through a UdpSender, and prints, as
 * one JSON line, what each send() reported and what arrived.
 */
import { ipv4ToU32, RawSender, UdpSender } from '../../src/io/native/index.js';
import { buildIpv4Udp, collector } from './native/helpers.js';

const kind = process.argv[2] as 'raw' | 'udp';
const [count, payloadBytes, pauseMs] = process.argv.slice(3).map(Number);
const LOCAL4 = '198.18.9.1';
const SLOT = 2048;

interface SendReport {
  sent: number;
  busyWaits: number;
  lastErrno: string | null;
  elapsedMs: number;
}

async function main(): Promise<void> {
  const rx = await collector('udp4', LOCAL4);
  const arena = new Uint8Array(count * SLOT);
  const offsets = new Uint32Array(count);
  const lengths = new Uint32Array(count);
  const dst = new Uint32Array(count).fill(ipv4ToU32(LOCAL4));
  const ports = new Uint16Array(count).fill(rx.port);
  for (let i = 0; i < count; i++) {
    const payload = new Uint8Array(payloadBytes).fill(i);
    offsets[i] = i * SLOT;
    if (kind === 'raw') lengths[i] = buildIpv4Udp(arena, i * SLOT, ipv4ToU32('198.18.0.7'), dst[i], 50000 + i, rx.port, payload);
    else {
      arena.set(payload, i * SLOT);
      lengths[i] = payloadBytes;
    }
  }
  const open = (waitWhenFull: boolean) => (kind === 'raw' ? new RawSender({ family: 4, waitWhenFull }) : new UdpSender({ waitWhenFull }));
  const sender = open(true);
  const noWait = open(false);
  const burst = (through = sender): SendReport => {
    const t0 = performance.now();
    const sent = through instanceof RawSender ? through.send(arena, offsets, lengths, dst, count) : through.send(arena, offsets, lengths, dst, ports, count);
    return { sent, busyWaits: through.busyWaits, lastErrno: through.lastErrno, elapsedMs: performance.now() - t0 };
  };
  const first = burst();
  const second = burst(); // right after: if the first gave up, this one must not wait
  await new Promise((r) => setTimeout(r, pauseMs));
  const third = burst(); // after the pause, waiting is allowed again
  await new Promise((r) => setTimeout(r, pauseMs));
  const fourth = burst(noWait); // a sender told never to wait
  await rx.waitFor(first.sent + second.sent + third.sent + fourth.sent, 3000);
  sender.close();
  noWait.close();
  rx.socket.close();
  process.stdout.write(JSON.stringify({ first, second, third, fourth, received: rx.messages.length }) + '\n');
}

void main();
