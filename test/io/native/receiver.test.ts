import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';

import { SocketError } from '../../../src/control/errors.js';
import {
  allocRecvBuffers, DEFAULT_RCVBUF_BYTES, ipv4ToU32, loadError, nativeAvailable, rcvbufAdvice, u32ToIpv4, UdpReceiver,
  type RecvBuffers,
} from '../../../src/io/native/index.js';
import { collector, isRoot, sendDgram } from './helpers.js';

const skip = nativeAvailable() ? false : `native addon not built: ${loadError()}`;
const LOOP = ipv4ToU32('127.0.0.1');

/** Receives until `n` datagrams arrived (or 2 s), compacting successive batches in `into` order. */
async function recvAll(rx: UdpReceiver, n: number, into: RecvBuffers = rx.buffers): Promise<number> {
  let got = 0;
  const end = Date.now() + 2000;
  while (got < n && Date.now() < end) {
    if ((await rx.waitAsync(100)) !== 'readable') continue;
    got += rx.recv(into.slots - got, got === 0 ? into : shift(into, got));
  }
  return got;
}

/** Views of `b` starting at slot `k`, so a second recv() appends after the first. */
function shift(b: RecvBuffers, k: number): RecvBuffers {
  return {
    slots: b.slots - k,
    slotSize: b.slotSize,
    arena: b.arena.subarray(k * b.slotSize),
    lengths: b.lengths.subarray(k),
    srcAddr: b.srcAddr.subarray(k),
    srcPort: b.srcPort.subarray(k),
    truncated: b.truncated.subarray(k),
    srcAddr6: b.srcAddr6 ? b.srcAddr6.subarray(k * 16) : null,
  };
}

test('addon loads', { skip }, () => {
  assert.equal(nativeAvailable(), true);
  assert.equal(loadError(), null);
});

test('receives a batch sent by dgram into the preallocated arena', { skip }, async () => {
  const rx = new UdpReceiver({ address: '127.0.0.1', port: 0, slots: 32, slotSize: 256 });
  const tx = dgram.createSocket('udp4');
  try {
    assert.ok(rx.port > 0);
    assert.ok(rx.rcvbufBytes > 0);
    await new Promise<void>((r) => tx.bind(0, '127.0.0.1', r));
    const txPort = tx.address().port;
    const arenaBuffer = rx.buffers.arena.buffer;
    for (let i = 0; i < 20; i++) await sendDgram(tx, Buffer.from(`datagram-${i}-${'x'.repeat(i)}`), rx.port, '127.0.0.1');
    const n = await recvAll(rx, 20);
    assert.equal(n, 20);
    const b = rx.buffers;
    assert.equal(b.arena.buffer, arenaBuffer, 'same memory, nothing reallocated');
    for (let i = 0; i < n; i++) {
      const expected = Buffer.from(`datagram-${i}-${'x'.repeat(i)}`);
      assert.equal(b.lengths[i], expected.length);
      assert.equal(b.srcAddr[i], LOOP);
      assert.equal(u32ToIpv4(b.srcAddr[i]), '127.0.0.1');
      assert.equal(b.srcPort[i], txPort);
      assert.equal(b.truncated[i], 0);
      // The bytes are in the arena itself, at slot i.
      const slot = new Uint8Array(arenaBuffer, i * 256, b.lengths[i]);
      assert.deepEqual(Buffer.from(slot), expected);
    }
    assert.equal(rx.recv(), 0, 'nothing left: returns 0 without blocking');
    assert.equal(rx.lastErrno, null);
  } finally {
    tx.close();
    rx.close();
  }
});

test('per-call buffers: subarray views and SharedArrayBuffer memory are written in place', { skip }, async () => {
  const rx = new UdpReceiver({ address: '127.0.0.1', port: 0, slots: 4, slotSize: 64 });
  const tx = dgram.createSocket('udp4');
  try {
    const shared = allocRecvBuffers(8, 64, { shared: true });
    assert.ok(shared.arena.buffer instanceof SharedArrayBuffer);
    const into = shift(shared, 3); // non-zero byteOffset everywhere
    for (let i = 0; i < 3; i++) await sendDgram(tx, Buffer.from(`p${i}`), rx.port, '127.0.0.1');
    assert.equal(await recvAll(rx, 3, into), 3);
    for (let i = 0; i < 3; i++) {
      assert.equal(shared.lengths[3 + i], 2);
      assert.equal(String.fromCharCode(...shared.arena.subarray((3 + i) * 64, (3 + i) * 64 + 2)), `p${i}`);
    }
    assert.equal(shared.lengths[2], 0, 'slots before the view untouched');
  } finally {
    tx.close();
    rx.close();
  }
});

