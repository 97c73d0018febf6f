/**
 * A gateway worker: one SO_REUSEPORT receive socket per tunnel port, with XDP ingress an AF_XDP
 * socket per receive queue it serves, one pipeline, one egress. The kernel spreads mirror traffic
 * across workers by outer 5-tuple (sockets) or receive queue (XDP), both of which AWS derives from
 * the inner flow, so each flow stays on one worker. The loop never waits to fill a batch: it takes
 * what a socket holds (up to the batch size), sends it, and blocks in poll(2) only when all are empty.
 */
import { receiveMessageOnPort, workerData, parentPort } from 'node:worker_threads';
import { carryRuntimeState, compileTables, setBackendUp } from '../control/tables.js';
import { MirrorgateError } from '../control/errors.js';
import { UdpReceiver, waitAny, type RecvBuffers } from '../io/native/index.js';
import { XdpReceiver } from '../io/native/xdp.js';
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
  const xsks: XdpReceiver[] = [];
  try {
    sink = tables.egressMode === 'raw' ? new RawSink(batch * 4) : tables.egressMode === 'packet' ? new PacketSink(batch * 4) : new UdpSink(batch * 4);
    const pipeline = new Pipeline({ tables, sink, batchSize: batch });
    pipeline.graph.numberPackets(setup.index + 1, setup.workers);
    const vec = pipeline.vec;
    // Every socket receives into the vector's own slots, one batch at a time.
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
    if (setup.xdp && setup.config.listen.xdp) {
      const { iface, mapFd, queues } = setup.xdp;
      const { frames, frameSize } = setup.config.listen.xdp;
      for (const queue of queues) xsks.push(new XdpReceiver({ iface, queue, mapFd, frames, frameSize }));
    }
    const socketFds = geneve ? [receiver.fd, geneve.fd] : [receiver.fd];
    post({
      type: 'ready', index: setup.index, shared: pipeline.shared(), rcvbufBytes: receiver.rcvbufBytes, socketFds,
      xdp: xsks.map((x) => ({ fd: x.fd, queue: x.queue, zeroCopy: x.zeroCopy })),
    });

    let seen = Atomics.load(control, ControlSlot.MAILBOX);
    let nextTick = 0;
    const stamp = (n: number): number => {
      const now = clockMs();
      const ns = now * 1e6;
      for (let i = 0; i < n; i++) {
        vec.start[i] = 0;
        vec.end[i] = rx.lengths[i];
        vec.timestampNs[i] = ns;
      }
      return now;
    };
    const proposeFlows = () => {
      const rows = pipeline.ctx.fastProposals?.take();
      if (rows) post({ type: 'fast-flows', index: setup.index, generation: tables.generation, rows });
    };
    // Each source reads one batch and runs it; it returns how many packets it read.
    const datagrams = (socket: UdpReceiver, dstPort: number) => (): number => {
      const n = socket.recv(batch);
      if (n === 0) return 0;
      const now = stamp(n);
      for (let i = 0; i < n; i++) {
        vec.outerSrc[i] = rx.srcAddr[i];
        vec.outerSrcPort[i] = rx.srcPort[i];
        vec.outerDstPort[i] = dstPort;
      }
      pipeline.run(n, 'tunnel', now);
      proposeFlows();
      return n;
    };
    // XDP hands over whole frames: the outer nodes check and strip the headers a socket would have.
    const frames = (x: XdpReceiver) => (): number => {
      const n = x.recv(rx.arena, rx.slotSize, batch, rx.lengths);
      if (n !== 0) {
        pipeline.run(n, 'ethernet', stamp(n));
        proposeFlows();
      }
      return n;
    };
    const sources = [datagrams(receiver, listenPort)];
    if (geneve) sources.push(datagrams(geneve, genevePort));
    for (const x of xsks) sources.push(frames(x));
    const fds = Int32Array.from([...socketFds, ...xsks.map((x) => x.fd)]);
    let ready = (1 << sources.length) - 1;

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
      for (let k = 0; k < sources.length; k++) if (ready & (1 << k) && sources[k]() === batch) again |= 1 << k;
      if (again !== 0) {
        ready = again;
        continue;
      }
      const now = clockMs();
      if (now >= nextTick) {
        pipeline.tick(now);
        nextTick = now + TICK_MS;
      }
      ready = Math.max(waitAny(fds, sources.length, IDLE_WAIT_MS), 0);
    }
    // Drain: what the kernel already queued on these sockets would be lost when they close.
    const until = performance.now() + DRAIN_LIMIT_MS;
    for (let read = 1; read > 0 && performance.now() < until; ) {
      read = 0;
      for (const source of sources) read += source();
    }
    const xdpDrops = xsks.reduce((sum, x) => sum + x.drops(), 0);
    post({ type: 'stopped', index: setup.index, xdpDrops });
  } catch (err) {
    const e = err as MirrorgateError;
    post({ type: 'error', index: setup.index, code: e.code ?? 'MG_ERR_WORKER', message: e.message ?? String(err) });
  } finally {
    receiver?.close();
    geneve?.close();
    for (const x of xsks) x.close();
    sink?.close();
  }
}

main();
