/**
 * `mirrorgate lab test`: the live demo. Builds the lab, runs the gateway, has softflowd and
 * nfreplay export to the monitored host, and shows what the collector saw; optionally measures
 * the rate; always tears down. Returns true when nothing was lost.
 */
import { formatAccounting } from '../cli/report.js';
import { Lab, labOwner, listNamespaces, type LabOptions } from './lab.js';
import { LabError } from './process.js';
import { writeFlowCapture } from './flows.js';
import { Addr, isLabNamespace } from './plan.js';
import { formatRateHeader, formatRateRow, formatRateSummary, rateLadder } from './rate.js';
import { describeCheck, nfreplayCheck, softflowdCheck, type ExportCheck } from './scenario.js';

export interface LabTestOptions extends Omit<LabOptions, 'log'> {
  /** Distinct flows in the synthesized capture (default 120). */
  flows?: number;
  /** Rates (datagrams/s) for the rate probe; none: no probe. */
  rates?: number[];
  /** A lossy rate step fails the test (for one --rate; a ladder only measures). */
  rateMustBeLossless?: boolean;
  /** Seconds per rate step (default 3). */
  seconds?: number;
  /** Leave the work directory (captures, nfcapd files, logs) in place. */
  keepFiles?: boolean;
  /** Tear down on SIGINT/SIGTERM (the CLI; tests tear down themselves). */
  handleSignals?: boolean;
}

export async function runLabTest(opts: LabTestOptions, print: (line: string) => void): Promise<boolean> {
  const lab = new Lab({ ...opts, log: (l) => print(`    ${l}`) });
  const owner = labOwner(lab.prefix, lab.dir);
  if (owner) throw new LabError(`lab ${lab.prefix} is in use by pid ${owner} (another lab test?); choose another --prefix`);
  const flows = opts.flows ?? 120;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    print(`\n${signal}: tearing the lab down`);
    lab.abort();
    lab
      .down({ keepFiles: opts.keepFiles })
      .catch((err: Error) => print(err.message))
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  if (opts.handleSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  print(`mirrorgate lab test: AWS VPC Traffic Mirroring, rebuilt in network namespaces (prefix ${lab.prefix})`);
  print('');
  print(`  exporter ${lab.exporters[0]}-${lab.exporters.at(-1)!.split('.')[3]} ──▶ monitored ${Addr.MONITORED} ══ VXLAN VNI ${lab.vni} ══▶ gateway ${Addr.GATEWAY} ──▶ collector${lab.collectors > 1 ? 's' : ''} ${Array.from({ length: lab.collectors }, (_, k) => lab.collector(k)).join(', ')}`);
  print(`  The monitored host's kernel copies every frame it receives into VXLAN (tc mirred), as AWS does;`);
  print(`  mirrorgate must deliver the telemetry with the exporter's address and port kept, destination rewritten.`);
  print('');
  const checks: ExportCheck[] = [];
  let balanced = false;
  let rateOk = true;
  const t0 = Date.now();
  try {
    print('Setting up:');
    if ((await listNamespaces()).some((ns) => isLabNamespace(lab.prefix, ns))) {
      print(`    an earlier lab ${lab.prefix} exists: removing it first`);
      await lab.down();
    }
    await lab.up();
    const gw = await lab.startGateway();
    const status = await lab.status();
    print(`    ${status.workers} workers, egress raw, log in ${lab.file('gateway.log')}`);
    print(`  ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (gateway pid ${gw.pid})`);
    print('');

    const capture = lab.file('flows.pcap');
    writeFlowCapture(capture, { flows });
    print(`Exporting ${flows} distinct flows (synthesized in ${capture}, 198.51.100.x → 203.0.113.x, TCP and UDP):`);
    print('');
    const steps: (() => Promise<ExportCheck>)[] = [
      () => softflowdCheck(lab, { version: 9, capture, flows, exporter: lab.exporters[0] }),
      () => softflowdCheck(lab, { version: 10, capture, flows, exporter: lab.exporters[1] }),
      () => nfreplayCheck(lab, { files: checks[0]?.files ?? [], exporter: lab.exporters[2] }), // replays what step 1 stored
    ];
    for (const step of steps) {
      const c = await step();
      checks.push(c);
      for (const line of describeCheck(c, checks.length)) print(line);
      print('');
    }

    const after = await lab.status();
    balanced = after.accounting.balanced;
    print('The gateway\'s own accounting (GET /api/status):');
    print(formatAccounting(after.accounting, (reason) => (reason === 'inner_not_ip' ? "the exporter's ARP requests: mirrored like every frame, rightly not forwarded" : '')));
    print('');

    if (opts.rates?.length) {
      print(`Rate probe: ${opts.seconds ?? 3} s per step, NetFlow-sized datagrams from 4 exporter addresses, counted at the collector`);
      print(formatRateHeader());
      const r = await rateLadder(lab, { rates: opts.rates, seconds: opts.seconds, all: true }, (s) => print(formatRateRow(s)));
      print('');
      print(formatRateSummary(r));
      rateOk = r.steps.every((s) => s.lossless);
      print('');
    }

    const stopped = await lab.stopGateway();
    const lastLog = gw.stderr.trim().split('\n').at(-1) ?? '';
    print(`Gateway stopped with SIGTERM: exit ${stopped?.code ?? stopped?.signal}${/"balanced":true/.test(lastLog) ? ', accounting balanced' : ''}`);
  } catch (err) {
    print(`\n✗ ${(err as Error).message}`);
    checks.push({ title: 'lab', problems: [(err as Error).message] } as ExportCheck);
  } finally {
    if (!interrupted) {
      print('Tearing down:');
      await lab.down({ keepFiles: opts.keepFiles }).catch((err: Error) => print(`✗ ${err.message}`));
      if (opts.keepFiles) print(`    files kept in ${lab.dir}`);
    }
    if (opts.handleSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  const failed = checks.filter((c) => c.problems.length);
  const ok = failed.length === 0 && checks.length >= 3 && balanced && (rateOk || !opts.rateMustBeLossless);
  print('');
  if (ok) {
    print(`PASS: ${checks.length} of ${checks.length} exports arrived whole, each with its exporter's own address and port${opts.rates?.length ? (rateOk ? '; no loss at any probed rate' : '; the rate probe lost packets at some rates (see the table)') : ''}.`);
  } else {
    const why = failed.length ? failed.map((c) => c.title.split(':')[0]) : [];
    if (!balanced) why.push('gateway accounting not balanced');
    if (!rateOk && opts.rateMustBeLossless) why.push('the rate probe lost packets');
    print(`FAIL: ${why.join('; ')}; see above.`);
  }
  return ok;
}
