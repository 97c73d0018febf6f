import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { SocketError } from '../../../src/control/errors.js';
import { ipv4ToU32, loadError, nativeAvailable, RawSender, UdpReceiver, UdpSender } from '../../../src/io/native/index.js';
import { buildIpv4Udp, buildIpv6Udp, collector, ipv6Bytes, isRoot } from './helpers.js';

const noAddon = nativeAvailable() ? false : `native addon not built: ${loadError()}`;
const needRoot = noAddon || (isRoot ? false : 'raw sockets need root');

// Foreign source from the benchmarking ranges (RFC 2544 198.18.0.0/15, RFC 5180 2001:2::/48).
// Loopback delivers them as long as rp_filter is off for lo (it is by default: the kernel
// never reverse-path-checks packets that arrive on the loopback device).
const FOREIGN4 = ipv4ToU32('198.18.0.5');
const LOOP4 = ipv4ToU32('127.0.0.1');
const FOREIGN6 = ipv6Bytes('2001:2::5');
const LOOP6 = ipv6Bytes('::1');

test('raw IPv4: a hand-built packet with a foreign source reaches a dgram socket as 198.18.0.5', { skip: needRoot }, async () => {
  const rx = await collector('udp4', '127.0.0.1');
  const tx = new RawSender({ family: 4 });
  try {
    assert.ok(tx.sndbufBytes > 0);
    const arena = new Uint8Array(256);
    const len = buildIpv4Udp(arena, 10, FOREIGN4, LOOP4, 40000, rx.port, Buffer.from('kept source'));
    const sent = tx.send(arena, Uint32Array.of(10), Uint32Array.of(len), Uint32Array.of(LOOP4), 1);
    assert.equal(sent, 1);
    assert.equal(tx.lastErrno, null);
    await rx.waitFor(1);
    assert.equal(rx.messages.length, 1);
    assert.equal(rx.messages[0].address, '198.18.0.5');
    assert.equal(rx.messages[0].port, 40000);
    assert.equal(rx.messages[0].data.toString(), 'kept source');
  } finally {
    tx.close();
    rx.socket.close();
  }
});

test('raw IPv4: a batch of 64 goes out in one send() call', { skip: needRoot }, async () => {
  const rx = await collector('udp4', '127.0.0.1');
  rx.socket.setRecvBufferSize(1 << 20);
  const tx = new RawSender({ family: 4 });
  try {
    const n = 64;
    const arena = new Uint8Array(n * 128);
    const offsets = new Uint32Array(n);
    const lengths = new Uint32Array(n);
    const dst = new Uint32Array(n).fill(LOOP4);
    for (let i = 0; i < n; i++) {
      offsets[i] = i * 128;
      lengths[i] = buildIpv4Udp(arena, i * 128, FOREIGN4 + (i % 4), LOOP4, 1000 + i, rx.port, Buffer.from(`pkt ${i}`));
    }
    assert.equal(tx.send(arena, offsets, lengths, dst, n), n);
    assert.equal(tx.lastErrno, null);
    await rx.waitFor(n);
    assert.equal(rx.messages.length, n);
    const seen = new Set(rx.messages.map((m) => `${m.address} ${m.port} ${m.data.toString()}`));
    for (let i = 0; i < n; i++) assert.ok(seen.has(`198.18.0.${5 + (i % 4)} ${1000 + i} pkt ${i}`), `packet ${i}`);
  } finally {
    tx.close();
    rx.socket.close();
  }
});

test('raw IPv4: a packet the kernel refuses is skipped, counted, and named; the rest go out', { skip: needRoot }, async () => {
  const rx = await collector('udp4', '127.0.0.1');
  const tx = new RawSender({ family: 4 });
  try {
    const arena = new Uint8Array(3 * 64);
    const offsets = Uint32Array.of(0, 64, 128);
    const lengths = new Uint32Array(3);
    for (let i = 0; i < 3; i++) lengths[i] = buildIpv4Udp(arena, i * 64, FOREIGN4, LOOP4, 2000 + i, rx.port, Buffer.from(`n${i}`));
    lengths[1] = 8; // shorter than an IPv4 header
    const sent = tx.send(arena, offsets, lengths, new Uint32Array(3).fill(LOOP4), 3);
    assert.equal(sent, 2);
    assert.equal(tx.lastErrno, 'EINVAL');
    await rx.waitFor(2);
    assert.deepEqual(rx.messages.map((m) => m.data.toString()).sort(), ['n0', 'n2']);
    // The next clean batch resets lastErrno.
    assert.equal(tx.send(arena, offsets.subarray(0, 1), lengths.subarray(0, 1), Uint32Array.of(LOOP4), 1), 1);
    assert.equal(tx.lastErrno, null);
  } finally {
    tx.close();
    rx.socket.close();
  }
});

