/** Writes a generated mirror scenario to a capture file (Ethernet link type, as a sniffer on the target would see it). */
import { CaptureWriter, LinkType } from '../io/pcap/writer.js';
import { DEFAULT_SCENARIO, generateScenario, type ScenarioOptions } from './scenario.js';

export type ScenarioOverrides = { [K in keyof ScenarioOptions]?: ScenarioOptions[K] | undefined };

/** Returns the number of packets written. */
export function writeScenario(path: string, overrides: ScenarioOverrides = {}): number {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const options: ScenarioOptions = { ...DEFAULT_SCENARIO, ...defined };
  const writer = CaptureWriter.create(path, LinkType.ETHERNET);
  try {
    for (const f of generateScenario(options)) writer.write(f.frame, 0, f.frame.length, f.timestampNs);
    return writer.records;
  } finally {
    writer.close();
  }
}
