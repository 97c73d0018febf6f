/**
 * The lab's helper programs, run inside a host's namespace as
 * `ip netns exec NS node agent.js <command> ...`. Each prints JSON lines on stdout.
 *
 *   sink    --address A --ports P,P..       bind the telemetry ports and never read them: the
 *                                           monitored host answers no ICMP port-unreachable,
 *                                           at no CPU cost (a full socket drops silently)
 *   count   --bind A:P [--tag T]            count datagrams by source (recvmmsg); "report" on
 *                                           stdin prints the totals, SIGTERM prints them and exits
 *   send    --from A,A.. --to A:P --rate R --seconds S [--size N] [--tag T] [--seq-base N]
 *                                           paced NetFlow-v5-sized datagrams (sendmmsg)
 *   recv    --bind A:P [--count N] [--timeout MS]
 *                                           one line per datagram: source, length, sha256
 *   control METHOD PATH [--address A:P]     calls the gateway's control API from inside its namespace
 */
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { ipv4ToU32, u32ToIpv4, UdpReceiver, UdpSender } from '../io/native/index.js';
import { Probe } from './plan.js';

const print = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

function hostPort(text: string): { address: string; port: number } {
  const i = text.lastIndexOf(':');
  const port = Number(text.slice(i + 1));
  if (i < 1 || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`expected address:port, got ${JSON.stringify(text)}`);
  return { address: text.slice(0, i), port };
}

const { SEQ_OFFSET, TAG_OFFSET } = Probe;

function sink(args: string[]): void {
  const { values } = parseArgs({ args, options: { address: { type: 'string' }, ports: { type: 'string' } } });
  const ports = (values.ports ?? '').split(',').map(Number);
  const sockets = ports.map((port) => new UdpReceiver({ address: values.address ?? '0.0.0.0', port, reusePort: false, rcvbufBytes: 256 << 10, slots: 1, slotSize: 64 }));
  print({ event: 'ready', ports: sockets.map((s) => s.port) });
  setInterval(() => {}, 1 << 30);
  const stop = () => {
    for (const s of sockets) s.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

interface Tally {
  packets: number;
  bytes: number;
  /** Probe datagrams (with the tag), by source address. */
  bySource: Record<string, number>;
  /** Source ports seen, by source address (at most 16 each). */
  sourcePorts: Record<string, number[]>;
  tagged: number;
  duplicates: number;
  truncated: number;
}

async function count(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { bind: { type: 'string' }, tag: { type: 'string' } } });
  const { address, port } = hostPort(values.bind ?? '');
  const tag = values.tag === undefined ? null : Number(values.tag) >>> 0;
  const rx = new UdpReceiver({ address, port, reusePort: false, rcvbufBytes: 32 << 20, slots: 256, slotSize: 2048 });
  const b = rx.buffers;
  const t: Tally = { packets: 0, bytes: 0, bySource: {}, sourcePorts: {}, tagged: 0, duplicates: 0, truncated: 0 };
  let seen = new Uint8Array(1 << 16);
  const drain = () => {
    let n: number;
    while ((n = rx.recv()) > 0) {
      for (let i = 0; i < n; i++) {
        t.packets++;
        t.bytes += b.lengths[i];
        if (b.truncated[i]) t.truncated++;
        const src = u32ToIpv4(b.srcAddr[i]);
        const ports = (t.sourcePorts[src] ??= []);
        if (ports.length < 16 && !ports.includes(b.srcPort[i])) ports.push(b.srcPort[i]);
        const off = i * b.slotSize;
        if (tag === null || b.lengths[i] < TAG_OFFSET + 4) continue;
        const a = b.arena;
        const got = ((a[off + TAG_OFFSET] << 24) | (a[off + TAG_OFFSET + 1] << 16) | (a[off + TAG_OFFSET + 2] << 8) | a[off + TAG_OFFSET + 3]) >>> 0;
        if (got !== tag) continue;
        t.tagged++;
        t.bySource[src] = (t.bySource[src] ?? 0) + 1;
        const seq = ((a[off + SEQ_OFFSET] << 24) | (a[off + SEQ_OFFSET + 1] << 16) | (a[off + SEQ_OFFSET + 2] << 8) | a[off + SEQ_OFFSET + 3]) >>> 0;
        if (seq >= seen.length * 8) {
          const bigger = new Uint8Array(Math.max(seen.length * 2, (seq >>> 3) + 1));
          bigger.set(seen);
          seen = bigger;
        }
        const bit = 1 << (seq & 7);
        if (seen[seq >>> 3] & bit) t.duplicates++;
        seen[seq >>> 3] |= bit;
      }
    }
  };
  let stop = false;
  process.on('SIGTERM', () => (stop = true));
  process.on('SIGINT', () => (stop = true));
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    for (const line of d.split('\n')) {
      if (line.trim() === 'report') {
        drain();
        print({ event: 'report', ...t });
      }
    }
  });
  process.stdin.on('end', () => (stop = true));
  print({ event: 'ready', bind: `${address}:${rx.port}` });
  while (!stop) {
    if (rx.wait(20) === 'readable') drain();
    await new Promise((r) => setImmediate(r));
  }
  drain();
  print({ event: 'final', ...t });
  rx.close();
  process.exit(0);
}

