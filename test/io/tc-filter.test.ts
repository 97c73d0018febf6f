/**
 * The tc fast path as a clsact filter, the way kernels without tcx links (before Linux 6.6) take
 * it, checked with iproute2's `tc`: the filter is direct-action at mirrorgate's preference; a
 * second gateway replaces the first's; closing removes only a filter that is still the closer's;
 * one left behind by a killed process stays until the next gateway or the documented `tc filter
 * del` removes it. Where the kernel has tcx, 'auto' takes a link and adds no filter.
 * Forwarding through the filter is checked in fast-path.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { loadError, nativeAvailable } from '../../src/io/native/index.js';
import { isRoot } from './native/helpers.js';

const skip = !nativeAvailable() ? `native addon not built: ${loadError()}` : !isRoot ? 'builds a network namespace: needs root' : false;
const NS = `mgtf${process.pid}`;
/** The preference the README tells operators to delete. */
const TC_FILTER_PREF = 49152;

before(() => {
  if (skip) return;
  execFileSync('ip', ['netns', 'add', NS]);
  execFileSync('ip', ['-n', NS, 'link', 'add', 'f0', 'type', 'veth', 'peer', 'name', 'f1']);
});

after(() => {
  if (skip) return;
  try {
    execFileSync('ip', ['netns', 'del', NS]);
  } catch {
    // already gone
  }
});

test('the filter is replaced by the next gateway, removed only by its own, and outlives a killed process', { skip, timeout: 30_000 }, () => {
  const agent = fileURLToPath(new URL('./tc-filter-agent.js', import.meta.url));
  const steps = JSON.parse(execFileSync('ip', ['netns', 'exec', NS, process.execPath, agent, 'f0'], { encoding: 'utf8', timeout: 20_000 }));
  const filter = new RegExp(`^${TC_FILTER_PREF}/0x6d67/mirrorgate_tc/da:(\\d+)$`);
  const id = (listed: string[]) => {
    assert.equal(listed.length, 1, `one filter: ${JSON.stringify(listed)}`);
    return Number(filter.exec(listed[0])?.[1] ?? NaN);
  };

  assert.equal(steps.first.via, 'filter');
  const first = id(steps.first.listed);
  assert.ok(first > 0, steps.first.listed[0]);
  const second = id(steps.second);
  assert.notEqual(second, first, 'the second gateway\'s program replaced the first\'s');
  assert.deepEqual(steps.firstClosed, { problem: null, listed: steps.second }, 'closing the replaced one leaves the other alone');
  assert.deepEqual(steps.secondClosed, { problem: null, listed: [] });
  assert.deepEqual(steps.auto, { via: 'link', listed: [] }, 'this kernel has tcx: auto takes a link');

  const left = execFileSync('ip', ['netns', 'exec', NS, 'tc', 'filter', 'show', 'dev', 'f0', 'ingress'], { encoding: 'utf8' });
  assert.match(left, new RegExp(`pref ${TC_FILTER_PREF} bpf .*handle 0x6d67 mirrorgate_tc direct-action .*id ${id(steps.left)} `), 'the exited process\'s filter is still there');
  execFileSync('ip', ['netns', 'exec', NS, 'tc', 'filter', 'del', 'dev', 'f0', 'ingress', 'pref', String(TC_FILTER_PREF)]);
  assert.equal(execFileSync('ip', ['netns', 'exec', NS, 'tc', 'filter', 'show', 'dev', 'f0', 'ingress'], { encoding: 'utf8' }).trim(), '', 'the documented command removes it');
});
