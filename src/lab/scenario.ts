/**
 * The end-to-end checks of `mirrorgate lab test`, also used by the lab tests: real exporters
 * send to the monitored host, the kernel mirrors, the gateway delivers, and real collectors say
 * what they got. Each check watches both ends with tcpdump, so it can say not only whether the
 * flows arrived but with which source address and port, and to which destination.
 */
import type { Lab } from './lab.js';
import { Nfcapd, readFlows, runNfreplay, runSoftflowd, Tcpdump, type CapturedPacket, type NfdumpFlow } from './peers.js';
import { Addr, Iface, TelemetryPort } from './plan.js';
import { sleep } from './process.js';

export interface ExportCheck {
  /** What was exported ("NetFlow v9 from softflowd"). */
  title: string;
  exporter: string;
  /** The port the exporter sends to. */
  port: number;
  /** The port the gateway rewrites it to (the collector's). */
  collectorPort: number;
  /** Flows the collector should log. */
  expectedFlows: number;
  /** Datagrams tcpdump saw leave the exporter towards the monitored host. */
  sent: CapturedPacket[];
  /** Datagrams tcpdump saw arrive at the collectors. */
  received: CapturedPacket[];
  /** What nfcapd stored, on every collector. */
  flows: NfdumpFlow[];
  /** Files nfcapd wrote (for nfreplay). */
  files: string[];
  /** One line per thing that is wrong; empty when the check passed. */
  problems: string[];
}

const countBy = <T>(items: readonly T[], key: (t: T) => string) => {
  const m = new Map<string, number>();
  for (const i of items) m.set(key(i), (m.get(key(i)) ?? 0) + 1);
  return m;
};

/**
 * Collects on every collector (nfcapd + tcpdump) and on the exporter's link (tcpdump) while
 * `send` runs, then compares both ends.
 */
export async function exportAndCollect(
  lab: Lab,
  opts: { title: string; name: string; exporter: string; port: number; collectorPort?: number; expectedFlows: number; send: () => Promise<void> },
): Promise<ExportCheck> {
  const collectorPort = opts.collectorPort ?? opts.port;
  const nfcapds: Nfcapd[] = [];
  const dumps: Tcpdump[] = [];
  try {
    for (let k = 0; k < lab.collectors; k++) {
      nfcapds.push(await Nfcapd.start(lab, { collector: k, port: collectorPort, name: `${opts.name}-col${k}` }));
      dumps.push(await Tcpdump.start(lab, lab.collectorHost(k), { iface: Iface.COLLECTOR, filter: 'ip and not icmp', name: `${opts.name}-col${k}` }));
    }
    const exporterDump = await Tcpdump.start(lab, 'exporter', { iface: Iface.EXPORTER_UPLINK, filter: `udp and dst host ${Addr.MONITORED} and dst port ${opts.port}`, name: `${opts.name}-exporter` });
    dumps.push(exporterDump);
    await opts.send();
    await settled(dumps.slice(0, -1), exporterDump);
    for (const d of dumps) await d.stop();
    for (const n of nfcapds) await n.stop();

    const sent = await exporterDump.packets();
    const received = (await Promise.all(dumps.slice(0, -1).map((d) => d.packets()))).flat();
    const flows = (await Promise.all(nfcapds.map((n) => n.flows()))).flat();
    const files = nfcapds.flatMap((n) => n.files());
    const check = { ...opts, collectorPort, sent, received, flows, files, problems: [] as string[] };
    check.problems = judge(lab, check);
    return check;
  } finally {
    for (const d of dumps) await d.stop().catch(() => {});
    for (const n of nfcapds) await n.stop().catch(() => {});
  }
}

/**
 * Waits until the collectors' captures have at least as many packets as the exporter's and then
 * stop growing (fragments count too), or 5 s at most.
 */
async function settled(collectors: Tcpdump[], exporter: Tcpdump): Promise<void> {
  const deadline = Date.now() + 5000;
  let last = -1;
  for (;;) {
    await sleep(250);
    const now = collectors.reduce((sum, d) => sum + d.records(), 0);
    if ((now === last && now >= exporter.records()) || Date.now() > deadline) return;
    last = now;
  }
}