test('raw IPv6: a packet from 2001:2::5 reaches a dgram socket on ::1', { skip: needRoot }, async (t) => {
  let rx: Awaited<ReturnType<typeof collector>>;
  try {
    rx = await collector('udp6', '::1');
  } catch (err) {
    t.skip(`no IPv6 loopback: ${(err as Error).message}`);
    return;
  }
  const tx = new RawSender({ family: 6 });
  try {
    const n = 8;
    const arena = new Uint8Array(n * 128);
    const offsets = new Uint32Array(n);
    const lengths = new Uint32Array(n);
    const dst = new Uint8Array(n * 16);
    for (let i = 0; i < n; i++) {
      offsets[i] = i * 128;
      lengths[i] = buildIpv6Udp(arena, i * 128, FOREIGN6, LOOP6, 3000 + i, rx.port, Buffer.from(`six ${i}`));
      dst.set(LOOP6, i * 16);
    }
    assert.equal(tx.send(arena, offsets, lengths, dst, n), n, `lastErrno ${tx.lastErrno}`);
    await rx.waitFor(n);
    assert.equal(rx.messages.length, n);
    for (const m of rx.messages) assert.equal(m.address, '2001:2::5');
    assert.deepEqual(rx.messages.map((m) => m.data.toString()).sort(), Array.from({ length: n }, (_, i) => `six ${i}`));
  } finally {
    tx.close();
    rx.socket.close();
  }
});

test('UdpSender: batch of payloads from our own address to a UdpReceiver', { skip: noAddon }, async () => {
  const rx = new UdpReceiver({ address: '127.0.0.1', port: 0, slots: 16, slotSize: 64 });
  const tx = new UdpSender({ bindAddress: '127.0.0.1' });
  try {
    const n = 10;
    const arena = new Uint8Array(n * 32);
    const offsets = new Uint32Array(n);
    const lengths = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const p = Buffer.from(`u${i}`);
      arena.set(p, i * 32);
      offsets[i] = i * 32;
      lengths[i] = p.length;
    }
    const dst = new Uint32Array(n).fill(LOOP4);
    const ports = new Uint16Array(n).fill(rx.port);
    assert.equal(tx.send(arena, offsets, lengths, dst, ports, n), n);
    let got = 0;
    for (let tries = 0; got < n && tries < 20; tries++) {
      await rx.waitAsync(100);
      got += rx.recv(16 - got, shiftBy(rx, got));
    }
    assert.equal(got, n);
    const b = rx.buffers;
    for (let i = 0; i < n; i++) {
      assert.equal(b.srcAddr[i], LOOP4);
      assert.equal(b.srcPort[i], tx.port);
      assert.equal(Buffer.from(b.arena.subarray(i * 64, i * 64 + b.lengths[i])).toString(), `u${i}`);
    }
    // Packets outside the arena are an argument error, checked before anything is sent.
    assert.throws(() => tx.send(arena, Uint32Array.of(arena.length - 1), Uint32Array.of(2), dst, ports, 1), TypeError);
    assert.throws(() => tx.send(arena, offsets, lengths, dst, ports, n + 1), TypeError);
    tx.close();
    assert.equal(tx.send(arena, offsets, lengths, dst, ports, 1), 0);
    assert.equal(tx.lastErrno, 'EBADF');
  } finally {
    tx.close();
    rx.close();
  }
});

test('UdpSender: a port-unreachable report about one datagram does not cost the next ones', { skip: noAddon }, async () => {
  const rx = await collector('udp4', '127.0.0.1');
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
  const closedPort = closed.address().port;
  await new Promise<void>((resolve) => closed.close(resolve));
  const tx = new UdpSender({ bindAddress: '127.0.0.1' });
  try {
    // The first datagram draws an ICMP port unreachable, which the kernel reports by failing
    // the socket's next send: that datagram must still go out, on a second try.
    const arena = Buffer.from('0123');
    const to = (port: number, n: number) =>
      [Uint32Array.from({ length: n }, (_, i) => i), new Uint32Array(n).fill(1), new Uint32Array(n).fill(LOOP4), new Uint16Array(n).fill(port)] as const;
    assert.equal(tx.send(arena, ...to(closedPort, 1), 1), 1);
    await new Promise((r) => setTimeout(r, 50)); // the report arrives
    assert.deepEqual([tx.send(arena, ...to(rx.port, 3), 3), tx.lastErrno], [3, null]);
    await rx.waitFor(3);
    assert.deepEqual(rx.messages.map((m) => m.data.toString()), ['0', '1', '2']);
  } finally {
    tx.close();
    rx.socket.close();
  }
});

