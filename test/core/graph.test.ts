/**
 * The packet graph with made-up nodes: a packet is one byte (its "value"), and each node routes on
 * it by a rule simple enough for the test to predict every frame, counter and trace.
 *
 *   source ─┬─ even (copies multiples of 4) ─┐
 *           └─ odd  (drops 1 mod 4, holds    ├─ sink (drops multiples of 8, sends the rest)
 *                    big 3 mod 4 for a tick) ┘
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, GraphCounter } from '../../src/core/graph.js';
import { ABSORBED, defineNode, DROP, Node } from '../../src/core/node.js';
import { formatTraces, Tracer } from '../../src/core/trace.js';
import { Flag, PacketVector } from '../../src/core/vector.js';

const value = (vec: PacketVector, i: number) => vec.data[i][vec.start[i]];

const sourceSpec = defineNode({
  name: 'source',
  next: ['even', 'odd'],
  errors: { too_big: 'value above 200' },
});
class Source extends Node<typeof sourceSpec> {
  constructor() {
    super(sourceSpec);
  }
  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const v = value(vec, i);
      if (v > 200) this.drop(i, e.too_big);
      else this.next(i, v % 2 === 0 ? n.even : n.odd);
    }
  }
  override describe(vec: PacketVector, i: number): string {
    return `value ${value(vec, i)}`;
  }
}

const evenSpec = defineNode({
  name: 'even',
  next: ['sink'],
  errors: { no_spare: 'no spare slot for the copy' },
  counters: { copies: 'copies made', seen: 'packets seen' },
});
class Even extends Node<typeof evenSpec> {
  constructor() {
    super(evenSpec);
  }
  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e, c } = this.spec;
    let copies = 0;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      if (value(vec, i) % 4 !== 0) {
        this.next(i, n.sink);
        continue;
      }
      const copy = vec.clone(i);
      if (copy < 0) {
        this.drop(i, e.no_spare);
        continue;
      }
      copies++;
      this.next(i, n.sink);
      this.next(copy, n.sink);
    }
    this.count(c.copies, copies);
    this.count(c.seen, count);
  }
}

const oddSpec = defineNode({
  name: 'odd',
  next: ['sink'],
  errors: { odd_unlucky: 'value 1 mod 4', odd_expired: 'held too long' },
});
class Odd extends Node<typeof oddSpec> {
  held = 0;
  ticks: number[] = [];
  constructor() {
    super(oddSpec);
  }
  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const v = value(vec, i);
      if (v % 4 === 1) this.drop(i, e.odd_unlucky);
      else if (v > 100) {
        this.held++;
        this.absorb(i);
      } else this.next(i, n.sink);
    }
  }
  override tick(nowMs: number): void {
    this.ticks.push(nowMs);
    if (this.held) this.dropHeld(this.spec.e.odd_expired, this.held);
    this.held = 0;
  }
}

const sinkSpec = defineNode({
  name: 'sink',
  next: [],
  errors: { sink_refused: 'value a multiple of 8' },
});
class Sink extends Node<typeof sinkSpec> {
  frames: { i: number; v: number; derived: boolean }[][] = [];
  batches = 0;
  constructor() {
    super(sinkSpec);
  }
  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const seen: { i: number; v: number; derived: boolean }[] = [];
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const v = value(vec, i);
      seen.push({ i, v, derived: (vec.flags[i] & Flag.DERIVED) !== 0 });
      if (v % 8 === 0) this.drop(i, this.spec.e.sink_refused);
      else this.sent(i);
    }
    this.frames.push(seen);
  }
  override endBatch(): void {
    this.batches++;
  }
}

function setup(rx = 16, spare = 16) {
  const nodes = { source: new Source(), even: new Even(), odd: new Odd(), sink: new Sink() };
  const vec = new PacketVector({ rxCapacity: rx, spare, slotSize: 64 });
  const graph = new Graph([nodes.source, nodes.even, nodes.odd, nodes.sink], vec.capacity);
  /** Writes one packet per value (its length: value % 5 + 1 bytes) and runs them from `entry`. */
  const run = (values: number[], entry: Node = nodes.source) => {
    values.forEach((v, i) => {
      vec.slot[i].fill(v, 3, 3 + (v % 5) + 1);
      vec.start[i] = 3;
      vec.end[i] = 3 + (v % 5) + 1;
      vec.timestampNs[i] = 1000 + i;
    });
    vec.begin(values.length);
    graph.run(vec, entry, 0, values.length);
  };
  return { nodes, vec, graph, run, get: (name: string) => graph.counters.get(name) };
}

