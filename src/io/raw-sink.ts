/**
 * Source-preserving egress: the rewritten IP packets go out through raw sockets (IP_HDRINCL), one
 * sendmmsg per family per batch, straight from the vector's arena. A packet whose bytes live
 * outside the arena (a reassembled datagram) is sent on its own.
 */
import type { Backend, Tables } from '../control/tables.js';
import type { PacketVector } from '../core/vector.js';
import { RawSender } from './native/index.js';
import { accountFailure, accountSend, type SendResult, type Sink } from './sink.js';

export class RawSink implements Sink {
  readonly name = 'raw';
  private readonly v4: RawSender;
  private readonly v6: RawSender | null;
  private readonly v6Error: string;
  private readonly offsets4: Uint32Array;
  private readonly lengths4: Uint32Array;
  private readonly dst4: Uint32Array;
  private readonly offsets6: Uint32Array;
  private readonly lengths6: Uint32Array;
  private readonly dst6: Uint8Array;
  private n4 = 0;
  private n6 = 0;
  /** One-packet arrays for packets outside the arena. */
  private readonly one = { offset: new Uint32Array(1), length: new Uint32Array(1), dst4: new Uint32Array(1), dst6: new Uint8Array(16) };

  constructor(capacity: number) {
    this.v4 = new RawSender({ family: 4 });
    let v6: RawSender | null = null;
    let v6Error = '';
    try {
      v6 = new RawSender({ family: 6 });
    } catch (err) {
      v6Error = (err as { errno?: string }).errno ?? 'EAFNOSUPPORT'; // IPv6 disabled: IPv6 packets count as failed
    }
    this.v6 = v6;
    this.v6Error = v6Error;
    this.offsets4 = new Uint32Array(capacity);
    this.lengths4 = new Uint32Array(capacity);
    this.dst4 = new Uint32Array(capacity);
    this.offsets6 = new Uint32Array(capacity);
    this.lengths6 = new Uint32Array(capacity);
    this.dst6 = new Uint8Array(capacity * 16);
  }

  send(vec: PacketVector, frame: Uint16Array, count: number, tables: Tables, result: SendResult): void {
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      this.add(vec, i, tables.destinations[vec.destination[i]].backends[vec.backend[i]], result);
    }
    this.sendQueued(vec.arena, result);
  }

  /** Queues packet `i` for {@link sendQueued} (a packet outside the arena goes at once). */
  add(vec: PacketVector, i: number, b: Backend, result: SendResult): void {
    const len = vec.end[i] - vec.l3[i];
    result.bytes += len;
    if (vec.data[i] !== vec.slot[i]) {
      this.sendOne(vec.data[i], vec.l3[i], len, vec.family[i], b.addr4, b.addr6, result);
      return;
    }
    const offset = i * vec.slotSize + vec.l3[i];
    if (vec.family[i] === 4) {
      const n = this.n4++;
      this.offsets4[n] = offset;
      this.lengths4[n] = len;
      this.dst4[n] = b.addr4;
    } else {
      const n = this.n6++;
      this.offsets6[n] = offset;
      this.lengths6[n] = len;
      this.dst6.set(b.addr6, n * 16);
    }
  }

  /** Sends what {@link add} queued: one sendmmsg per family. */
  sendQueued(arena: Uint8Array, result: SendResult): void {
    const n4 = this.n4;
    const n6 = this.n6;
    this.n4 = this.n6 = 0;
    if (n4 > 0) accountSend(result, this.v4.send(arena, this.offsets4, this.lengths4, this.dst4, n4), n4, this.v4);
    if (n6 > 0) {
      if (this.v6) accountSend(result, this.v6.send(arena, this.offsets6, this.lengths6, this.dst6, n6), n6, this.v6);
      else accountFailure(result, 0, n6, this.v6Error);
    }
  }

  private sendOne(buf: Buffer, off: number, len: number, family: number, addr4: number, addr6: Uint8Array, result: SendResult): void {
    const one = this.one;
    one.offset[0] = off;
    one.length[0] = len;
    if (family === 4) {
      one.dst4[0] = addr4;
      accountSend(result, this.v4.send(buf, one.offset, one.length, one.dst4, 1), 1, this.v4);
    } else if (this.v6) {
      one.dst6.set(addr6);
      accountSend(result, this.v6.send(buf, one.offset, one.length, one.dst6, 1), 1, this.v6);
    } else accountFailure(result, 0, 1, this.v6Error);
  }

  flush(): void {}

  close(): void {
    this.v4.close();
    this.v6?.close();
  }
}