async function send(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      rate: { type: 'string' },
      seconds: { type: 'string' },
      size: { type: 'string' },
      tag: { type: 'string' },
      'seq-base': { type: 'string' },
    },
  });
  const seqBase = Number(values['seq-base'] ?? 0) >>> 0;
  const sources = (values.from ?? '0.0.0.0').split(',');
  const to = hostPort(values.to ?? '');
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const size = Number(values.size ?? Probe.PAYLOAD_SIZE);
  const tag = Number(values.tag ?? 0) >>> 0;
  if (!(rate > 0) || !(seconds > 0) || !(size >= 24 && size <= 65507)) throw new Error('--rate, --seconds must be positive and --size 24-65507');
  const total = Math.round(rate * seconds);
  // Each batch covers about half a millisecond: smooth enough for the receivers' queues.
  const maxBatch = Math.max(1, Math.min(64, Math.ceil(rate / 2000)));
  const senders = sources.map((a) => new UdpSender({ bindAddress: a, sndbufBytes: 4 << 20 }));
  const arena = new Uint8Array(maxBatch * size);
  const offsets = new Uint32Array(maxBatch);
  const lengths = new Uint32Array(maxBatch).fill(size);
  const dstAddr = new Uint32Array(maxBatch).fill(ipv4ToU32(to.address));
  const dstPort = new Uint16Array(maxBatch).fill(to.port);
  const view = new DataView(arena.buffer);
  for (let i = 0; i < maxBatch; i++) {
    const o = (offsets[i] = i * size);
    view.setUint16(o, 5); // NetFlow v5
    view.setUint16(o + 2, 30); // record count
    view.setUint32(o + 8, Math.floor(Date.now() / 1000));
    view.setUint32(o + TAG_OFFSET, tag);
  }
  const perSource: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const sleepMs = (ms: number) => Atomics.wait(nap, 0, 0, ms);
  const t0 = performance.now();
  const deadline = seconds * 1000 + 2000; // a sender that cannot keep up stops here and says so
  let sent = 0;
  let batches = 0;
  while (sent < total) {
    const elapsed = performance.now() - t0;
    if (elapsed > deadline) break;
    const due = Math.min(total, Math.floor((elapsed / 1000) * rate) + 1);
    const want = Math.min(maxBatch, due - sent);
    if (want <= 0) {
      sleepMs(Math.max(0.02, ((sent + 1) / rate) * 1000 - elapsed));
      continue;
    }
    for (let i = 0; i < want; i++) view.setUint32(offsets[i] + SEQ_OFFSET, seqBase + sent + i);
    const k = batches++ % senders.length;
    const n = senders[k].send(arena, offsets, lengths, dstAddr, dstPort, want);
    sent += n;
    perSource[sources[k]] = (perSource[sources[k]] ?? 0) + n;
    if (n < want) {
      const e = senders[k].lastErrno ?? 'unknown';
      errors[e] = (errors[e] ?? 0) + 1;
      sleepMs(0.2); // the queue is full: let it drain, then send the rest
    }
  }
  const elapsedMs = performance.now() - t0;
  for (const s of senders) s.close();
  print({ event: 'final', target: total, sent, elapsedMs: Math.round(elapsedMs), achievedPps: Math.round(sent / (elapsedMs / 1000)), perSource, sendRetries: errors });
}

async function recv(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { bind: { type: 'string' }, count: { type: 'string' }, timeout: { type: 'string' } } });
  const { address, port } = hostPort(values.bind ?? '');
  const want = Number(values.count ?? 1);
  const socket = createSocket({ type: 'udp4' });
  let got = 0;
  const finish = () => {
    socket.close();
    process.exit(0);
  };
  setTimeout(() => {
    print({ event: 'timeout', received: got });
    finish();
  }, Number(values.timeout ?? 10_000));
  socket.on('message', (msg, rinfo) => {
    got++;
    print({ event: 'datagram', from: rinfo.address, port: rinfo.port, length: msg.length, sha256: createHash('sha256').update(msg).digest('hex') });
    if (got >= want) finish();
  });
  process.on('SIGTERM', finish);
  socket.bind(port, address, () => print({ event: 'ready', bind: `${address}:${port}` }));
}

async function control(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { address: { type: 'string' }, token: { type: 'string' } } });
  const [method, path] = positionals;
  const token = values.token ?? process.env.MIRRORGATE_TOKEN;
  try {
    const res = await fetch(`http://${values.address ?? '127.0.0.1:9090'}${path}`, {
      method,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // metrics and health answer in text
    }
    print({ status: res.status, body });
  } catch (err) {
    print({ status: 0, error: (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message });
  }
}

const commands: Record<string, (args: string[]) => void | Promise<void>> = { sink, count, send, recv, control };

const [command, ...rest] = process.argv.slice(2);
const f = commands[command];
if (!f) {
  process.stderr.write(`usage: agent.js ${Object.keys(commands).join('|')} ...\n`);
  process.exit(2);
}
try {
  await f(rest);
} catch (err) {
  process.stderr.write(`agent ${command}: ${(err as Error).message}\n`);
  process.exit(1);
}
