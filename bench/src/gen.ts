/**
 * The generator agent (runs in mgbench-gen). Offers the preallocated packets of packets.ts at a
 * fixed rate for a fixed time: every time slice (0.25 ms) it sends what is due, in sendmmsg batches of
 * `batch` packets (default 32, at most 256) through a raw IPv4 socket (so the outer sources can be
 * several mirrored ENIs), stamping each batch with the send time just before the syscall.
 *
 * A wake-up sends at most three times what fell due since the last one (and no more than a veth
 * ring, 256 frames): when the generator was descheduled for a few milliseconds, as happens on a
 * small machine, it makes up the backlog at up to twice the rate over the next wake-ups instead
 * of in one burst of hundreds of frames, which would overflow the gateway's receive ring whatever
 * the gateway, and which a NIC does not see from a mirror session. Such wake-ups are counted
 * (`stalls`).
 *
 * The send time is taken once per batch, so a packet's recorded latency includes the time the
 * kernel spent sending the packets before it in the same batch: small batches keep that short.
 *
 * Commands: run { mode, rate, durationMs, step, payload, batch?, sliceMs? } → GenResult.
 */
import { RawSender } from '../../src/io/native/index.js';
import { serve } from './agent.js';
import { VETH_RING } from './layout.js';
import { buildPacketSet, fold, markerWordSum, MARKER, type PacketSet } from './packets.js';

export interface GenResult {
  mode: string;
  target: number;
  /** Packets the kernel accepted (the offered load). */
  sent: number;
  /** Packets the raw socket refused (ENOBUFS...). */
  refused: number;
  /** Packets not even tried because the generator fell behind its schedule. */
  behind: number;
  /** Wake-ups that found more than a veth ring (256 frames) due, and the most found due at once. */
  stalls: number;
  maxDue: number;
  elapsedNs: number;
  batches: number;
  lastErrno: string | null;
  ipLength: number;
  innerIpLength: number;
}

const sets = new Map<string, PacketSet>();
/** Next NetFlow sequence per exporter, kept across runs (a restart would look like an exporter reboot). */
const sequences = new Map<string, Uint32Array>();
let sender: RawSender | null = null;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function packetSet(mode: 'mirror' | 'direct', payload: number): PacketSet {
  const key = `${mode}/${payload}`;
  let s = sets.get(key);
  if (!s) {
    s = buildPacketSet(mode, payload);
    sets.set(key, s);
  }
  return s;
}

const hr = (): number => Number(process.hrtime.bigint());

function run(args: Record<string, unknown>): GenResult {
  const mode = args.mode === 'direct' ? 'direct' : 'mirror';
  const rate = Number(args.rate);
  const durationMs = Number(args.durationMs);
  const step = Number(args.step) >>> 0;
  const payload = Number(args.payload ?? 1400);
  const batch = Math.min(256, Number(args.batch ?? 32));
  const sliceMs = Number(args.sliceMs ?? 0.25);
  if (!(rate > 0) || !(durationMs > 0)) throw new Error(`run: bad rate ${rate} or duration ${durationMs}`);
  const set = packetSet(mode, payload);
  // An open-loop source, like the mirrored traffic: it never waits for a full receiver.
  sender ??= new RawSender({ family: 4, sndbufBytes: 64 << 20, waitWhenFull: false });
  const { arena, count, marker, checksum, baseSum, sequence } = set;
  const key = `${mode}/${payload}`;
  let seq = sequences.get(key);
  if (!seq) {
    seq = Uint32Array.from({ length: count }, (_, i) => 1000 + i * 7919);
    sequences.set(key, seq);
  }

  // Offsets/lengths/destinations twice over, so a batch starting anywhere is one subarray.
  const offsets2 = new Uint32Array(count * 2);
  const lengths2 = new Uint32Array(count * 2);
  const dst2 = new Uint32Array(count * 2);
  for (let i = 0; i < count * 2; i++) {
    offsets2[i] = set.offsets[i % count];
    lengths2[i] = set.lengths[i % count];
    dst2[i] = set.dst[i % count];
  }
  for (let i = 0; i < count; i++) arena.writeUInt32BE(step, marker[i] + MARKER.STEP);

  const time = new Uint8Array(8);
  const timeView = new DataView(time.buffer);
  const maxBehind = Math.max(batch, Math.ceil(rate * 0.02)); // 20 ms of traffic
  let cursor = 0;
  let attempted = 0;
  let sent = 0;
  let refused = 0;
  let behind = 0;
  let batches = 0;
  let stalls = 0;
  let maxDue = 0;
  let lastErrno: string | null = null;
  const t0 = hr();
  const end = t0 + durationMs * 1e6;
  let lastWake = t0;
  for (;;) {
    const now = hr();
    if (now >= end) break;
    const cap = Math.max(batch, Math.min(VETH_RING, Math.ceil((3 * rate * (now - lastWake)) / 1e9)));
    lastWake = now;
    let due = Math.floor((rate * (now - t0)) / 1e9) - attempted;
    if (due > maxBehind) {
      behind += due - maxBehind;
      attempted += due - maxBehind;
      due = maxBehind;
    }
    if (due > VETH_RING) stalls++;
    if (due > maxDue) maxDue = due;
    if (due > cap) due = cap;
    while (due > 0) {
      const b = due < batch ? due : batch;
      const ts = hr();
      timeView.setFloat64(0, ts);
      const add = markerWordSum(step, time);
      for (let k = 0; k < b; k++) {
        const j = cursor + k < count ? cursor + k : cursor + k - count;
        const m = marker[j] + MARKER.TIME;
        for (let t = 0; t < 8; t++) arena[m + t] = time[t];
        const q = seq[j]++;
        const o = sequence[j];
        arena[o] = q >>> 24;
        arena[o + 1] = (q >>> 16) & 0xff;
        arena[o + 2] = (q >>> 8) & 0xff;
        arena[o + 3] = q & 0xff;
        let c = ~fold(baseSum[j] + add + (q >>> 16) + (q & 0xffff)) & 0xffff;
        if (c === 0) c = 0xffff;
        arena[checksum[j]] = c >>> 8;
        arena[checksum[j] + 1] = c & 0xff;
      }
      const ok = sender.send(arena, offsets2.subarray(cursor, cursor + b), lengths2.subarray(cursor, cursor + b), dst2.subarray(cursor, cursor + b), b);
      sent += ok;
      if (ok < b) {
        refused += b - ok;
        lastErrno = sender.lastErrno;
      }
      batches++;
      attempted += b;
      due -= b;
      cursor = (cursor + b) % count;
    }
    const left = (end - hr()) / 1e6;
    if (left > 0) Atomics.wait(sleeper, 0, 0, Math.min(sliceMs, left));
  }
  // Time the run by its schedule: packets due up to `end`.
  return {
    mode,
    target: rate,
    sent,
    refused,
    behind,
    stalls,
    maxDue,
    elapsedNs: hr() - t0,
    batches,
    lastErrno,
    ipLength: set.ipLength,
    innerIpLength: set.innerIpLength,
  };
}

serve({
  ping: () => ({ pid: process.pid }),
  run,
  exit: () => {
    sender?.close();
    return { bye: true };
  },
});
