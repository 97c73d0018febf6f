/**
 * Where transmitted packets go: raw IP sockets (source kept), UDP re-send (our own source), or a
 * capture file. The transmit node hands a whole frame over once per batch.
 */
import type { Tables } from '../control/tables.js';
import type { PacketVector } from '../core/vector.js';

export interface SendResult {
  /** Packets accepted by the backend. */
  sent: number;
  bytes: number;
  /** Packets the backend refused; `lastError` names the latest reason (an errno name). */
  failed: number;
  lastError: string;
}

export interface Sink {
  readonly name: string;
  /** Sends packets frame[0..count) of `vec`; their bytes run from l3 to end (raw IP). */
  send(vec: PacketVector, frame: Uint16Array, count: number, tables: Tables, result: SendResult): void;
  /** Pushes out anything buffered. */
  flush(): void;
  close(): void;
}

export function createSendResult(): SendResult {
  return { sent: 0, bytes: 0, failed: 0, lastError: '' };
}
