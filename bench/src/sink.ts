/**
 * The collector agent (runs in mgbench-sink): a UDP socket on 0.0.0.0:2055 read with recvmmsg.
 * For each datagram carrying the current step's marker it checks that the source is the exporter
 * the marker names (address and port: "source kept"), counts per source address, and records the
 * latency: receive time (per batch) minus the send time the generator wrote.
 *
 * Commands: reset { step } (start counting a step), report → SinkReport, exit.
 */
import { UdpReceiver } from '../../src/io/native/index.js';
import { serve } from './agent.js';
import { ADDR, EXPORTERS } from './layout.js';
import { exporterAddress, exporterPort, MARKER, MARKER_LENGTH, MARKER_MAGIC } from './packets.js';

export interface SinkReport {
  step: number;
  /** Datagrams of this step (marker found, step matches). */
  received: number;
  /** ... whose source address and port are the exporter's. */
  kept: number;
  /** Distinct exporter addresses seen as sources. */
  sources: number;
  /** Datagrams from an earlier step (arrived late) or without a marker. */
  stale: number;
  foreign: number;
  bytes: number;
  /** Datagrams whose length differs from the first one of the step. */
  oddLength: number;
  latencyUs: { p50: number; p90: number; p99: number; max: number; mean: number } | null;
  rcvbufBytes: number;
}

const HIST_US = 1_000_000; // 1 µs buckets up to 1 s, then one overflow bucket

const rx = new UdpReceiver({ address: '0.0.0.0', port: ADDR.collectorPort, reusePort: false, slots: 256, slotSize: 2048, rcvbufBytes: 256 << 20 });
const { arena, lengths, srcAddr, srcPort, slotSize } = rx.buffers;
const view = new DataView(arena.buffer, arena.byteOffset, arena.byteLength);
const base = exporterAddress(0);
const basePort = exporterPort(0);

let step = 0;
let received = 0;
let kept = 0;
let stale = 0;
let foreign = 0;
let bytes = 0;
let oddLength = 0;
let firstLength = 0;
let latencySumUs = 0;
let latencyMaxUs = 0;
const perSource = new Uint32Array(EXPORTERS);
const hist = new Uint32Array(HIST_US + 1);

function reset(s: number): void {
  step = s >>> 0;
  received = kept = stale = foreign = bytes = oddLength = firstLength = latencySumUs = latencyMaxUs = 0;
  perSource.fill(0);
  hist.fill(0);
}

function drainOnce(): number {
  const n = rx.recv();
  if (n === 0) return 0;
  const now = Number(process.hrtime.bigint());
  for (let i = 0; i < n; i++) {
    const len = lengths[i];
    const m = i * slotSize + len - MARKER_LENGTH;
    if (len < MARKER_LENGTH || view.getUint32(m + MARKER.MAGIC) !== MARKER_MAGIC) {
      foreign++;
      continue;
    }
    if (view.getUint32(m + MARKER.STEP) !== step) {
      stale++;
      continue;
    }
    received++;
    bytes += len;
    if (firstLength === 0) firstLength = len;
    else if (len !== firstLength) oddLength++;
    const e = view.getUint32(m + MARKER.EXPORTER);
    const src = srcAddr[i];
    const idx = (src - base) >>> 0;
    if (idx < EXPORTERS) perSource[idx]++;
    if (e < EXPORTERS && idx === e && srcPort[i] === basePort + e) kept++;
    let us = Math.round((now - view.getFloat64(m + MARKER.TIME)) / 1000);
    if (us < 0) us = 0;
    latencySumUs += us;
    if (us > latencyMaxUs) latencyMaxUs = us;
    hist[us < HIST_US ? us : HIST_US]++;
  }
  return n;
}

function percentile(q: number, total: number): number {
  const want = Math.ceil(total * q);
  let acc = 0;
  for (let us = 0; us <= HIST_US; us++) {
    acc += hist[us];
    if (acc >= want) return us;
  }
  return HIST_US;
}

function report(): SinkReport {
  // Take what is already queued first.
  while (drainOnce() > 0);
  let sources = 0;
  for (let i = 0; i < EXPORTERS; i++) if (perSource[i] > 0) sources++;
  return {
    step,
    received,
    kept,
    sources,
    stale,
    foreign,
    bytes,
    oddLength,
    latencyUs: received
      ? { p50: percentile(0.5, received), p90: percentile(0.9, received), p99: percentile(0.99, received), max: latencyMaxUs, mean: latencySumUs / received }
      : null,
    rcvbufBytes: rx.rcvbufBytes,
  };
}

/** Receives for ~5 ms at a time (blocking in poll when idle), then lets commands in. */
function loop(): void {
  const until = performance.now() + 5;
  while (performance.now() < until) {
    if (drainOnce() === 0) rx.wait(1);
  }
  setImmediate(loop);
}

serve({
  ping: () => ({ pid: process.pid, rcvbufBytes: rx.rcvbufBytes }),
  reset: (a) => {
    reset(Number(a.step));
    return { step };
  },
  report,
  exit: () => {
    rx.close();
    return { bye: true };
  },
});
setImmediate(loop);
