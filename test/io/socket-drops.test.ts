/**
 * Kernel drops at our receive sockets, read from /proc/net/udp: checked against the kernel by
 * overflowing a tiny receive buffer and counting what it still delivers.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { loadError, nativeAvailable, UdpReceiver } from '../../src/io/native/index.js';
import { parseUdpDrops, readSocketDrops, socketInode } from '../../src/io/socket-drops.js';
import { sendDgram } from './native/helpers.js';

const skip = nativeAvailable() ? false : `native addon not built: ${loadError()}`;

test('parses the drops column of the sockets asked for', () => {
  const table = [
    '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
    '  104: 0100007F:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17',
    '  105: 00000000:0801 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4343 2 0000000000000000 5',
    '  106: 00000000:0802 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4444 2 0000000000000000 100',
    'garbage',
  ].join('\n');
  assert.equal(parseUdpDrops(table, new Set([4242, 4343])), 22);
  assert.equal(parseUdpDrops(table, new Set([1])), 0);
});

test('what a full receive buffer drops is what the kernel no longer delivers', { skip }, async () => {
  const rx = new UdpReceiver({ address: '127.0.0.1', port: 0, rcvbufBytes: 1, slots: 64, slotSize: 2048 });
  const tx = dgram.createSocket('udp4');
  try {
    const inode = socketInode(rx.fd);
    assert.ok(inode !== null, 'a socket has an inode');
    assert.equal(socketInode(-1), null, 'no such descriptor');
    const sent = 50;
    for (let i = 0; i < sent; i++) await sendDgram(tx, new Uint8Array(1000).fill(i), rx.port, '127.0.0.1');
    const drops = readSocketDrops(new Set([inode!]));
    let received = 0;
    for (let n = rx.recv(); n > 0; n = rx.recv()) received += n;
    assert.ok(drops > 0, `the tiny buffer overflowed (received ${received})`);
    assert.equal(received + drops, sent);
  } finally {
    tx.close();
    rx.close();
  }
});
