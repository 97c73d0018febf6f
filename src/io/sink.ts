/**
 * Where transmitted packets go: raw IP sockets or frames on the egress device (source kept), UDP
 * re-send (our own source), or a capture file. The transmit node hands a whole frame over once per batch.
 */
import type { Tables } from '../control/tables.js';
import type { PacketVector } from '../core/vector.js';
import type { HopResolution } from './next-hop.js';

export interface SendResult {
  /** Packets accepted by the backend. */
  sent: number;
  bytes: number;
  /** Of `sent`, the frames written straight to a device (packet egress). */
  direct: number;
  /** Packets the backend refused; `lastError` names the latest reason (an errno name). */
  failed: number;
  lastError: string;
  /** Times the egress queue was full and the send waited for it to drain before retrying. */
  busyWaits: number;
}

export interface Sink {
  readonly name: string;
  /** Sends packets frame[0..count) of `vec`; their bytes run from l3 to end (raw IP). */
  send(vec: PacketVector, frame: Uint16Array, count: number, tables: Tables, result: SendResult): void;
  /** Packet egress: the next hop of each backend address, as the main thread resolved it. */
  setNextHops?(hops: readonly HopResolution[]): void;
  /** Pushes out anything buffered. */
  flush(): void;
  close(): void;
}

export function createSendResult(): SendResult {
  return { sent: 0, bytes: 0, direct: 0, failed: 0, lastError: '', busyWaits: 0 };
}

/** What a send call reports besides its count (the native senders). */
export interface SendOutcome {
  readonly lastErrno: string | null;
  readonly busyWaits: number;
}

/** Adds one send call's outcome: `sent` of `tried` went out, the rest failed with `sender.lastErrno`. */
export function accountSend(result: SendResult, sent: number, tried: number, sender: SendOutcome): void {
  accountFailure(result, sent, tried, sender.lastErrno);
  result.busyWaits += sender.busyWaits;
}

/** Adds `sent` of `tried` packets, the rest refused with `errno`, without calling a sender. */
export function accountFailure(result: SendResult, sent: number, tried: number, errno: string | null): void {
  result.sent += sent;
  if (sent < tried) {
    result.failed += tried - sent;
    result.lastError = errno ?? 'EIO';
  }
}
