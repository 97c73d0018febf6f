/**
 * Offline replay: the live pipeline, fed from a capture instead of a socket. The capture's own
 * timestamps drive the clock, so reassembly timeouts behave as they would have on the wire and a
 * replay is repeatable.
 */
import type { Config } from './control/config.js';
import { compileTables } from './control/tables.js';
import { CaptureReader, createRecord, LinkType } from './io/pcap/reader.js';
import { NullSink, PcapSink } from './io/pcap/sink.js';
import type { Sink } from './io/sink.js';
import { accountingFrom, type Accounting } from './pipeline/accounting.js';
import { Pipeline, type Entry } from './pipeline/build.js';
import type { PacketTrace } from './core/trace.js';
import { parseTraceFilter } from './core/trace-filter.js';

/** Linux cooked capture (tcpdump -i any): 16-byte header, protocol in the last two bytes. */
const SLL_HEADER = 16;
const ETHERTYPE_IPV4 = 0x0800;

export interface ReplayOptions {
  config: Config;
  input: string;
  output?: string;
  /** Trace the first N packets (of those `traceFilter` keeps). */
  trace?: number;
  traceFilter?: string;
  batchSize?: number;
  /** Called every `progressEvery` packets with the count so far. */
  onProgress?: (packets: number) => void;
  progressEvery?: number;
}

export interface ReplayResult extends Accounting {
  input: string;
  output: string | null;
  records: number;
  /** Records skipped because of their link type (not Ethernet, raw IPv4 or Linux cooked IPv4). */
  skipped: number;
  /** What each drop reason seen means. */
  reasons: Record<string, string>;
  /** Every non-zero counter of the graph (per node, per reason). */
  counters: Record<string, number>;
  traces: PacketTrace[];
}

export function replay(options: ReplayOptions): ReplayResult {
  const tables = compileTables(options.config);
  const reader = CaptureReader.open(options.input);
  let sink: Sink | undefined;
  try {
    sink = options.output ? new PcapSink(options.output) : new NullSink();
    const pipeline = new Pipeline({ tables, sink, batchSize: options.batchSize ?? 256 });
    // With a filter, trace widely and keep the first N that match.
    if (options.trace) pipeline.tracer.arm(options.traceFilter ? Number.MAX_SAFE_INTEGER : options.trace);
    const vec = pipeline.vec;
    const rec = createRecord();
    let pending = 0;
    let pendingEntry: Entry = 'ethernet';
    let nowMs = 0;
    let records = 0;
    let skipped = 0;
    const every = options.progressEvery ?? 100_000;
    const flush = () => {
      if (pending > 0) pipeline.run(pending, pendingEntry, nowMs);
      pending = 0;
    };
    while (reader.next(rec)) {
      records++;
      if (options.onProgress && records % every === 0) options.onProgress(records);
      let entry: Entry;
      let skip = 0;
      if (rec.linkType === LinkType.ETHERNET) entry = 'ethernet';
      else if (rec.linkType === LinkType.RAW || rec.linkType === LinkType.IPV4) entry = 'ip4';
      else if (rec.linkType === LinkType.LINUX_SLL && rec.data.length >= SLL_HEADER && rec.data.readUInt16BE(14) === ETHERTYPE_IPV4) {
        entry = 'ip4';
        skip = SLL_HEADER;
      } else {
        skipped++;
        continue;
      }
      if (pending > 0 && entry !== pendingEntry) flush();
      pendingEntry = entry;
      const i = pending++;
      const len = Math.min(rec.data.length - skip, vec.slotSize);
      rec.data.copy(vec.slot[i], 0, skip, skip + len);
      vec.start[i] = 0;
      vec.end[i] = len;
      vec.timestampNs[i] = rec.timestampNs;
      nowMs = rec.timestampNs / 1e6;
      if (pending === vec.rxCapacity) flush();
    }
    flush();
    const snapshot = pipeline.graph.counters.snapshot();
    const accounting = accountingFrom(snapshot);
    const counters = Object.fromEntries(Object.entries(snapshot).filter(([name, v]) => v !== 0 && !name.endsWith('.ns')));
    const reasons: Record<string, string> = {};
    for (const d of pipeline.graph.dropReasons) {
      if (accounting.drops[d.name] || accounting.copyDrops[d.name]) reasons[d.name] = d.description;
    }
    return {
      input: options.input,
      output: options.output ?? null,
      records,
      skipped,
      ...accounting,
      reasons,
      counters,
      traces: pipeline.tracer.drain().filter(parseTraceFilter(options.traceFilter)).slice(0, options.trace ?? 0),
    };
  } finally {
    reader.close();
    sink?.close();
  }
}
