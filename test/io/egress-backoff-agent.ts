/**
 * Runs inside a network namespace for egress-backoff.test.ts: sends bursts of IPv4 datagrams
 * through a RawSender to a local address (so through the namespace's loopback device and the
 * qdisc the test put on it) and prints, as one JSON line, what each send() reported and what
 * arrived.
 */
import { ipv4ToU32, RawSender } from '../../src/io/native/index.js';
import { buildIpv4Udp, collector } from './native/helpers.js';

const [count, payloadBytes, pauseMs] = process.argv.slice(2).map(Number);
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
  const sender = new RawSender({ family: 4 });
  const arena = new Uint8Array(count * SLOT);
  const offsets = new Uint32Array(count);
  const lengths = new Uint32Array(count);
  const dst = new Uint32Array(count).fill(ipv4ToU32(LOCAL4));
  for (let i = 0; i < count; i++) {
    offsets[i] = i * SLOT;
    lengths[i] = buildIpv4Udp(arena, i * SLOT, ipv4ToU32('198.18.0.7'), ipv4ToU32(LOCAL4), 50000 + i, rx.port, new Uint8Array(payloadBytes).fill(i));
  }
  const noWait = new RawSender({ family: 4, waitWhenFull: false });
  const burst = (through = sender): SendReport => {
    const t0 = performance.now();
    const sent = through.send(arena, offsets, lengths, dst, count);
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
