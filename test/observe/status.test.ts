/**
 * `mirrorgate status` (text and --json) against a live gateway that has seen known traffic:
 * forwarded datagrams, drops for two reasons, a sequence gap, one backend up and one down.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Backend, PORTS, runCli, scenarioFrames, scratchDir, sendFrames, skipObserve, type Status, TestGateway, waitFor } from './helpers.js';

const P = PORTS.status;
const UP = `127.0.0.1:${P + 1}`;
const DOWN = `127.0.0.1:${P + 4}`;

/** Escapes text for a RegExp. */
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('observe: mirrorgate status', { skip: skipObserve, timeout: 60_000 }, () => {
  const scratch = scratchDir('status');
  const configPath = join(scratch.dir, 'gateway.yaml');
  let backend: Backend;
  let probeTarget: Server;
  let gw: TestGateway;
  const expect = { rx: 0, forwarded: 0, unknownVni: 0, notAllowed: 0, perExporter: new Map<string, number>() };

  before(async () => {
    backend = await Backend.bind(P + 1);
    // The TCP health check probes the backend's port: something listens on P+1, nothing on P+4.
    probeTarget = createServer((s) => s.destroy());
    await new Promise<void>((r) => probeTarget.listen(P + 1, '127.0.0.1', () => r()));
    gw = await TestGateway.start(configPath, {
      listenPort: P,
      controlPort: P + 3,
      backendPorts: [P + 1, P + 4],
      destination: { health: { check: 'tcp', interval: 200, timeout: 100, fall: 1, rise: 1 } },
      extra: { allowlist: ['198.18.0.0/24'] },
    });
    await waitFor('backend P+4 down', async () => (await gw.status()).destinations[0].backends.some((b) => b.backend === DOWN && !b.up), 5000);

    // Exporters .11-.13 (NetFlow v9 and IPFIX, 6 each); .12 loses its 3rd v9 datagram: 1 gap, 1 lost.
    let v9of12 = 0;
    const good = scenarioFrames({ exporters: ['198.18.0.11', '198.18.0.12', '198.18.0.13'], protocols: ['netflow9', 'ipfix'], datagramsPerExporter: 6, seed: 7 }).filter(
      (f) => !(f.info.exporter === '198.18.0.12' && f.info.protocol === 'netflow9' && ++v9of12 === 3),
    );
    const wrongVni = scenarioFrames({ vni: 777, exporters: ['198.18.0.11'], protocols: ['netflow9'], datagramsPerExporter: 5, seed: 8 });
    const outsider = scenarioFrames({ exporters: ['198.18.9.9'], protocols: ['netflow5'], datagramsPerExporter: 3, seed: 9 });
    for (const f of good) expect.perExporter.set(f.info.exporter, (expect.perExporter.get(f.info.exporter) ?? 0) + 1);
    expect.forwarded = good.length;
    expect.unknownVni = wrongVni.length;
    expect.notAllowed = outsider.length;
    expect.rx = good.length + wrongVni.length + outsider.length;
    await sendFrames(P, [...good, ...wrongVni, ...outsider].map((f) => f.frame));
    await gw.waitForRx(expect.rx);
  });

  after(async () => {
    await gw?.stop();
    backend?.close();
    probeTarget?.close();
    scratch.remove();
  });

  test('the text names config, generation, traffic, drops by reason, backends, sessions and exporters with gaps', async () => {
    for (const args of [['--control', `127.0.0.1:${P + 3}`], ['-c', configPath]]) {
      const r = await runCli(['status', ...args]);
      assert.equal(r.code, 0, r.stderr);
      const out = r.stdout;
      const line = (pattern: string) => assert.match(out, new RegExp(`^${pattern}$`, 'm'), `expected a line /${pattern}/ in:\n${out}`);
      line(`mirrorgate pid ${gw.pid}, up \\d+ s, config ${re(configPath)} \\(generation 1; reloads 0 ok, 0 failed\\)`);
      line(`listen 127\\.0\\.0\\.1:${P}, 1 workers, egress raw, ready`);
      line(`  received +${expect.rx} packets \\(.+\\)`);
      line(`  forwarded +${expect.forwarded} packets`);
      line(`  dropped +${expect.unknownVni + expect.notAllowed} packets:`);
      line(`    unknown_vni +${expect.unknownVni}`);
      line(`    exporter_not_allowed +${expect.notAllowed}`);
      line('  accounting   balanced: received = forwarded \\+ dropped \\+ merged \\+ waiting');
      line('  fdi \\(hash, mtu 1500, health check tcp\\)');
      line(`    UP   ${re(UP)} +${expect.forwarded} packets.*`);
      line(`    DOWN ${re(DOWN)} +0 packets  .+`);
      // A session counts what arrived on its VNI, including what the allowlist dropped later.
      line(`  vni 123 \\(prod\\): ${expect.forwarded + expect.notAllowed} packets`);
      line('exporters \\(top 3\\):');
      line(`  198\\.18\\.0\\.12 +${expect.perExporter.get('198.18.0.12')} packets  1 gaps \\(1 lost\\)`);
      line(`  198\\.18\\.0\\.11 +${expect.perExporter.get('198.18.0.11')} packets  no gaps`);
      line(`  198\\.18\\.0\\.13 +${expect.perExporter.get('198.18.0.13')} packets  no gaps`);
    }
  });

  test('--json is the /api/status document', async () => {
    const r = await runCli(['status', '--json', '--control', `127.0.0.1:${P + 3}`]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as Status & { listen: string; egress: string };
    assert.equal(s.pid, gw.pid);
    assert.equal(s.config, configPath);
    assert.equal(s.generation, 1);
    assert.equal(s.ready, true);
    assert.equal(s.listen, `127.0.0.1:${P}`);
    assert.equal(s.accounting.rx, expect.rx);
    assert.equal(s.accounting.forwarded, expect.forwarded);
    assert.deepEqual(s.accounting.drops, { unknown_vni: expect.unknownVni, exporter_not_allowed: expect.notAllowed });
    assert.equal(s.accounting.balanced, true);
    assert.deepEqual(
      s.destinations.map((d) => ({ name: d.name, backends: d.backends.map((b) => [b.backend, b.up, b.packets]) })),
      [{ name: 'fdi', backends: [[UP, true, expect.forwarded], [DOWN, false, 0]] }],
    );
    assert.deepEqual(s.sessions.map((x) => [x.vni, x.name, x.packets]), [[123, 'prod', expect.forwarded + expect.notAllowed]]);
    assert.deepEqual(
      Object.fromEntries(s.exporters.rows.map((e) => [e.exporter, [e.packets, e.gaps, e.lost]])),
      Object.fromEntries([...expect.perExporter].map(([e, n]) => [e, [n, e === '198.18.0.12' ? 1 : 0, e === '198.18.0.12' ? 1 : 0]])),
    );
    assert.equal(backend.received.length, expect.forwarded, 'everything went to the backend that is up');
  });

  test('status against no gateway exits 1 with a one-line explanation', async () => {
    const r = await runCli(['status', '--control', `127.0.0.1:${P + 9}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`no gateway answers at 127\\.0\\.0\\.1:${P + 9}`));
    assert.doesNotMatch(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace');
  });
});
