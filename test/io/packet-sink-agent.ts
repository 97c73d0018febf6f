/**
 * Runs inside a network namespace for packet-sink.test.ts: writes frames on the namespace's
 * loopback device through a PacketSink and prints, as one JSON line, what the kernel delivered.
 */
import { compileBackend, type Tables } from '../../src/control/tables.js';
import { PacketVector } from '../../src/core/vector.js';
import { ipv4ToU32 } from '../../src/io/native/index.js';
import { PacketSink } from '../../src/io/packet-sink.js';
import { createSendResult } from '../../src/io/sink.js';
import { buildIpv4UdpFrame, buildIpv6Udp, collector, ipv6Bytes } from './native/helpers.js';

/** Local addresses outside 127/8 (the kernel takes frames for 127/8 from a device as martians). */
const LOCAL4 = '198.18.9.1';
const OTHER4 = '198.18.9.2';
const LOOPBACK = 1; // ifindex of lo in a fresh namespace
const ZERO_MAC = '00:00:00:00:00:00';

function ipv4(buf: Uint8Array, off: number, src: string, dst: string, sport: number, dport: number, text: string): number {
  return buildIpv4UdpFrame(buf, off, ipv4ToU32(src), ipv4ToU32(dst), sport, dport, Buffer.from(text));
}

async function main(): Promise<void> {
  const rx4 = await collector('udp4', '0.0.0.0');
  const rx6 = await collector('udp6', '::1');
  const backends = [
    compileBackend({ address: LOCAL4, family: 4, port: rx4.port, weight: 1, text: `${LOCAL4}:${rx4.port}` }),
    compileBackend({ address: '::1', family: 6, port: rx6.port, weight: 1, text: `[::1]:${rx6.port}` }),
    compileBackend({ address: OTHER4, family: 4, port: rx4.port, weight: 1, text: `${OTHER4}:${rx4.port}` }),
  ];
  const tables = { destinations: [{ backends }] } as unknown as Tables;
  const sink = new PacketSink(8);
  const hop = { dev: 'lo', ifindex: LOOPBACK, srcMac: ZERO_MAC, dstMac: ZERO_MAC, gateway: null };
  sink.setNextHops([
    { address: LOCAL4, hop, reason: '' },
    { address: '::1', hop, reason: '' },
    { address: OTHER4, hop: null, reason: 'no route' },
  ]);
  const vec = new PacketVector({ rxCapacity: 5, spare: 0, slotSize: 2048 });
  vec.begin(5);
  const put = (i: number, l3: number, len: number, family: 4 | 6, backend: number) => {
    vec.l3[i] = vec.start[i] = l3;
    vec.end[i] = l3 + len;
    vec.l4[i] = l3 + (family === 4 ? 20 : 40);
    vec.family[i] = family;
    vec.destination[i] = 0;
    vec.backend[i] = backend;
  };
  put(0, 64, ipv4(vec.slot[0], 64, '198.18.0.7', LOCAL4, 50001, rx4.port, 'in place'), 4, 0);
  put(1, 0, ipv4(vec.slot[1], 0, '198.18.0.8', LOCAL4, 50002, rx4.port, 'moved up'), 4, 0);
  put(2, 50, buildIpv6Udp(vec.slot[2], 50, ipv6Bytes('2001:2::9'), ipv6Bytes('::1'), 50003, rx6.port, Buffer.from('ipv6')), 6, 1);
  put(3, 64, ipv4(vec.slot[3], 64, '198.18.0.10', OTHER4, 50004, rx4.port, 'no next hop'), 4, 2);
  const outside = Buffer.alloc(128); // a reassembled datagram lives in its own buffer
  put(4, 0, ipv4(outside, 0, '198.18.0.11', LOCAL4, 50005, rx4.port, 'outside the arena'), 4, 0);
  vec.data[4] = outside;

  const result = createSendResult();
  sink.send(vec, Uint16Array.of(0, 1, 2, 3, 4), 5, tables, result);
  sink.close();
  await rx4.waitFor(4);
  await rx6.waitFor(1);
  rx4.socket.close();
  rx6.socket.close();
  const text = (m: { address: string; port: number; data: Buffer }) => `${m.address}:${m.port} ${m.data.toString()}`;
  console.log(JSON.stringify({ result, got4: rx4.messages.map(text).sort(), got6: rx6.messages.map(text), movedL3: vec.l3[1] }));
}

void main();
