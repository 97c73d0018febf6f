/**
 * Egress without privileges ("SNAT mode"): the inner UDP payload is re-sent from the gateway's
 * own address to the backend. For collectors that identify exporters by something other than the
 * source IP (sFlow agent address, NetFlow v9 source id); the exporter's address is lost.
 */
import type { Tables } from '../control/tables.js';
import type { PacketVector } from '../core/vector.js';
import { PROTO_UDP } from '../pipeline/l4.js';
import { UdpSender } from './native/index.js';
import { accountSend, type SendResult, type Sink } from './sink.js';

const UDP_HEADER = 8;

export class UdpSink implements Sink {
  readonly name = 'udp';
  private readonly sender: UdpSender;
  private readonly offsets: Uint32Array;
  private readonly lengths: Uint32Array;
  private readonly addrs: Uint32Array;
  private readonly ports: Uint16Array;
  private readonly one = { offset: new Uint32Array(1), length: new Uint32Array(1), addr: new Uint32Array(1), port: new Uint16Array(1) };

  constructor(capacity: number) {
    this.sender = new UdpSender({});
    this.offsets = new Uint32Array(capacity);
    this.lengths = new Uint32Array(capacity);
    this.addrs = new Uint32Array(capacity);
    this.ports = new Uint16Array(capacity);
  }

  send(vec: PacketVector, frame: Uint16Array, count: number, tables: Tables, result: SendResult): void {
    let n = 0;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const b = tables.destinations[vec.destination[i]].backends[vec.backend[i]];
      if (vec.family[i] !== 4 || vec.protocol[i] !== PROTO_UDP || vec.l4[i] < 0) {
        result.failed++; // config validation keeps IPv6 and non-UDP rules out of udp mode
        result.lastError = 'EAFNOSUPPORT';
        continue;
      }
      const payload = vec.l4[i] + UDP_HEADER;
      const len = vec.end[i] - payload;
      const port = b.port || vec.dstPort[i];
      result.bytes += len;
      if (vec.data[i] !== vec.slot[i]) {
        const one = this.one;
        one.offset[0] = payload;
        one.length[0] = len;
        one.addr[0] = b.addr4;
        one.port[0] = port;
        accountSend(result, this.sender.send(vec.data[i], one.offset, one.length, one.addr, one.port, 1), 1, this.sender);
        continue;
      }
      this.offsets[n] = i * vec.slotSize + payload;
      this.lengths[n] = len;
      this.addrs[n] = b.addr4;
      this.ports[n] = port;
      n++;
    }
    if (n > 0) accountSend(result, this.sender.send(vec.arena, this.offsets, this.lengths, this.addrs, this.ports, n), n, this.sender);
  }

  flush(): void {}

  close(): void {
    this.sender.close();
  }
}