function judge(lab: Lab, c: Omit<ExportCheck, 'problems'>): string[] {
  const { sent, received, flows } = c;
  const problems: string[] = [];
  const collectors = new Set(Array.from({ length: lab.collectors }, (_, k) => lab.collector(k)));
  const sentPorts = new Set(sent.map((p) => p.srcPort));
  const firsts = received.filter((p) => p.fragmentOffset === 0);
  if (sent.length === 0) problems.push(`the exporter sent nothing to ${Addr.MONITORED}:${c.port}`);
  for (const p of sent) if (p.src !== c.exporter) problems.push(`the exporter sent from ${p.src}, expected ${c.exporter}`);
  if (firsts.length < sent.length) problems.push(`${sent.length - firsts.length} of ${sent.length} datagrams did not reach a collector`);
  if (firsts.length > sent.length) problems.push(`${firsts.length - sent.length} more datagrams reached the collectors than the exporter sent`);
  for (const p of firsts) {
    if (p.src !== c.exporter) problems.push(`a datagram reached the collector from ${p.src}, expected the exporter's ${c.exporter}`);
    else if (!sentPorts.has(p.srcPort)) problems.push(`a datagram reached the collector from port ${p.srcPort}, but the exporter sent from ${[...sentPorts].join(', ')}`);
    if (!collectors.has(p.dst) || p.dstPort !== c.collectorPort) problems.push(`a datagram went to ${p.dst}:${p.dstPort}, expected a collector on port ${c.collectorPort}`);
    if (p.checksum === 'bad') problems.push(`a datagram reached the collector with a bad UDP checksum`);
  }
  if (flows.length !== c.expectedFlows) problems.push(`nfcapd logged ${flows.length} flows, expected ${c.expectedFlows}`);
  const wrong = flows.filter((f) => f.exporter !== c.exporter);
  if (wrong.length) problems.push(`nfcapd logged ${wrong.length} flows from exporter ${[...new Set(wrong.map((f) => f.exporter))].join(', ')}, expected ${c.exporter}`);
  return [...new Set(problems)];
}

/** The lines `lab test` prints for a check. */
export function describeCheck(c: ExportCheck, index: number): string[] {
  const firsts = (ps: CapturedPacket[]) => ps.filter((p) => p.fragmentOffset === 0);
  const endpoints = (ps: CapturedPacket[]) => [...countBy(firsts(ps), (p) => `${p.src}:${p.srcPort} → ${p.dst}:${p.dstPort}`).keys()].join(', ') || '-';
  const exporters = [...countBy(c.flows, (f) => f.exporter)].map(([e, n]) => (c.flows.length === n ? `all from exporter ${e}` : `${n} from ${e}`)).join(', ');
  const row = (what: string, n: number, unit: string, detail: string, source: string) =>
    `   ${what.padEnd(18)} ${String(n).padStart(4)} ${unit.padEnd(10)} ${detail.padEnd(42)} ${source}`;
  return [
    `${index}. ${c.title}`,
    row('exporter sent', firsts(c.sent).length, 'datagrams', endpoints(c.sent), '(tcpdump on the exporter)'),
    row('collector received', firsts(c.received).length, 'datagrams', endpoints(c.received), '(tcpdump on the collector)'),
    row('nfcapd logged', c.flows.length, `flows of ${c.expectedFlows}`, exporters, '(nfdump -o fmt:%ra ...)'),
    ...(c.problems.length
      ? c.problems.map((p) => `   ✗ ${p}`)
      : [`   ✓ every flow arrived, from ${c.exporter} and the same source port; destination rewritten to the collector`]),
  ];
}

/** NetFlow v9 or IPFIX from softflowd reading `capture` (of `flows` distinct flows). */
export function softflowdCheck(lab: Lab, opts: { version: 9 | 10; capture: string; flows: number; exporter: string; port?: number }): Promise<ExportCheck> {
  const collectorPort = opts.version === 9 ? TelemetryPort.NETFLOW : TelemetryPort.IPFIX;
  const port = opts.port ?? collectorPort;
  const what = opts.version === 9 ? 'NetFlow v9' : 'IPFIX';
  return exportAndCollect(lab, {
    title: `${what}: softflowd -v ${opts.version} exports ${opts.flows} flows from ${opts.exporter} to ${lab.monitored}:${port}`,
    name: `${opts.version === 9 ? 'netflow9' : 'ipfix'}-${port}`,
    exporter: opts.exporter,
    port,
    collectorPort,
    expectedFlows: opts.flows,
    send: async () => {
      const r = await runSoftflowd(lab, { capture: opts.capture, version: opts.version, port, source: opts.exporter });
      if (r.failures || r.flows !== opts.flows) throw new Error(`softflowd exported ${r.flows} of ${opts.flows} flows (${r.failures} failures)`);
    },
  });
}

/** nfreplay of nfcapd files (NetFlow v9) from `exporter`. */
export async function nfreplayCheck(lab: Lab, opts: { files: string[]; exporter: string }): Promise<ExportCheck> {
  let expected = 0;
  for (const f of opts.files) expected += (await readFlows(f)).length;
  return exportAndCollect(lab, {
    title: `nfreplay: ${expected} stored flows replayed as NetFlow v9 from ${opts.exporter} to ${lab.monitored}:${TelemetryPort.NETFLOW}`,
    name: 'nfreplay',
    exporter: opts.exporter,
    port: TelemetryPort.NETFLOW,
    expectedFlows: expected,
    send: async () => {
      for (const file of opts.files) await runNfreplay(lab, { file, port: TelemetryPort.NETFLOW, source: opts.exporter });
    },
  });
}
