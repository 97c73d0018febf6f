/**
 * Runs inside a network namespace for packet-sink.test.ts: sends frames through a PacketSink to a
 * neighbour on a veth link whose kernel entry the agent makes STALE, and prints, as one JSON line,
 * how each batch went out and the entry's state after it.
 */
import { execFileSync } from 'node:child_process';
import { compileBackend, type Tables } from '../../src/control/tables.js';
import { PacketVector } from '../../src/core/vector.js';
import { ipv4ToU32 } from '../../src/io/native/index.js';
import { resolveNextHops } from '../../src/io/next-hop.js';
import { PacketSink } from '../../src/io/packet-sink.js';
import { createSendResult } from '../../src/io/sink.js';
import { buildIpv4UdpFrame } from './native/helpers.js';

const [peer, intervalMs] = [process.argv[2], Number(process.argv[3])];
const BATCH = 3;

const neighbourState = () => JSON.parse(execFileSync('ip', ['-json', 'neigh', 'show', peer], { encoding: 'utf8' }))[0]?.state?.join(',') ?? 'none';
const makeStale = () => {
  const n = JSON.parse(execFileSync('ip', ['-json', 'neigh', 'show', peer], { encoding: 'utf8' }))[0];
  execFileSync('ip', ['neigh', 'change', peer, 'lladdr', n.lladdr, 'nud', 'stale', 'dev', n.dev]);
};

async function main(): Promise<void> {
  const [resolution] = await resolveNextHops([peer]);
  const backend = compileBackend({ address: peer, family: 4, port: 9, weight: 1, text: `${peer}:9` });
  const tables = { destinations: [{ backends: [backend] }] } as unknown as Tables;
  const sink = new PacketSink(BATCH, { confirmIntervalMs: intervalMs });
  sink.setNextHops([resolution]);
  const vec = new PacketVector({ rxCapacity: BATCH, spare: 0, slotSize: 2048 });
  const batch = () => {
    vec.begin(BATCH);
    for (let i = 0; i < BATCH; i++) {
      const len = buildIpv4UdpFrame(vec.slot[i], 64, ipv4ToU32('198.18.0.7'), ipv4ToU32(peer), 50000 + i, 9, Buffer.from('confirm'));
      vec.l3[i] = vec.start[i] = 64;
      vec.end[i] = 64 + len;
      vec.l4[i] = 84;
      vec.family[i] = 4;
      vec.destination[i] = 0;
      vec.backend[i] = 0;
    }
    const result = createSendResult();
    sink.send(vec, Uint16Array.of(0, 1, 2), BATCH, tables, result);
    return { sent: result.sent, direct: result.direct, state: neighbourState() };
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  makeStale();
  const fresh = batch(); // the hop was just read: nothing to confirm yet
  await sleep(intervalMs + 50);
  makeStale();
  const due = batch(); // one packet goes through the kernel, which takes the stale entry up again
  makeStale();
  const notYet = batch();
  sink.close();
  console.log(JSON.stringify({ hop: resolution.hop !== null, fresh, due, notYet }));
}

void main();
