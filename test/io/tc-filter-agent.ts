/**
 * Runs inside a namespace for tc-filter.test.ts: attaches the tc fast path to `dev` as clsact
 * filters the way successive gateways would, and prints, as one JSON line, the ids of the
 * programs `tc filter show` lists on the device's ingress after each step. The last program it
 * leaves attached, as a killed gateway would.
 *
 *   tc-filter-agent <dev>
 */
import { execFileSync } from 'node:child_process';
import { FastPathMaps } from '../../src/io/native/fast-path.js';
import { TcProgram } from '../../src/io/native/tc.js';
import { readInterface } from '../../src/io/native/xdp.js';

interface Shown {
  pref?: number;
  options?: { handle?: string; 'direct-action'?: boolean; prog?: { id: number; name: string } };
}

const dev = process.argv[2];
/** The programs on the device's ingress, as `pref/handle/name/da:id`. */
const listed = (): string[] =>
  (JSON.parse(execFileSync('tc', ['-j', 'filter', 'show', 'dev', dev, 'ingress'], { encoding: 'utf8' }) || '[]') as Shown[])
    .filter((f) => f.options?.prog)
    .map((f) => `${f.pref}/${f.options!.handle}/${f.options!.prog!.name}/${f.options!['direct-action'] ? 'da' : 'classid'}:${f.options!.prog!.id}`);

const iface = readInterface(dev);
const maps = new FastPathMaps(16, 16, 'MG_ERR_TC');
const attach = () => new TcProgram({ iface, address: '0.0.0.0', vxlanPort: 4789, fast: maps, attach: 'filter' });
const steps: Record<string, unknown> = {};
const first = attach();
steps.first = { via: first.via, listed: listed() };
const second = attach();
steps.second = listed();
steps.firstClosed = { problem: first.close(), listed: listed() };
steps.secondClosed = { problem: second.close(), listed: listed() };
const auto = new TcProgram({ iface, address: '0.0.0.0', vxlanPort: 4789, fast: maps });
steps.auto = { via: auto.via, listed: listed() };
auto.close();
attach();
steps.left = listed();
process.stdout.write(`${JSON.stringify(steps)}\n`);