/** What the rules above say should happen, worked out independently of the graph. */
function predict(values: number[], free: number) {
  const even = values.filter((v) => v <= 200 && v % 2 === 0);
  const odd = values.filter((v) => v <= 200 && v % 2 === 1);
  let spares = free;
  const evenOut: { v: number; derived: boolean }[] = [];
  let noSpare = 0;
  for (const v of even) {
    if (v % 4 !== 0) evenOut.push({ v, derived: false });
    else if (spares > 0) {
      spares--;
      evenOut.push({ v, derived: false }, { v, derived: true });
    } else noSpare++;
  }
  const oddOut = odd.filter((v) => v % 4 === 3 && v <= 100).map((v) => ({ v, derived: false }));
  const sinkIn = [...evenOut, ...oddOut];
  return {
    tooBig: values.filter((v) => v > 200).length,
    even: even.length,
    odd: odd.length,
    copies: evenOut.filter((p) => p.derived).length,
    noSpare,
    unlucky: odd.filter((v) => v % 4 === 1).length,
    held: odd.filter((v) => v % 4 === 3 && v > 100).length,
    sinkIn,
    refused: sinkIn.filter((p) => p.v % 8 === 0 && !p.derived).length,
    refusedCopies: sinkIn.filter((p) => p.v % 8 === 0 && p.derived).length,
  };
}

