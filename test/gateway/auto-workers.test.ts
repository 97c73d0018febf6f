import assert from 'node:assert/strict';
import { test } from 'node:test';
import { autoWorkers } from '../../src/gateway/gateway.js';

test('workers: auto leaves one core to the kernel, and never goes below one worker', () => {
  assert.equal(autoWorkers(1), 1);
  assert.equal(autoWorkers(2), 1);
  assert.equal(autoWorkers(4), 3);
  assert.equal(autoWorkers(64), 63);
});
