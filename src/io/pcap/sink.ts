/** Egress into a capture file: what would be transmitted, as raw IP records (LINKTYPE_RAW). */
import type { Tables } from '../../control/tables.js';
import type { PacketVector } from '../../core/vector.js';
import type { SendResult, Sink } from '../sink.js';
import { CaptureWriter, LinkType } from './writer.js';

export class PcapSink implements Sink {
  readonly name: string;
  private readonly writer: CaptureWriter;

  constructor(path: string) {
    this.writer = CaptureWriter.create(path, LinkType.RAW);
    this.name = `pcap ${path}`;
  }

  send(vec: PacketVector, frame: Uint16Array, count: number, _tables: Tables, result: SendResult): void {
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const len = vec.end[i] - vec.l3[i];
      this.writer.write(vec.data[i], vec.l3[i], len, vec.timestampNs[i]);
      result.sent++;
      result.bytes += len;
    }
  }

  flush(): void {}

  close(): void {
    this.writer.close();
  }

  get records(): number {
    return this.writer.records;
  }
}

/** Egress nowhere: counts what would have been sent (replay without -o, benchmarks). */
export class NullSink implements Sink {
  readonly name = 'none';
  send(vec: PacketVector, frame: Uint16Array, count: number, _tables: Tables, result: SendResult): void {
    for (let k = 0; k < count; k++) result.bytes += vec.end[frame[k]] - vec.l3[frame[k]];
    result.sent += count;
  }
  flush(): void {}
  close(): void {}
}