describe('graph', () => {
  test('frames: each node gets the packets routed to it, in order, copies after their original', () => {
    const { nodes, run } = setup();
    const values = [4, 7, 250, 6, 9, 8, 11, 3, 2, 12];
    run(values);
    assert.equal(nodes.sink.frames.length, 1);
    const frame = nodes.sink.frames[0];
    const expected = predict(values, 32 - values.length).sinkIn;
    assert.deepEqual(
      frame.map(({ v, derived }) => ({ v, derived })),
      expected,
    );
    // originals keep their slot index; copies take the next free slots, in order
    assert.deepEqual(
      frame.filter((p) => !p.derived).map((p) => p.i),
      frame.filter((p) => !p.derived).map((p) => values.indexOf(p.v)),
    );
    assert.deepEqual(
      frame.filter((p) => p.derived).map((p) => p.i),
      [10, 11, 12],
    );
  });

  test('counters: rx, per node packets and batches, node counters, drops by reason, copy drops', () => {
    // Spare slots are whatever the batch leaves free: 2 in the first batch, more later.
    const { get, run, vec, graph } = setup(12, 2);
    const batches = [
      [4, 8, 16, 1, 5, 3, 7, 201, 255, 6, 12, 24],
      [103, 105, 2, 0, 199],
      [250, 251],
    ];
    const totals = { rx: 0, bytes: 0 };
    const expected: Record<string, number> = {};
    const add = (name: string, n: number) => (expected[name] = (expected[name] ?? 0) + n);
    for (const values of batches) {
      run(values);
      totals.rx += values.length;
      totals.bytes += values.reduce((a, v) => a + (v % 5) + 1, 0);
      const p = predict(values, vec.capacity - values.length);
      add('node.source.packets', values.length);
      add('node.source.batches', 1);
      add('node.even.packets', p.even);
      add('node.even.batches', p.even ? 1 : 0);
      add('node.odd.packets', p.odd);
      add('node.odd.batches', p.odd ? 1 : 0);
      add('node.sink.packets', p.sinkIn.length);
      add('node.sink.batches', p.sinkIn.length ? 1 : 0);
      add('even.copies', p.copies);
      add('even.seen', p.even);
      add('drop.too_big', p.tooBig);
      add('drop.no_spare', p.noSpare);
      add('drop.odd_unlucky', p.unlucky);
      add('drop.sink_refused', p.refused);
      add('copy_drop.sink_refused', p.refusedCopies);
      add('copy_drop.too_big', 0);
      add('drop.odd_expired', 0);
    }
    assert.equal(get(GraphCounter.RX_PACKETS), totals.rx);
    assert.equal(get(GraphCounter.RX_BYTES), totals.bytes);
    for (const [name, v] of Object.entries(expected)) assert.equal(get(name), v, name);
    assert.ok(expected['copy_drop.sink_refused'] > 0 && expected['drop.no_spare'] > 0, 'the batches exercise copies and their drops');
    // Every counter is named and readable; time is counted per node.
    const snap = graph.counters.snapshot();
    for (const name of ['node.source.ns', 'node.sink.ns', 'drop.too_big', 'copy_drop.odd_expired', 'even.copies']) assert.ok(name in snap, name);
    assert.equal(vec.count, 2, 'the last batch used no spare slot');
  });

  test('a node whose frame is empty is not run (and not counted)', () => {
    const { nodes, get, run } = setup();
    run([1, 5, 250]);
    assert.equal(nodes.sink.frames.length, 0);
    assert.equal(get('node.sink.batches'), 0);
    assert.equal(get('node.even.batches'), 0);
    assert.equal(nodes.sink.batches, 1, 'endBatch is still called on every node');
  });

  test('a batch may enter at a later node', () => {
    const { nodes, get, run } = setup();
    run([3, 7, 8], nodes.odd); // even values go nowhere special: odd just forwards non-1-mod-4
    assert.equal(get('node.source.packets'), 0);
    assert.equal(get('node.odd.packets'), 3);
    assert.deepEqual(
      nodes.sink.frames[0].map((p) => p.v),
      [3, 7, 8],
    );
    assert.equal(get('drop.sink_refused'), 1);
  });

  test('held packets dropped by a timer are counted through tick', () => {
    const { nodes, get, run, graph } = setup();
    run([103, 107, 3]);
    assert.equal(nodes.odd.held, 2);
    assert.equal(get('drop.odd_expired'), 0);
    graph.tick(5000);
    assert.deepEqual(nodes.odd.ticks, [5000]);
    assert.equal(get('drop.odd_expired'), 2);
    assert.equal(get('copy_drop.odd_expired'), 0);
  });

  test('tracing records node-by-node steps for only the armed number of packets', () => {
    const { graph, run } = setup();
    const tracer = new Tracer(10);
    graph.tracer = tracer;
    tracer.arm(2);
    run([4, 7, 9, 8]);
    assert.equal(tracer.armed, false);
    const traces = tracer.drain();
    assert.equal(traces.length, 2);
    assert.deepEqual(
      traces.map((t) => [t.id, t.timestampNs]),
      [
        [1, 1000],
        [2, 1001],
      ],
    );
    assert.deepEqual(traces[0].steps, [
      { node: 'source', verdict: 'even', detail: 'value 4' },
      { node: 'even', verdict: 'sink', detail: '' },
      { node: 'even', verdict: 'sink', detail: '' }, // the copy inherits the trace
      { node: 'sink', verdict: 'sent', detail: '' },
      { node: 'sink', verdict: 'sent', detail: '' },
    ]);
    assert.deepEqual(traces[1].steps, [
      { node: 'source', verdict: 'odd', detail: 'value 7' },
      { node: 'odd', verdict: 'sink', detail: '' },
      { node: 'sink', verdict: 'sent', detail: '' },
    ]);
    assert.deepEqual(tracer.drain(), [], 'drain forgets');
    // Not armed: the next batch is not traced; ids keep counting.
    run([250]);
    assert.deepEqual(tracer.drain(), []);
    tracer.arm(5);
    run([250, 1, 103, 16]);
    const [big, unlucky, held, refused] = tracer.drain();
    assert.deepEqual(
      [big.id, big.steps.map((s) => s.verdict)],
      [6, ['drop:too_big']],
    );
    assert.deepEqual(unlucky.steps.map((s) => `${s.node} ${s.verdict}`), ['source odd', 'odd drop:odd_unlucky']);
    assert.deepEqual(held.steps.map((s) => `${s.node} ${s.verdict}`), ['source odd', 'odd absorbed']);
    assert.deepEqual(refused.steps.map((s) => `${s.node} ${s.verdict}`), [
      'source even',
      'even sink',
      'even sink',
      'sink drop:sink_refused',
      'sink drop:sink_refused',
    ]);
    assert.equal(tracer.armed, true, 'one traced packet still owed');
    const text = formatTraces([big]);
    assert.match(text, /^Packet 6\n {2}source {13}→ drop:too_big {13}value 250\n/);
  });

  test('the tracer never holds more than its limit', () => {
    const { graph, run } = setup();
    const tracer = new Tracer(3);
    graph.tracer = tracer;
    tracer.arm(100);
    run([3, 7, 11, 15, 19]);
    assert.equal(tracer.drain().length, 3);
  });
});