test('oversized datagram is truncated to the slot and flagged', { skip }, async () => {
  const rx = new UdpReceiver({ address: '127.0.0.1', port: 0, slots: 2, slotSize: 16 });
  const tx = dgram.createSocket('udp4');
  try {
    await sendDgram(tx, Buffer.alloc(100, 7), rx.port, '127.0.0.1');
    assert.equal(await recvAll(rx, 1), 1);
    assert.equal(rx.buffers.lengths[0], 16);
    assert.equal(rx.buffers.truncated[0], 1);
  } finally {
    tx.close();
    rx.close();
  }
});

test('two receivers with SO_REUSEPORT share one port and split the flows', { skip }, async () => {
  const a = new UdpReceiver({ address: '127.0.0.1', port: 0, slots: 64, slotSize: 64 });
  const b = new UdpReceiver({ address: '127.0.0.1', port: a.port, slots: 64, slotSize: 64 });
  const senders = Array.from({ length: 16 }, () => dgram.createSocket('udp4'));
  try {
    assert.equal(b.port, a.port);
    for (const s of senders) await sendDgram(s, Buffer.from('hi'), a.port, '127.0.0.1');
    let total = 0;
    const end = Date.now() + 2000;
    while (total < senders.length && Date.now() < end) {
      total += a.recv() + b.recv();
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(total, senders.length, 'every datagram reached one of the two');
  } finally {
    for (const s of senders) s.close();
    a.close();
    b.close();
  }
});

test('EADDRINUSE when a socket without SO_REUSEPORT holds the port', { skip }, async () => {
  const holder = await collector('udp4', '127.0.0.1');
  try {
    assert.throws(
      () => new UdpReceiver({ address: '127.0.0.1', port: holder.port }),
      (err: unknown) => {
        assert.ok(err instanceof SocketError);
        assert.equal(err.code, 'MG_ERR_LISTEN');
        assert.equal(err.errno, 'EADDRINUSE');
        assert.equal(err.message, `listen 127.0.0.1:${holder.port}: EADDRINUSE — another process owns this address/port`);
        return true;
      },
    );
  } finally {
    holder.socket.close();
  }
});

test('invalid address surfaces as SocketError EINVAL', { skip }, () => {
  assert.throws(() => new UdpReceiver({ address: '300.1.2.3', port: 0 }), (err: unknown) => {
    assert.ok(err instanceof SocketError);
    assert.equal(err.errno, 'EINVAL');
    assert.match(err.message, /^listen 300\.1\.2\.3:0: EINVAL — not an IPv4 or IPv6 address$/);
    return true;
  });
});

test('IPv6 receiver on ::1 reports 16-byte sources', { skip }, async (t) => {
  let rx: UdpReceiver;
  try {
    rx = new UdpReceiver({ address: '::1', port: 0, slots: 4, slotSize: 64 });
  } catch (err) {
    t.skip(`no IPv6 loopback: ${(err as Error).message}`);
    return;
  }
  const tx = dgram.createSocket('udp6');
  try {
    await new Promise<void>((r) => tx.bind(0, '::1', r));
    await sendDgram(tx, Buffer.from('six'), rx.port, '::1');
    assert.equal(await recvAll(rx, 1), 1);
    const b = rx.buffers;
    assert.ok(b.srcAddr6);
    assert.deepEqual([...b.srcAddr6.subarray(0, 16)], [...new Uint8Array(15), 1]);
    assert.equal(b.srcAddr[0], 0);
    assert.equal(b.srcPort[0], tx.address().port);
    assert.equal(Buffer.from(b.arena.subarray(0, b.lengths[0])).toString(), 'six');
  } finally {
    tx.close();
    rx.close();
  }
});

test('wait: timeout, readable, and closed wakes a pending waitAsync', { skip }, async () => {
  const rx = new UdpReceiver({ address: '127.0.0.1', port: 0, slots: 4, slotSize: 64 });
  const tx = dgram.createSocket('udp4');
  try {
    const t0 = Date.now();
    assert.equal(rx.wait(50), 'timeout');
    assert.ok(Date.now() - t0 >= 40);
    await sendDgram(tx, Buffer.from('x'), rx.port, '127.0.0.1');
    assert.equal(await rx.waitAsync(1000), 'readable');
    assert.equal(rx.recv(), 1);
    const pending = rx.waitAsync(5000);
    const t1 = Date.now();
    setTimeout(() => rx.close(), 20);
    assert.equal(await pending, 'closed');
    assert.ok(Date.now() - t1 < 2000, 'close woke the waiter instead of the 5 s timeout');
    assert.equal(rx.recv(), 0);
    assert.equal(rx.wait(10), 'closed');
  } finally {
    tx.close();
    rx.close();
  }
});

/** A worker thread that posts 'ready', blocks in waitReadable(fd, 5000) and posts the result. */
function waiterThread(fd: number): { ready: Promise<void>; result: Promise<string>; worker: Worker } {
  const moduleUrl = new URL('../../../src/io/native/index.js', import.meta.url).href;
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     import(workerData.moduleUrl).then((m) => {
       parentPort.postMessage('ready');
       parentPort.postMessage(m.waitReadable(workerData.fd, 5000));
     });`,
    { eval: true, workerData: { moduleUrl, fd } },
  );
  const messages: string[] = [];
  let onMessage: () => void = () => {};
  worker.on('message', (m: string) => { messages.push(m); onMessage(); });
  const nth = (i: number): Promise<string> =>
    new Promise((resolve) => {
      const check = (): void => { if (messages.length > i) resolve(messages[i]); };
      const prev = onMessage;
      onMessage = () => { prev(); check(); };
      check();
    });
  return { ready: nth(0).then(() => undefined), result: nth(1), worker };
}

test('a worker thread blocked in waitReadable(fd) wakes up on data and on close', { skip }, async () => {
  const rx = new UdpReceiver({ address: '127.0.0.1', port: 0, slots: 4, slotSize: 64 });
  const tx = dgram.createSocket('udp4');
  const a = waiterThread(rx.fd);
  let b: ReturnType<typeof waiterThread> | undefined;
  try {
    await a.ready;
    await new Promise((r) => setTimeout(r, 50)); // let it block in poll
    await sendDgram(tx, Buffer.from('w'), rx.port, '127.0.0.1');
    assert.equal(await a.result, 'readable');
    assert.equal(rx.recv(), 1);

    b = waiterThread(rx.fd);
    await b.ready;
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    rx.close(); // shutdown(2) wakes the blocked poll
    assert.equal(await b.result, 'closed');
    assert.ok(Date.now() - t0 < 2000, 'woken by close, not by the 5 s timeout');
  } finally {
    tx.close();
    rx.close();
    await a.worker.terminate();
    await b?.worker.terminate();
  }
});

test('bad arguments throw TypeError instead of crashing', { skip }, () => {
  const rx = new UdpReceiver({ address: '127.0.0.1', port: 0, slots: 4, slotSize: 64 });
  try {
    const b = rx.buffers;
    assert.throws(() => rx.recv(4, { ...b, lengths: new Uint32Array(2) }), TypeError);
    assert.throws(() => rx.recv(4, { ...b, srcPort: new Uint32Array(4) as unknown as Uint16Array }), TypeError);
    assert.throws(() => rx.recv(4, { ...b, arena: new Uint8Array(10) }), TypeError);
    assert.throws(() => rx.recv(4, { ...b, slotSize: 0 }), TypeError);
    assert.throws(() => rx.recv(4, { ...b, arena: 'nope' as unknown as Uint8Array }), TypeError);
    assert.throws(() => allocRecvBuffers(0, 10), TypeError);
  } finally {
    rx.close();
  }
});

test('the receive buffer: granted as asked with CAP_NET_ADMIN, capped by rmem_max without, and the advice says so', { skip: skip || (isRoot ? false : 'needs root to compare') }, () => {
  const asRoot = new UdpReceiver({ address: '127.0.0.1', port: 0 });
  try {
    assert.ok(asRoot.rcvbufBytes >= DEFAULT_RCVBUF_BYTES, `root gets what it asks: ${asRoot.rcvbufBytes}`);
    assert.equal(rcvbufAdvice(asRoot.rcvbufBytes), null);
  } finally {
    asRoot.close();
  }
  const moduleUrl = new URL('../../../src/io/native/index.js', import.meta.url).href;
  const script = `import(${JSON.stringify(moduleUrl)}).then((m) => {
    const rx = new m.UdpReceiver({ address: '127.0.0.1', port: 0 });
    console.log(JSON.stringify({ granted: rx.rcvbufBytes, advice: m.rcvbufAdvice(rx.rcvbufBytes) }));
    rx.close();
  });`;
  const out = execFileSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=-all', process.execPath, '-e', script], { encoding: 'utf8', cwd: '/' });
  const r = JSON.parse(out.trim()) as { granted: number; advice: string | null };
  const rmemMax = Number(execFileSync('sysctl', ['-n', 'net.core.rmem_max'], { encoding: 'utf8' }).trim());
  if (rmemMax * 2 >= DEFAULT_RCVBUF_BYTES) {
    assert.equal(r.advice, null, 'rmem_max already allows the full buffer');
    return;
  }
  assert.equal(r.granted, rmemMax * 2, 'the kernel caps the request at rmem_max (and reports twice it)');
  assert.match(r.advice ?? '', new RegExp(`receive buffer ${Math.round(rmemMax / 1024)} KiB per socket, 65536 KiB asked: net\\.core\\.rmem_max caps it`));
  assert.match(r.advice ?? '', /sysctl -w net\.core\.rmem_max=67108864/);
});
