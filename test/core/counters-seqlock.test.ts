/**
 * A reader of shared counters never sees half a batch: a worker counts "a", dawdles, then counts
 * "b" by the same amount inside each batch (and dawdles between batches, as a worker receiving the
 * next one does), while this thread snapshots as fast as it can.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { CounterLayout, Counters } from '../../src/core/counters.js';

const countersModule = new URL('../../src/core/counters.js', import.meta.url).href;

const writer = `
  const { workerData, parentPort } = require('node:worker_threads');
  import(workerData.module).then(({ CounterLayout, Counters }) => {
    const layout = new CounterLayout();
    layout.slot('a');
    layout.slot('b');
    const c = new Counters(layout, workerData.buffer);
    const stop = new Int32Array(workerData.stop);
    parentPort.postMessage('ready');
    let spin = 0;
    while (Atomics.load(stop, 0) === 0) {
      c.beginBatch();
      c.values[0] += 3;
      for (let k = 0; k < 2000; k++) spin += k; // the window a torn read would fall into
      c.values[1] += 3;
      c.endBatch();
      for (let k = 0; k < 2000; k++) spin += k; // receiving the next batch
    }
    parentPort.postMessage(spin > 0 ? 'done' : 'done');
  });
`;

test('snapshots of shared counters hold whole batches only', async () => {
  const layout = new CounterLayout();
  layout.slot('a');
  layout.slot('b');
  const counters = Counters.shared(layout);
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const w = new Worker(writer, { eval: true, workerData: { module: countersModule, buffer: counters.values.buffer, stop: stop.buffer } });
  await new Promise((ready) => w.once('message', ready));
  try {
    let moving = 0;
    let last = -1;
    for (let k = 0; k < 20_000; k++) {
      const s = counters.snapshot();
      assert.equal(s.a, s.b, `snapshot ${k}: a=${s.a} b=${s.b}`);
      if (s.a !== last) moving++;
      last = s.a;
    }
    assert.ok(moving > 100, `the writer was counting meanwhile (${moving} distinct values seen)`);
  } finally {
    Atomics.store(stop, 0, 1);
    await new Promise((done) => w.once('exit', done));
  }
});
