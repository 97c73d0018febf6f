/**
 * The gateway's process contract, in its own namespace: SIGTERM drains and exits 0 with balanced
 * accounting in its last log line; a second `run` on the same port is refused naming the first
 * one's pid; without CAP_NET_RAW, raw egress is refused with a message that says so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLI_PATH } from '../../src/lab/lab.js';
import { TelemetryPort } from '../../src/lab/plan.js';
import { reapStaleTestLabs, requireTools, skipLab, testLab } from './helpers.js';

/** A stack trace line ("    at foo (file.js:1:2)"). */
const STACK = /^\s+at .+:\d+:\d+\)?$/m;

describe('lab: gateway lifecycle', { skip: skipLab, timeout: 90_000 }, () => {
  const lab = testLab('life');

  before(async () => {
    requireTools('ip', 'tc', 'ss', 'ethtool', 'setpriv');
    await reapStaleTestLabs();
    await lab.up();
  });

  after(async () => {
    await lab.down();
  });

  test('SIGTERM drains and exits 0; the last log line reports balanced accounting', async () => {
    const gw = await lab.startGateway();
    await lab.runAgent('exporter', ['send', '--from', lab.exporter, '--to', `${lab.monitored}:${TelemetryPort.NETFLOW}`, '--rate', '1000', '--seconds', '1']);
    const exit = await lab.stopGateway();
    assert.deepEqual(exit, { code: 0, signal: null }, gw.stderr);
    const last = JSON.parse(gw.stderr.trim().split('\n').at(-1)!) as { msg: string; balanced: boolean; rx: number; forwarded: number };
    assert.equal(last.msg, 'gateway stopped');
    assert.equal(last.balanced, true);
    assert.ok(last.forwarded >= 1000, `forwarded ${last.forwarded}`);
  });

  test('a second run on the same port exits 1 naming the running pid', async () => {
    const first = await lab.startGateway();
    const second = await lab.cli('gateway', ['run', '-c', lab.gatewayConfigPath], { allowFailure: true, timeoutMs: 20_000 });
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, new RegExp(`already served by mirrorgate pid ${first.pid}\\b`));
    assert.doesNotMatch(second.stderr, STACK);
    assert.ok(first.running, 'the first gateway keeps running');
    const s = await lab.status();
    assert.equal(s.pid, first.pid);
    assert.deepEqual(await lab.stopGateway(), { code: 0, signal: null });
  });

  test('raw egress without root or CAP_NET_RAW is refused with a clear message', async () => {
    const r = await lab.exec(
      'gateway',
      'setpriv',
      ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=-all', process.execPath, CLI_PATH, 'run', '-c', lab.gatewayConfigPath],
      { allowFailure: true, timeoutMs: 20_000 },
    );
    assert.equal(r.code, 1, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, /raw egress needs root or CAP_NET_RAW/);
    assert.doesNotMatch(r.stderr, STACK);
  });
});
