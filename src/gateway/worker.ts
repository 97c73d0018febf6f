/**
 * A gateway worker: one SO_REUSEPORT receive socket, one pipeline, one egress. The kernel spreads
 * mirror traffic across workers by outer 5-tuple, which AWS derives from the inner flow, so each
 * flow stays on one worker. The loop never waits to fill a batch: it takes what the socket holds
 * (up to the batch size), sends it, and blocks in poll(2) only when the socket is empty.
 */
import { receiveMessageOnPort, workerData, parentPort } from 'node:worker_threads';
import { compileTables } from '../control/tables.js';
import { Counters } from '../core/counters.js';
import { MirrorgateError } from '../control/errors.js';
import { UdpReceiver } from '../io/native/index.js';
import { RawSink } from '../io/raw-sink.js';
import type { Sink } from '../io/sink.js';
import { UdpSink } from '../io/udp-sink.js';
import { Pipeline } from '../pipeline/build.js';
import { ControlSlot, type FromWorker, type ToWorker, type WorkerSetup } from './messages.js';

/** How long an idle worker sleeps before looking at its mailbox and timers again. */
const IDLE_WAIT_MS = 20;
/** How long a stopping worker keeps emptying its socket. */
const DRAIN_LIMIT_MS = 1000;

const setup = workerData as WorkerSetup;
const control = new Int32Array(setup.control);
const post = (m: FromWorker) => parentPort!.postMessage(m);

function main(): void {
  let tables = compileTables(setup.config, setup.generation);
  const batch = setup.batchSize;
  let sink: Sink | undefined;
  let receiver: UdpReceiver | undefined;
  try {
    sink = tables.egressMode === 'raw' ? new RawSink(batch * 4) : new UdpSink(batch * 4);
    const pipeline = new Pipeline({ tables, sink, batchSize: batch, counters: (layout) => Counters.shared(layout) });
    const vec = pipeline.vec;
    receiver = new UdpReceiver({
      address: setup.config.listen.address,
      port: setup.config.listen.port,
      reusePort: true,
      buffers: {
        slots: batch,
        slotSize: vec.slotSize,
        arena: vec.arena,
        lengths: new Uint32Array(batch),
        srcAddr: new Uint32Array(batch),
        srcPort: new Uint16Array(batch),
        truncated: new Uint8Array(batch),
        srcAddr6: null,
      },
    });
    const rx = receiver.buffers;
    const listenPort = setup.config.listen.port;
    post({
      type: 'ready',
      index: setup.index,
      counterNames: pipeline.graph.counters.layout.names,
      counters: pipeline.graph.counters.values.buffer as SharedArrayBuffer,
      rcvbufBytes: receiver.rcvbufBytes,
    });

    let seen = Atomics.load(control, ControlSlot.MAILBOX);
    const runBatch = (): number => {
      const n = receiver!.recv(batch);
      if (n === 0) return 0;
      const now = performance.now();
      const ns = Date.now() * 1e6;
      for (let i = 0; i < n; i++) {
        vec.start[i] = 0;
        vec.end[i] = rx.lengths[i];
        vec.outerSrc[i] = rx.srcAddr[i];
        vec.outerSrcPort[i] = rx.srcPort[i];
        vec.outerDstPort[i] = listenPort;
        vec.timestampNs[i] = ns;
      }
      pipeline.run(n, 'tunnel', now);
      return n;
    };

    while (Atomics.load(control, ControlSlot.STOP) === 0) {
      const mailbox = Atomics.load(control, ControlSlot.MAILBOX);
      if (mailbox !== seen) {
        seen = mailbox;
        for (let m = receiveMessageOnPort(setup.port); m; m = receiveMessageOnPort(setup.port)) {
          const msg = m.message as ToWorker;
          if (msg.type === 'tables') {
            tables = compileTables(msg.config, msg.generation);
            pipeline.setTables(tables);
            post({ type: 'applied', index: setup.index, generation: msg.generation });
          } else if (msg.type === 'trace') pipeline.tracer.arm(msg.count);
          else if (msg.type === 'trace-collect') post({ type: 'traces', index: setup.index, traces: pipeline.tracer.drain() });
        }
      }
      if (runBatch() === 0) {
        pipeline.tick(performance.now());
        receiver.wait(IDLE_WAIT_MS);
      }
    }
    // Drain: what the kernel already queued on this socket would be lost when it closes.
    const until = performance.now() + DRAIN_LIMIT_MS;
    while (runBatch() > 0 && performance.now() < until);
    post({ type: 'stopped', index: setup.index });
  } catch (err) {
    const e = err as MirrorgateError;
    post({ type: 'error', index: setup.index, code: e.code ?? 'MG_ERR_WORKER', message: e.message ?? String(err) });
  } finally {
    receiver?.close();
    sink?.close();
  }
}

main();
