/**
 * Runs inside the gateway namespace for fast-path.test.ts: creates the fast path's maps, attaches
 * the XDP program with them to `dev`, installs the test's flows, opens an AF_XDP socket on queue
 * 0, has scapy send the test's frames from the peer namespace, and prints, as one JSON line, the
 * tags that reached the socket (the normal path) and each slot's counters.
 *
 *   fast-path-agent <dev> <peerNs> <peerDev> <generation> <flows JSON> <scapy script>
 *
 * flows: [{ key: FlowKey, action: FlowAction without generation, with `egress` (a device name)
 * and `dstMac` as text, and its own `generation` }]
 */
import { execFileSync } from 'node:child_process';
import { ipv4ToNumber } from '../../src/core/prefix-set.js';
import { ACTION_BYTES, encodeAction, encodeKey, FastPathMaps, KEY_BYTES } from '../../src/io/native/fast-path.js';
import { readInterface, XdpProgram, XdpReceiver } from '../../src/io/native/xdp.js';
import { macFromText } from '../../src/proto/ethernet/packet.js';
import { SYSTEM_PYTHON } from '../proto/scapy.js';

const [dev, peerNs, peerDev, generation, flowsJson, script] = process.argv.slice(2);
const SLOT = 2048;
const TAG = /T:[a-w0-9-]+/;

interface TestFlow {
  key: { outerSrc: string; vni: number; src: string; dst: string; srcPort: number; dstPort: number };
  action: { addr: string; port: number; mtu: number; dstMac: string; egress: string; slot: number; flags: number; generation: number };
}

function main(): void {
  const iface = readInterface(dev);
  const maps = new FastPathMaps(1024, 16);
  const program = new XdpProgram({ iface, address: '0.0.0.0', ports: [4789, 6081], frameSize: SLOT, fast: maps });
  for (const f of JSON.parse(flowsJson) as TestFlow[]) {
    const k = f.key;
    const key = { outerSrc: ipv4ToNumber(k.outerSrc), vni: k.vni, src: ipv4ToNumber(k.src), dst: ipv4ToNumber(k.dst), srcPort: k.srcPort, dstPort: k.dstPort };
    const egress = readInterface(f.action.egress);
    const a = f.action;
    const action = { generation: a.generation, addr: ipv4ToNumber(a.addr), port: a.port, mtu: a.mtu, dstMac: macFromText(a.dstMac)!, srcMac: egress.mac, ifindex: egress.ifindex, slot: a.slot, flags: a.flags };
    maps.put(encodeKey(key, new Uint8Array(KEY_BYTES)), encodeAction(key, action, new Uint8Array(ACTION_BYTES)));
  }
  maps.generation = Number(generation);
  const xsk = new XdpReceiver({ iface, queue: 0, mapFd: program.mapFd, frames: 256, frameSize: SLOT });
  const arena = new Uint8Array(64 * SLOT);
  const lengths = new Uint32Array(64);
  const got = { xsk: [] as string[], counters: [] as { packets: number; bytes: number; dfCleared: number }[] };
  const drain = () => {
    for (let n = xsk.recv(arena, SLOT, 64, lengths); n > 0; n = xsk.recv(arena, SLOT, 64, lengths)) {
      for (let i = 0; i < n; i++) got.xsk.push(TAG.exec(Buffer.from(arena.subarray(i * SLOT, i * SLOT + lengths[i])).toString('latin1'))?.[0] ?? '?');
    }
  };
  execFileSync('ip', ['netns', 'exec', peerNs, SYSTEM_PYTHON, '-c', `from scapy.all import *\nconf.verb = 0\nIFACE = ${JSON.stringify(peerDev)}\n${script}`], { timeout: 20_000 });
  const until = Date.now() + 300; // the frames cross a veth: give its receive thread time
  while (Date.now() < until) drain();
  for (let s = 0; s < 16; s++) got.counters.push(maps.read(s, { packets: 0, bytes: 0, dfCleared: 0 }));
  xsk.close();
  program.close();
  maps.close();
  process.stdout.write(`${JSON.stringify(got)}\n`);
}

main();