function shiftBy(rx: UdpReceiver, k: number) {
  const b = rx.buffers;
  return {
    ...b,
    slots: b.slots - k,
    arena: b.arena.subarray(k * b.slotSize),
    lengths: b.lengths.subarray(k),
    srcAddr: b.srcAddr.subarray(k),
    srcPort: b.srcPort.subarray(k),
    truncated: b.truncated.subarray(k),
    srcAddr6: null,
  };
}

test('RawSender rejects a destination array of the wrong kind', { skip: needRoot }, () => {
  const tx = new RawSender({ family: 6 });
  try {
    assert.throws(() => tx.send(new Uint8Array(64), Uint32Array.of(0), Uint32Array.of(48), new Uint32Array(1), 1), TypeError);
    assert.throws(() => tx.send(new Uint8Array(64), Uint32Array.of(0), Uint32Array.of(48), new Uint8Array(8), 1), TypeError);
  } finally {
    tx.close();
  }
});

test('without CAP_NET_RAW (user nobody) RawSender throws SocketError EPERM with the hint', { skip: needRoot }, () => {
  const moduleUrl = new URL('../../../src/io/native/index.js', import.meta.url).href;
  const script =
    `import(${JSON.stringify(moduleUrl)}).then((m) => {
       try { new m.RawSender({ family: 4 }); console.log(JSON.stringify({ ok: true })); }
       catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, errno: e.errno, message: e.message })); }
     });`;
  const out = execFileSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=-all', process.execPath, '-e', script], {
    encoding: 'utf8',
    cwd: '/',
  });
  const r = JSON.parse(out.trim()) as { name: string; code: string; errno: string; message: string };
  assert.equal(r.name, 'SocketError');
  assert.equal(r.code, 'MG_ERR_RAW_SOCKET');
  assert.equal(r.errno, 'EPERM');
  assert.equal(r.message, 'raw IPv4 socket: EPERM — raw egress needs root or CAP_NET_RAW (or use egress.mode: udp)');
});

test('when the addon is not built, constructors throw SocketError MG_ERR_NATIVE', () => {
  // A copy of the compiled module in a package without native/build: the loader finds
  // package.json there and no addon next to it.
  const here = fileURLToPath(new URL('../../../src/', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'mg-native-'));
  try {
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    cpSync(join(here, 'io/native/index.js'), join(dir, 'src/io/native/index.js'));
    cpSync(join(here, 'control/errors.js'), join(dir, 'src/control/errors.js'));
    cpSync(join(here, 'core/prefix-set.js'), join(dir, 'src/core/prefix-set.js'));
    const script =
      `const m = await import(${JSON.stringify(new URL(`file://${dir}/src/io/native/index.js`).href)});
       const out = { available: m.nativeAvailable(), loadError: m.loadError() };
       for (const make of [() => new m.UdpReceiver({ address: '127.0.0.1', port: 0 }), () => new m.RawSender({ family: 4 }), () => new m.UdpSender()]) {
         try { make(); out.ok = true; } catch (e) { (out.errors ??= []).push({ name: e.name, code: e.code, errno: e.errno, message: e.message }); }
       }
       console.log(JSON.stringify(out));`;
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    const r = JSON.parse(res.stdout) as { available: boolean; loadError: string; ok?: boolean; errors: { name: string; code: string; errno: string; message: string }[] };
    assert.equal(r.available, false);
    assert.match(r.loadError, /mirrorgate_native\.node does not exist/);
    assert.equal(r.ok, undefined);
    assert.equal(r.errors.length, 3);
    for (const e of r.errors) {
      assert.equal(e.name, 'SocketError');
      assert.equal(e.code, 'MG_ERR_NATIVE');
      assert.equal(e.errno, 'ENOENT');
      assert.match(e.message, /npm install.*g\+\+, make and python3/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