describe('graph construction', () => {
  const plain = (name: string, next: string[], errors: Record<string, string> = {}) => {
    const spec = defineNode({ name, next, errors });
    return new (class extends Node {
      process(): void {}
    })(spec);
  };

  test('drop reason names are unique across the graph', () => {
    assert.throws(
      () => new Graph([plain('a', ['b'], { shared: 'one' }), plain('b', [], { shared: 'two' })], 4),
      /drop reason shared declared twice/,
    );
  });

  test('edges must go forward: backward and self edges are rejected', () => {
    assert.throws(() => new Graph([plain('a', []), plain('b', ['a'])], 4), /b → a goes backwards/);
    assert.throws(() => new Graph([plain('a', ['a'])], 4), /a → a goes backwards/);
  });

  test('unknown next nodes and duplicate node names are rejected', () => {
    assert.throws(() => new Graph([plain('a', ['nowhere'])], 4), /unknown next node nowhere/);
    assert.throws(() => new Graph([plain('a', []), plain('a', [])], 4), /duplicate node names/);
  });

  test('defineNode numbers next nodes, reasons and counters; rejects too many', () => {
    const spec = defineNode({ name: 'x', next: ['p', 'q'], errors: { r1: '', r2: '' }, counters: { c1: '' } });
    assert.deepEqual([spec.n, spec.e, spec.c], [{ p: 0, q: 1 }, { r1: 0, r2: 1 }, { c1: 0 }]);
    const many = (n: number, p: string) => Array.from({ length: n }, (_, k) => `${p}${k}`);
    assert.throws(() => defineNode({ name: 'x', next: many(ABSORBED, 'n'), errors: {} }), RangeError);
    assert.throws(() => defineNode({ name: 'x', next: [], errors: Object.fromEntries(many(DROP, 'e').map((k) => [k, ''])) }), RangeError);
    assert.doesNotThrow(() => defineNode({ name: 'x', next: many(ABSORBED - 1, 'n'), errors: Object.fromEntries(many(DROP - 1, 'e').map((k) => [k, ''])) }));
  });

  test('graph.node finds nodes by name', () => {
    const a = plain('a', []);
    const g = new Graph([a], 4);
    assert.equal(g.node('a'), a);
    assert.throws(() => g.node('b'), /no node b/);
    assert.deepEqual(g.dropReasons, []);
  });
});

describe('packet vector', () => {
  test('alloc hands out spare slots, then -1; clone copies bytes and metadata as DERIVED', () => {
    const vec = new PacketVector({ rxCapacity: 2, spare: 2, slotSize: 32 });
    vec.slot[0].set([9, 9, 1, 2, 3, 4, 5], 0);
    vec.start[0] = 2;
    vec.end[0] = 7;
    vec.begin(1);
    vec.l3[0] = 3;
    vec.l4[0] = -1;
    vec.vni[0] = 77;
    vec.flags[0] = Flag.TRACED;
    vec.id[0] = 42;
    const c = vec.clone(0);
    assert.equal(c, 1, 'the first free slot after the received packets');
    assert.deepEqual([...vec.data[c].subarray(vec.start[c], vec.end[c])], [1, 2, 3, 4, 5]);
    assert.deepEqual([vec.start[c], vec.l3[c], vec.l4[c], vec.vni[c], vec.id[c]], [0, 1, -1, 77, 42]);
    assert.equal(vec.flags[c], Flag.TRACED | Flag.DERIVED);
    vec.data[c][0] = 99;
    assert.equal(vec.data[0][2], 1, 'the copy has bytes of its own');
    assert.equal(vec.alloc(), 2);
    assert.equal(vec.alloc(), 3);
    assert.equal(vec.alloc(), -1);
    assert.equal(vec.clone(0), -1);
    vec.begin(2);
    assert.equal(vec.count, 2);
    assert.deepEqual([vec.flags[1], vec.vni[1], vec.l3[1]], [0, -1, -1]);
  });

  test('capacity limits', () => {
    assert.throws(() => new PacketVector({ rxCapacity: 60000, spare: 6000, slotSize: 1 }), RangeError);
    assert.throws(() => new PacketVector({ rxCapacity: 2, spare: 0, slotSize: 100, arena: Buffer.alloc(199) }), RangeError);
  });
});
