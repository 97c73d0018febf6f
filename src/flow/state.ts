/** A worker's telemetry state: exporter statistics, sequence streams and cached templates. */
import { ExporterTable, SequenceStreams, type ExporterTableBuffers } from './exporters.js';
import { TemplateCache } from './template-cache.js';

/**
 * Which of a worker's streams the fast path's program follows: the main thread writes a stream's
 * word when it installs a flow of it, with the generation installed under, and keeps `live` at
 * the generation the program runs (0: off). A stream whose word equals `live` is the program's to
 * follow; one whose word is another generation's was, and its datagrams went by unseen.
 */
export interface StreamOwnerBuffers {
  owners: SharedArrayBuffer;
  live: SharedArrayBuffer;
}

export interface FlowStateOptions {
  exporters?: number;
  streams?: number;
}

export class FlowState {
  readonly exporterBuffers: ExporterTableBuffers;
  readonly exporters: ExporterTable;
  readonly streams: SequenceStreams;
  readonly templates: TemplateCache;
  readonly ownerBuffers: StreamOwnerBuffers;
  /** Per stream: the fast path generation it was installed under, 0 when never (see StreamOwnerBuffers). */
  readonly fastOwner: Int32Array;
  /** [0]: the generation the fast path's program runs, 0 when off. */
  readonly fastLive: Int32Array;

  constructor(options: FlowStateOptions = {}) {
    this.exporterBuffers = ExporterTable.allocate(options.exporters ?? 4096);
    this.exporters = new ExporterTable(this.exporterBuffers);
    this.streams = new SequenceStreams(options.streams ?? 16384);
    this.templates = new TemplateCache(this.streams.capacity);
    this.ownerBuffers = { owners: new SharedArrayBuffer(this.streams.capacity * 4), live: new SharedArrayBuffer(4) };
    this.fastOwner = new Int32Array(this.ownerBuffers.owners);
    this.fastLive = new Int32Array(this.ownerBuffers.live);
  }
}
