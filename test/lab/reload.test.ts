/**
 * Hot reload under steady mirrored traffic: a good config (SIGHUP) and a bad one (POST
 * /api/reload) while datagrams flow. Every datagram sent must reach the collector; the good
 * reload raises the generation, the bad one is refused with its problems and changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TelemetryPort } from '../../src/lab/plan.js';
import { LabProcess, until } from '../../src/lab/process.js';
import { reapStaleTestLabs, requireTools, skipLab, sleep, testLab } from './helpers.js';

const RATE = 2000;
const SECONDS = 6;
const TAG = 0x5eed;

describe('lab: reload under traffic', { skip: skipLab, timeout: 90_000 }, () => {
  const lab = testLab('reload');
  let gateway: LabProcess;

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool');
    await reapStaleTestLabs();
    await lab.up();
    gateway = await lab.startGateway();
  });

  after(async () => {
    await lab.down();
  });

  test('a good reload (SIGHUP) and a bad one (API) lose nothing', async () => {
    const counter = lab.spawnAgent('collector0', ['count', '--bind', lab.collectorEndpoint(0, TelemetryPort.NETFLOW), '--tag', String(TAG)]);
    await counter.waitForLine(/"event":"ready"/, { stream: 'stdout' });
    const gen0 = (await lab.status()).generation;

    const sender = lab.spawnAgent('exporter', [
      'send', '--from', lab.exporters.join(','), '--to', `${lab.monitored}:${TelemetryPort.NETFLOW}`,
      '--rate', String(RATE), '--seconds', String(SECONDS), '--tag', String(TAG),
    ]);
    await sleep(1500);

    // A good change mid-stream: a smaller MTU (the 1492-byte datagrams are now fragmented) and a new rule.
    const good = lab.gatewayConfig();
    good.destinations.netflow.mtu = 1400;
    good.rules.push({ name: 'syslog', match: { protocol: 'udp', dstPort: 514 }, destination: 'sflow' });
    lab.writeGatewayConfig(good);
    gateway.signal('SIGHUP');
    const s1 = await until('the SIGHUP reload', async () => {
      const s = await lab.status();
      return s.generation > gen0 ? s : undefined;
    }, 10_000);
    assert.equal(s1.generation, gen0 + 1);
    assert.equal(s1.destinations.find((d) => d.name === 'netflow')?.mtu, 1400);
    await sleep(1500);

    // A bad one: a rule pointing at no destination. Refused whole; the running tables stay.
    const bad = lab.gatewayConfig();
    bad.rules.push({ name: 'broken', match: { dstPort: 9 }, destination: 'nowhere' });
    lab.writeGatewayConfig(bad, { validate: false });
    const answer = await lab.control('POST', '/api/reload');
    assert.equal(answer.status, 422, JSON.stringify(answer));
    const body = answer.body as { ok: boolean; problems: string[] };
    assert.equal(body.ok, false);
    assert.ok(body.problems.some((p) => /rules\[\d+\]\.destination/.test(p) && p.includes('nowhere')), body.problems.join('\n'));
    const s2 = await lab.status();
    assert.equal(s2.generation, s1.generation, 'generation unchanged by a rejected reload');
    assert.equal(s2.reloads.failure, 1);

    const done = await sender.wait((SECONDS + 15) * 1000);
    assert.equal(done.code, 0, sender.stderr);
    const sent = JSON.parse(sender.stdout.trim().split('\n').at(-1)!) as { sent: number; target: number };
    assert.equal(sent.sent, RATE * SECONDS, 'the exporter sent everything');
    await sleep(1000);
    await counter.stop();
    const final = JSON.parse(counter.stdout.split('\n').find((l) => l.includes('"final"'))!) as { tagged: number; duplicates: number; bySource: Record<string, number> };
    assert.equal(final.tagged, sent.sent, `every datagram arrived (${final.tagged} of ${sent.sent})`);
    assert.equal(final.duplicates, 0);
    assert.deepEqual(Object.keys(final.bySource).sort(), [...lab.exporters].sort(), 'from each exporter address');

    const s3 = await lab.status();
    assert.equal(s3.accounting.balanced, true);
    assert.ok(s3.accounting.tx > s3.accounting.forwarded, 'after the reload, datagrams were fragmented to the new MTU');
  });
});
