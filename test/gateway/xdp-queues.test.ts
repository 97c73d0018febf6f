/** Which receive queues each worker serves with an XDP socket. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { xdpQueues } from '../../src/gateway/gateway.js';

test('queues are dealt round-robin over the workers', () => {
  assert.deepEqual([xdpQueues(4, 2, 0), xdpQueues(4, 2, 1)], [[0, 2], [1, 3]]);
  assert.deepEqual([xdpQueues(2, 1, 0)], [[0, 1]]);
});

test('a worker beyond the queue count serves none: its sockets take what the kernel path brings', () => {
  assert.deepEqual([xdpQueues(1, 3, 0), xdpQueues(1, 3, 1), xdpQueues(1, 3, 2)], [[0], [], []]);
});

test('at most six per worker: further queues take the kernel path', () => {
  assert.deepEqual(xdpQueues(20, 1, 0), [0, 1, 2, 3, 4, 5]);
});
