/**
 * A gateway worker: one SO_REUSEPORT receive socket, one pipeline, one egress. The kernel spreads
 * mirror traffic across workers by outer 5-tuple, which AWS derives from the inner flow, so each
 * flow stays on one worker. The loop never waits to fill a batch: it takes what the socket holds
 * (up to the batch size), sends it, and blocks in poll(2) only when the socket is empty.
 */
import { receiveMessageOnPort, workerData, parentPort } from 'node:worker_threads';
import { carryRuntimeState, compileTables, setBackendUp } from '../control/tables.js';
import { MirrorgateError } from '../control/errors.js';
import { UdpReceiver, waitEither, type RecvBuffers } from '../io/native/index.js';
import { PacketSink } from '../io/packet-sink.js';
import { RawSink } from '../io/raw-sink.js';
import type { Sink } from '../io/sink.js';
import { UdpSink } from '../io/udp-sink.js';
import { Pipeline } from '../pipeline/build.js';
import { ControlSlot, type FromWorker, type ToWorker, type WorkerSetup } from './messages.js';

/** How long an idle worker sleeps before looking at its mailbox and timers again. */
const IDLE_WAIT_MS = 20;
/** Timers (reassembly expiry) run at least this often when traffic is light. */
const TICK_MS = 100;
/** Readiness bits, as waitEither reports them. */
const VXLAN = 1;
const GENEVE = 2;
/** How long a stopping worker keeps emptying its socket. */
const DRAIN_LIMIT_MS = 1000;

const setup = workerData as WorkerSetup;
/** Wall-clock milliseconds that never step backwards (packet timestamps and timers share it). */
const clockMs = () => performance.timeOrigin + performance.now();
const control = new Int32Array(setup.control);
const post = (m: FromWorker) => parentPort!.postMessage(m);

function main(): void {
  let tables = compileTables(setup.config, setup.generation, setup.slots);
  const batch = setup.batchSize;
  let sink: Sink | undefined;
  let receiver: UdpReceiver | undefined;
  let geneve: UdpReceiver | undefined;
  try {
    sink = tables.egressMode === 'raw' ? new RawSink(batch * 4) : tables.egressMode === 'packet' ? new PacketSink(batch * 4) : new UdpSink(batch * 4);
    const pipeline = new Pipeline({ tables, sink, batchSize: batch });
    pipeline.graph.numberPackets(setup.index + 1, setup.workers);
    const vec = pipeline.vec;
    // Both sockets receive into the vector's own slots: one batch at a time, no copy.
    const rx: RecvBuffers = {
      slots: batch,
      slotSize: vec.slotSize,
      arena: vec.arena,
      lengths: new Uint32Array(batch),
      srcAddr: new Uint32Array(batch),
      srcPort: new Uint16Array(batch),
      truncated: new Uint8Array(batch),
      srcAddr6: null,
    };
    const { address, port: listenPort, genevePort } = setup.config.listen;
    receiver = new UdpReceiver({ address, port: listenPort, reusePort: true, buffers: rx });
    if (genevePort) {
      try {
        geneve = new UdpReceiver({ address, port: genevePort, reusePort: true, buffers: rx });
      } catch (err) {
        throw new MirrorgateError((err as MirrorgateError).code, `${(err as Error).message} (listen.genevePort; set it to 0 to receive VXLAN only)`);
      }
    }
    const socketFds = geneve ? [receiver.fd, geneve.fd] : [receiver.fd];
    post({ type: 'ready', index: setup.index, shared: pipeline.shared(), rcvbufBytes: receiver.rcvbufBytes, socketFds });

    let seen = Atomics.load(control, ControlSlot.MAILBOX);
    let ready = VXLAN | GENEVE;
    let nextTick = 0;
    const runBatch = (socket: UdpReceiver, dstPort: number): number => {
      const n = socket.recv(batch);
      if (n === 0) return 0;
      const now = clockMs();
      const ns = now * 1e6;
      for (let i = 0; i < n; i++) {
        vec.start[i] = 0;
        vec.end[i] = rx.lengths[i];
        vec.outerSrc[i] = rx.srcAddr[i];
        vec.outerSrcPort[i] = rx.srcPort[i];
        vec.outerDstPort[i] = dstPort;
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
            tables = carryRuntimeState(tables, compileTables(msg.config, msg.generation, msg.slots));
            pipeline.setTables(tables);
            post({ type: 'applied', index: setup.index, generation: msg.generation });
          } else if (msg.type === 'health') {
            const d = tables.destinations.find((x) => x.name === msg.destination);
            const b = d ? d.backends.findIndex((x) => x.text === msg.backend) : -1;
            if (d && b >= 0) setBackendUp(d, b, msg.up);
          } else if (msg.type === 'nexthops') {
            sink.setNextHops?.(msg.hops);
          } else if (msg.type === 'trace') {
            pipeline.tracer.drain();
            pipeline.tracer.arm(msg.count);
          } else if (msg.type === 'trace-collect') {
            pipeline.tracer.arm(0);
            post({ type: 'traces', index: setup.index, id: msg.id, traces: pipeline.tracer.drain() });
          }
        }
      }
      // Read a socket only when poll said so or its last read filled a batch: a short read means
      // the queue was empty, and poll(2) returns at once if more arrived meanwhile. That saves
      // the empty reads that would otherwise cost as much as the packets at moderate rates.
      let again = 0;
      if (ready & VXLAN && runBatch(receiver, listenPort) === batch) again |= VXLAN;
      if (geneve && ready & GENEVE && runBatch(geneve, genevePort) === batch) again |= GENEVE;
      if (again !== 0) {
        ready = again;
        continue;
      }
      const now = clockMs();
      if (now >= nextTick) {
        pipeline.tick(now);
        nextTick = now + TICK_MS;
      }
      ready = geneve ? Math.max(waitEither(receiver, geneve, IDLE_WAIT_MS), 0) : receiver.wait(IDLE_WAIT_MS) === 'readable' ? VXLAN : 0;
    }
    // Drain: what the kernel already queued on these sockets would be lost when they close.
    const until = performance.now() + DRAIN_LIMIT_MS;
    while (runBatch(receiver, listenPort) + (geneve ? runBatch(geneve, genevePort) : 0) > 0 && performance.now() < until);
    post({ type: 'stopped', index: setup.index });
  } catch (err) {
    const e = err as MirrorgateError;
    post({ type: 'error', index: setup.index, code: e.code ?? 'MG_ERR_WORKER', message: e.message ?? String(err) });
  } finally {
    receiver?.close();
    geneve?.close();
    sink?.close();
  }
}

main();
