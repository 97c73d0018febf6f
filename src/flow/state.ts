/** A worker's telemetry state: exporter statistics, sequence streams and cached templates. */
import { ExporterTable, SequenceStreams, type ExporterTableBuffers } from './exporters.js';
import { TemplateCache } from './template-cache.js';

export interface FlowStateOptions {
  exporters?: number;
  streams?: number;
}

export class FlowState {
  readonly exporterBuffers: ExporterTableBuffers;
  readonly exporters: ExporterTable;
  readonly streams: SequenceStreams;
  readonly templates: TemplateCache;

  constructor(options: FlowStateOptions = {}) {
    this.exporterBuffers = ExporterTable.allocate(options.exporters ?? 4096);
    this.exporters = new ExporterTable(this.exporterBuffers);
    this.streams = new SequenceStreams(options.streams ?? 16384);
    this.templates = new TemplateCache(this.streams.capacity);
  }
}
