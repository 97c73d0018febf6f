/**
 * Runs inside the gateway namespace for fast-path.test.ts: creates the fast path's maps, attaches
 * the program with them to `dev` at `hook` (xdp, tc by a tcx link, or tc-filter: by a clsact
 * filter, as on kernels without tcx), installs the test's flows, opens the
 * normal path's receiver (an AF_XDP socket on queue 0 for xdp, a UDP socket on 4789 for tc), has
 * scapy send the test's frames from the peer namespace, and prints, as one JSON line, the tags
 * that reached the receiver (the normal path), each slot's counters and how the program was attached.
 *
 *   fast-path-agent <hook> <dev> <peerNs> <peerDev> <generation> <flows JSON> <scapy script>
 *
 * flows: [{ key: FlowKey, action: FlowAction without generation, with `egress` (a device name)
 * and `dstMac` as text, and its own `generation` }]
 */
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { ipv4ToNumber } from '../../src/core/prefix-set.js';
import { ACTION_BYTES, encodeAction, encodeKey, ExportKind, FastPathMaps, KEY_BYTES, type ExportStream, type SlotCounts } from '../../src/io/native/fast-path.js';
import { TcProgram } from '../../src/io/native/tc.js';
import { readInterface, XdpProgram, XdpReceiver } from '../../src/io/native/xdp.js';
import { macFromText } from '../../src/proto/ethernet/packet.js';
import { SYSTEM_PYTHON } from '../proto/scapy.js';

const [hook, dev, peerNs, peerDev, generation, flowsJson, script] = process.argv.slice(2);
const SLOT = 2048;
const TAG = /T:[a-w0-9-]+/;

interface TestFlow {
  key: { outerSrc: string; vni: number; src: string; dst: string; srcPort: number; dstPort: number };
  action: { addr: string; port: number; mtu: number; dstMac: string; egress: string; slot: number; flags: number; generation: number; export?: ExportStream };
}

async function main(): Promise<void> {
  const iface = readInterface(dev);
  const maps = new FastPathMaps(1024, 16);
  const tagOf = (b: Uint8Array) => TAG.exec(Buffer.from(b).toString('latin1'))?.[0] ?? '?';
  const got = { normal: [] as string[], counters: [] as SlotCounts[], via: 'xdp' as string };
  let detach: () => void;
  let drain = () => {};
  if (hook === 'xdp') {
    const program = new XdpProgram({ iface, address: '0.0.0.0', ports: [4789, 6081], frameSize: SLOT, fast: maps });
    const xsk = new XdpReceiver({ iface, queue: 0, mapFd: program.mapFd, frames: 256, frameSize: SLOT });
    const arena = new Uint8Array(64 * SLOT);
    const lengths = new Uint32Array(64);
    drain = () => {
      for (let n = xsk.recv(arena, SLOT, 64, lengths); n > 0; n = xsk.recv(arena, SLOT, 64, lengths)) {
        for (let i = 0; i < n; i++) got.normal.push(tagOf(arena.subarray(i * SLOT, i * SLOT + lengths[i])));
      }
    };
    detach = () => (xsk.close(), program.close());
  } else {
    const program = new TcProgram({ iface, address: '0.0.0.0', vxlanPort: 4789, fast: maps, attach: hook === 'tc-filter' ? 'filter' : 'link' });
    got.via = program.via;
    const socket = createSocket('udp4').on('message', (m) => got.normal.push(tagOf(m)));
    await new Promise<void>((resolve) => socket.bind(4789, resolve));
    detach = () => (socket.close(), program.close());
  }
  for (const f of JSON.parse(flowsJson) as TestFlow[]) {
    const k = f.key;
    const key = { outerSrc: ipv4ToNumber(k.outerSrc), vni: k.vni, src: ipv4ToNumber(k.src), dst: ipv4ToNumber(k.dst), srcPort: k.srcPort, dstPort: k.dstPort };
    const egress = readInterface(f.action.egress);
    const a = f.action;
    const action = { generation: a.generation, addr: ipv4ToNumber(a.addr), port: a.port, mtu: a.mtu, dstMac: macFromText(a.dstMac)!, srcMac: egress.mac, ifindex: egress.ifindex, slot: a.slot, flags: a.flags, export: a.export ?? { kind: ExportKind.NONE, domain: 0, agent: 0 } };
    maps.put(encodeKey(key, new Uint8Array(KEY_BYTES)), encodeAction(key, action, new Uint8Array(ACTION_BYTES)));
  }
  maps.generation = Number(generation);
  execFileSync('ip', ['netns', 'exec', peerNs, SYSTEM_PYTHON, '-c', `from scapy.all import *\nconf.verb = 0\nIFACE = ${JSON.stringify(peerDev)}\n${script}`], { timeout: 20_000 });
  // The frames cross a veth: give its receive thread (and the socket's event loop) time.
  for (const until = Date.now() + 300; Date.now() < until; await sleep(5)) drain();
  for (let s = 0; s < 16; s++) got.counters.push(maps.read(s, { packets: 0, bytes: 0, dfCleared: 0, aborted: 0, gaps: 0, lost: 0, resets: 0 }));
  detach();
  maps.close();
  process.stdout.write(`${JSON.stringify(got)}\n`);
}

await main();
