/**
 * Runs inside the receiving namespace for xdp.test.ts: attaches the XDP program to `dev`, opens
 * an AF_XDP socket on its queue 0 and a UDP socket on the tunnel port, has scapy send the test's
 * frames from the peer namespace, and prints, as one JSON line, which tags each socket received.
 *
 *   xdp-agent <dev> <peerNs> <peerDev> <listenAddress> <frames> <read: yes|no> <scapy script>
 */
import { execFileSync } from 'node:child_process';
import { UdpReceiver } from '../../src/io/native/index.js';
import { SYSTEM_PYTHON } from '../proto/scapy.js';
import { readInterface, XdpProgram, XdpReceiver } from '../../src/io/native/xdp.js';

const [dev, peerNs, peerDev, address, frames, read, script] = process.argv.slice(2);
const SLOT = 4096;
const TAG = /T:[a-w0-9-]+/; // tags avoid 'x', the filler of the long frames

function tagOf(bytes: Uint8Array): string {
  return TAG.exec(Buffer.from(bytes).toString('latin1'))?.[0] ?? '?';
}

function main(): void {
  const iface = readInterface(dev);
  const program = new XdpProgram({ iface, address, ports: [4789, 6081], frameSize: 2048 });
  const xsk = new XdpReceiver({ iface, queue: 0, mapFd: program.mapFd, frames: Number(frames), frameSize: 2048 });
  const udp = [4789, 6081].map((port) => new UdpReceiver({ address: '0.0.0.0', port, slots: 64, slotSize: SLOT }));
  const arena = new Uint8Array(64 * SLOT);
  const lengths = new Uint32Array(64);
  const got = { xsk: [] as string[], udp: [] as string[], drops: 0 };
  const drain = () => {
    for (let n = xsk.recv(arena, SLOT, 64, lengths); n > 0; n = xsk.recv(arena, SLOT, 64, lengths)) {
      for (let i = 0; i < n; i++) got.xsk.push(tagOf(arena.subarray(i * SLOT, i * SLOT + lengths[i])));
    }
    for (const u of udp) {
      for (let n = u.recv(); n > 0; n = u.recv()) {
        for (let i = 0; i < n; i++) got.udp.push(tagOf(u.buffers.arena.subarray(i * SLOT, i * SLOT + u.buffers.lengths[i])));
      }
    }
  };
  execFileSync('ip', ['netns', 'exec', peerNs, SYSTEM_PYTHON, '-c', `from scapy.all import *\nconf.verb = 0\nIFACE = ${JSON.stringify(peerDev)}\n${script}`], { timeout: 20_000 });
  const until = Date.now() + 300; // the frames cross a veth: give its receive thread time
  while (Date.now() < until) if (read === 'yes') drain();
  got.drops = xsk.drops();
  drain();
  xsk.close();
  program.close();
  for (const u of udp) u.close();
  process.stdout.write(`${JSON.stringify(got)}\n`);
}

main();
