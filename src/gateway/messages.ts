/**
 * What the main thread and the workers say to each other. Workers block in poll(2) between
 * batches, so the main thread also raises a flag in shared memory; a worker checks it every loop
 * and only then reads its message port synchronously.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../control/config.js';
import type { PacketTrace } from '../core/trace.js';
import type { HopResolution } from '../io/next-hop.js';
import type { XdpInterface } from '../io/native/xdp.js';
import type { SharedState } from '../pipeline/build.js';

export type ToWorker =
  | { type: 'tables'; config: Config; generation: number; slots: Map<string, number> }
  | { type: 'health'; destination: string; backend: string; up: boolean }
  /** Packet egress: each backend address's next hop (device, MACs), or why it has none. */
  | { type: 'nexthops'; hops: HopResolution[] }
  /** Starts a trace session: forget earlier traces, trace the next `count` packets. */
  | { type: 'trace'; id: number; count: number }
  /** Ends it: send what was traced and stop tracing. */
  | { type: 'trace-collect'; id: number };

export type FromWorker =
  | { type: 'ready'; index: number; shared: SharedState; rcvbufBytes: number; socketFds: number[]; xdp: XdpSocketInfo[] }
  | { type: 'applied'; index: number; generation: number }
  | { type: 'traces'; index: number; id: number; traces: PacketTrace[] }
  | { type: 'error'; index: number; code: string; message: string }
  /** Flows proposed to the XDP fast path under tables `generation`: rows of PROPOSAL_FIELDS (fast-learn.ts). */
  | { type: 'fast-flows'; index: number; generation: number; rows: Int32Array }
  /** `xdpDrops`: what the kernel dropped at the worker's XDP sockets, read just before closing them. */
  | { type: 'stopped'; index: number; xdpDrops: number };

/** One of a worker's XDP sockets. */
export interface XdpSocketInfo {
  fd: number;
  queue: number;
  zeroCopy: boolean;
}

/** Slots of the shared control word array. */
export const ControlSlot = {
  /** Bumped by the main thread after each message it posts. */
  MAILBOX: 0,
  /** Set to 1 to ask the worker to drain and stop. */
  STOP: 1,
} as const;

export interface WorkerSetup {
  index: number;
  workers: number;
  config: Config;
  generation: number;
  /** Backend counter slots, by "destination/backend". */
  slots: Map<string, number>;
  batchSize: number;
  control: SharedArrayBuffer;
  port: MessagePort;
  /** XDP ingress: the program's socket map and the receive queues this worker serves. */
  xdp: { iface: XdpInterface; mapFd: number; queues: number[] } | null;
}
