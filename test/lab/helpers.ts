/**
 * Shared by the lab tests. They build network namespaces, so they need root: without it they are
 * skipped with that reason. With root, a missing tool fails the test and names the package.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Lab, labPrefixes, type LabOptions } from '../../src/lab/lab.js';
import { sendDfDatagram } from '../../src/lab/peers.js';
import { TelemetryPort } from '../../src/lab/plan.js';
import { nativeAvailable, loadError } from '../../src/io/native/index.js';

/** Why the lab tests cannot run here, or false. */
export const skipLab: string | false = process.getuid?.() !== 0 ? 'lab tests build network namespaces and need root' : false;

const TOOLS: Record<string, string> = {
  ip: 'iproute2',
  tc: 'iproute2',
  ss: 'iproute2',
  ethtool: 'ethtool',
  tcpdump: 'tcpdump',
  tshark: 'tshark',
  softflowd: 'softflowd',
  nfcapd: 'nfdump',
  nfdump: 'nfdump',
  nfreplay: 'nfdump',
  setpriv: 'util-linux',
};

/** Throws naming the packages to install when a tool (or the native addon) is missing. */
export function requireTools(...tools: string[]): void {
  const missing = tools.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length) throw new Error(`missing ${missing.join(', ')}: apt-get install ${[...new Set(missing.map((t) => TOOLS[t] ?? t))].join(' ')}`);
  if (tools.includes('/usr/bin/python3') && !existsSync('/usr/bin/python3')) throw new Error('missing /usr/bin/python3: apt-get install python3');
  if (!nativeAvailable()) throw new Error(`the native addon is not built (${loadError()}): run npm install`);
}

/** A prefix no other test file (or run) uses: the test's name and this process's pid. */
export function uniquePrefix(name: string): string {
  return `mgt${name}${process.pid}`;
}

/**
 * A lab for one test file (logging when MIRRORGATE_LAB_VERBOSE is set). If the test process is
 * interrupted, the lab is torn down before it exits; labs that killed test runs left behind
 * (their pid is gone) are removed by {@link reapStaleTestLabs}.
 */
export function testLab(name: string, opts: Omit<LabOptions, 'prefix'> = {}): Lab {
  const verbose = process.env.MIRRORGATE_LAB_VERBOSE;
  const lab = new Lab({ ...opts, prefix: uniquePrefix(name), log: verbose ? (l) => console.log(`[lab ${name}] ${l}`) : undefined });
  if (!skipLab) {
    const onSignal = (signal: NodeJS.Signals) => {
      lab.abort();
      void lab.down().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return lab;
}

/** Removes the labs of earlier test processes that died without tearing down (never a live one's). */
export async function reapStaleTestLabs(): Promise<string[]> {
  const reaped: string[] = [];
  for (const prefix of await labPrefixes()) {
    const m = /^mgt[a-z]+(\d+)$/.exec(prefix);
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    await new Lab({ prefix }).down();
    reaped.push(prefix);
  }
  return reaped;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A datagram as collector 0's socket received it (the recv agent's line). */
export interface Received {
  event: 'datagram' | 'timeout';
  from: string;
  port: number;
  length: number;
  sha256: string;
}

/**
 * Sends one UDP datagram of `size` bytes with DF set from the exporter's own stack, through the
 * mirror and the gateway, and returns what was sent with what collector 0's socket received.
 */
export async function sendToCollector(lab: Lab, size: number): Promise<{ sent: { srcPort: number; sha256: string }; got: Received }> {
  const receiver = lab.spawnAgent('collector0', ['recv', '--bind', lab.collectorEndpoint(0, TelemetryPort.NETFLOW), '--count', '1', '--timeout', '10000']);
  await receiver.waitForLine(/"event":"ready"/, { stream: 'stdout' });
  const sent = await sendDfDatagram(lab, { source: lab.exporter, port: TelemetryPort.NETFLOW, size });
  const line = await receiver.waitForLine(/"event":"(datagram|timeout)"/, { stream: 'stdout', timeoutMs: 15_000 });
  return { sent, got: JSON.parse(line) as Received };
}

/** {@link sendToCollector}, asserting the datagram arrived whole, from the exporter's address and port. */
export async function deliverWhole(lab: Lab, size: number): Promise<void> {
  const { sent, got } = await sendToCollector(lab, size);
  assert.equal(got.event, 'datagram', `the ${size}-byte datagram arrived`);
  assert.deepEqual([got.length, got.sha256], [size, sent.sha256], 'whole, with the exact payload');
  assert.deepEqual([got.from, got.port], [lab.exporter, sent.srcPort], "from the exporter's address and port");
}
