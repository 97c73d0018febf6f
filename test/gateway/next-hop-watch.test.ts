/**
 * The next-hop watcher follows the kernel's tables as they change (through `ip monitor`), well
 * before its 5-second safety look: a neighbour learned, its MAC replaced, the device's own MAC
 * changed, then the neighbour removed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

const NS = `mgnw${process.pid}`;
const skip = process.getuid?.() !== 0 ? 'builds a network namespace: needs root' : false;
const ip = (...args: string[]) => execFileSync('ip', ['-n', NS, ...args], { encoding: 'utf8' });

interface Change {
  hop: { dstMac: string; srcMac: string } | null;
  reason: string;
}

describe('NextHopWatcher', { skip, timeout: 30_000 }, () => {
  before(() => {
    execFileSync('ip', ['netns', 'add', NS]);
    ip('link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0');
    ip('link', 'set', 'a0', 'up');
    ip('link', 'set', 'b0', 'up');
    ip('addr', 'add', '198.18.7.1/24', 'dev', 'a0');
  });
  after(() => {
    try {
      execFileSync('ip', ['netns', 'del', NS]);
    } catch {
      // already gone
    }
  });

  test('learns, follows and loses a neighbour within a second of each change', async () => {
    const watch = fileURLToPath(new URL('../../src/gateway/next-hop-watch.js', import.meta.url));
    const log = fileURLToPath(new URL('../../src/control/log.js', import.meta.url));
    const script = [
      `const { NextHopWatcher } = await import(${JSON.stringify(watch)});`,
      `const { createLogger } = await import(${JSON.stringify(log)});`,
      `const w = new NextHopWatcher(createLogger('silent'), (hops) => console.log(JSON.stringify(hops[0])));`,
      `await w.start(['198.18.7.2']);`,
      `process.stdin.on('end', () => { w.stop(); process.exit(0); }); process.stdin.resume();`,
    ].join('\n');
    const child = spawn('ip', ['netns', 'exec', NS, process.execPath, '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async (ms: number): Promise<Change> => {
      const timer = new Promise<never>((_, no) => setTimeout(() => no(new Error(`no change within ${ms} ms`)), ms));
      const r = await Promise.race([lines.next(), timer]);
      return JSON.parse(r.value as string) as Change;
    };
    try {
      const first = await next(10_000);
      assert.equal(first.hop, null);
      assert.match(first.reason, /^neighbour 198\.18\.7\.2 on a0 not resolved/);

      ip('neigh', 'add', '198.18.7.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'a0', 'nud', 'permanent');
      assert.equal((await next(1000)).hop?.dstMac, '02:00:00:00:00:02', 'learned');

      ip('neigh', 'replace', '198.18.7.2', 'lladdr', '02:00:00:00:00:03', 'dev', 'a0', 'nud', 'permanent');
      assert.equal((await next(1000)).hop?.dstMac, '02:00:00:00:00:03', 'followed');

      // A new device MAC flushes its neighbours; learned again within one look, only the frames'
      // source differs from before, and the workers need it all the same.
      ip('link', 'set', 'a0', 'address', '02:00:00:00:00:a0');
      ip('neigh', 'replace', '198.18.7.2', 'lladdr', '02:00:00:00:00:03', 'dev', 'a0', 'nud', 'permanent');
      const moved = await next(1000);
      assert.deepEqual([moved.hop?.srcMac, moved.hop?.dstMac], ['02:00:00:00:00:a0', '02:00:00:00:00:03'], "the device's own address followed");

      ip('neigh', 'del', '198.18.7.2', 'dev', 'a0');
      assert.equal((await next(1000)).hop, null, 'lost');
    } finally {
      child.stdin.end();
      child.kill();
    }
  });
});
