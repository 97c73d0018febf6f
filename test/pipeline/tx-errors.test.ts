/** Packets the egress refuses are counted, in total and by reason; none disappears silently. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/control/config.js';
import { compileTables, type Tables } from '../../src/control/tables.js';
import type { PacketVector } from '../../src/core/vector.js';
import type { SendResult, Sink } from '../../src/io/sink.js';
import { accountingFrom } from '../../src/pipeline/accounting.js';
import { Pipeline } from '../../src/pipeline/build.js';
import { ip4, mirror, udp4 } from './helpers.js';

/** Accepts the first packet of each batch and refuses the rest with `errno`. */
class RefusingSink implements Sink {
  readonly name = 'refusing';
  constructor(private readonly errno: string) {}
  send(_vec: PacketVector, _frame: Uint16Array, count: number, _t: Tables, r: SendResult): void {
    r.sent += 1;
    r.failed += count - 1;
    if (count > 1) r.lastError = this.errno;
  }
  flush(): void {}
  close(): void {}
}

for (const [errno, counter] of [
  ['EMSGSIZE', 'tx.errors_emsgsize'],
  ['ENOBUFS', 'tx.errors_enobufs'],
  ['EHOSTUNREACH', 'tx.errors_unreachable'],
  ['EPERM', 'tx.errors_other'],
] as const) {
  test(`${errno} refusals count as ${counter}`, () => {
    const r = validateConfig({ rules: [{ name: 'all', match: { protocol: 'udp' }, destination: 'd' }], destinations: { d: { backends: ['203.0.113.1:2055'] } } });
    assert.ok('config' in r);
    const p = new Pipeline({ tables: compileTables(r.config), sink: new RefusingSink(errno), batchSize: 16 });
    const frames = Array.from({ length: 5 }, (_, k) => mirror(udp4({ src: ip4('198.18.0.9'), dst: ip4('198.18.1.1'), srcPort: 1000 + k, dstPort: 2055, payload: new Uint8Array(20) })));
    frames.forEach((f, i) => {
      p.vec.slot[i].set(f);
      p.vec.start[i] = 0;
      p.vec.end[i] = f.length;
    });
    p.run(frames.length, 'ethernet', 0);
    const c = p.graph.counters.snapshot();
    assert.equal(c['tx.packets'], 1);
    assert.equal(c['tx.errors'], 4);
    assert.equal(c[counter], 4);
    assert.equal(accountingFrom(c).txErrors, 4);
  });
}
