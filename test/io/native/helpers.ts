/** Packet builders and small utilities for the native socket tests (loopback only). */
import dgram from 'node:dgram';

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** One's-complement sum folded to 16 bits, over `len` bytes at `off`, starting from `initial`. */
function sum16(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < len; i += 2) s += (buf[off + i] << 8) | buf[off + i + 1];
  if (len & 1) s += buf[off + len - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/**
 * Writes IPv4 + UDP + payload at `off` and returns the packet length. IP checksum left 0
 * (the kernel fills it for IP_HDRINCL); UDP checksum 0 (allowed on IPv4).
 */
export function buildIpv4Udp(buf: Uint8Array, off: number, src: number, dst: number, sport: number, dport: number, payload: Uint8Array): number {
  const total = 20 + 8 + payload.length;
  const v = new DataView(buf.buffer, buf.byteOffset + off, total);
  v.setUint8(0, 0x45);
  v.setUint8(1, 0);
  v.setUint16(2, total);
  v.setUint16(4, 0);
  v.setUint16(6, 0x4000); // DF
  v.setUint8(8, 64);
  v.setUint8(9, 17);
  v.setUint16(10, 0);
  v.setUint32(12, src);
  v.setUint32(16, dst);
  v.setUint16(20, sport);
  v.setUint16(22, dport);
  v.setUint16(24, 8 + payload.length);
  v.setUint16(26, 0);
  buf.set(payload, off + 28);
  return total;
}

/**
 * {@link buildIpv4Udp} with the IP header checksum filled in: raw sockets let the kernel fill it,
 * but a frame written past the kernel (packet egress) must carry it.
 */
export function buildIpv4UdpFrame(buf: Uint8Array, off: number, src: number, dst: number, sport: number, dport: number, payload: Uint8Array): number {
  const len = buildIpv4Udp(buf, off, src, dst, sport, dport, payload);
  const c = ~sum16(buf, off, 20) & 0xffff;
  buf[off + 10] = c >>> 8;
  buf[off + 11] = c & 0xff;
  return len;
}

/** Writes IPv6 + UDP + payload at `off` (UDP checksum computed: mandatory on IPv6). */
export function buildIpv6Udp(buf: Uint8Array, off: number, src: Uint8Array, dst: Uint8Array, sport: number, dport: number, payload: Uint8Array): number {
  const udpLen = 8 + payload.length;
  const v = new DataView(buf.buffer, buf.byteOffset + off, 40 + udpLen);
  v.setUint32(0, 0x60000000);
  v.setUint16(4, udpLen);
  v.setUint8(6, 17);
  v.setUint8(7, 64);
  buf.set(src, off + 8);
  buf.set(dst, off + 24);
  v.setUint16(40, sport);
  v.setUint16(42, dport);
  v.setUint16(44, udpLen);
  v.setUint16(46, 0);
  buf.set(payload, off + 48);
  let s = sum16(buf, off + 8, 32); // source + destination addresses
  s = sum16(new Uint8Array([0, 0, udpLen >> 8, udpLen & 255, 0, 0, 0, 17]), 0, 8, s);
  s = sum16(buf, off + 40, udpLen, s);
  v.setUint16(46, (~s & 0xffff) || 0xffff);
  return 40 + udpLen;
}

/** '2001:2::5' style address to 16 bytes (only the forms the tests use). */
export function ipv6Bytes(text: string): Uint8Array {
  const [head, tail = ''] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 255;
  });
  return out;
}

/** A dgram socket bound on loopback that collects what it receives. */
export async function collector(type: 'udp4' | 'udp6', address: string): Promise<{
  socket: dgram.Socket;
  port: number;
  messages: { data: Buffer; address: string; port: number }[];
  waitFor(n: number, ms?: number): Promise<void>;
}> {
  const socket = dgram.createSocket(type);
  const messages: { data: Buffer; address: string; port: number }[] = [];
  socket.on('message', (data, rinfo) => messages.push({ data, address: rinfo.address, port: rinfo.port }));
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  const waitFor = async (n: number, ms = 2000): Promise<void> => {
    const end = Date.now() + ms;
    while (messages.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  };
  return { socket, port: socket.address().port, messages, waitFor };
}

export function sendDgram(socket: dgram.Socket, data: Uint8Array, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => socket.send(data, port, address, (err) => (err ? reject(err) : resolve())));
}
