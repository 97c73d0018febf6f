/**
 * `mirrorgate monitor` with stdout not a terminal: one plain line per refresh, with rates taken
 * from the live gateway while the test sends traffic, and a status judged against --max-drop-pct.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Backend, PORTS, runCli, scenarioFrames, scratchDir, skipObserve, sleep, startTraffic, TestGateway, startGatewayWithBackend, stopGatewayWithBackend } from './helpers.js';

const P = PORTS.monitor;
const CONTROL = `127.0.0.1:${P + 2}`;

interface Line {
  raw: string;
  fields: Record<string, string>;
}

/** Splits "2024-...Z rx_pps=1,234 ... status=OK fdi/127.0.0.1:1=5" into its key=value fields. */
function parseLines(stdout: string): Line[] {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((raw) => ({ raw, fields: Object.fromEntries(raw.split(' ').slice(1).map((kv) => [kv.slice(0, kv.lastIndexOf('=')), kv.slice(kv.lastIndexOf('=') + 1)])) }));
}

const num = (v: string | undefined) => Number((v ?? 'NaN').replace(/[,%]/g, ''));

describe('observe: mirrorgate monitor (plain lines)', { skip: skipObserve, timeout: 60_000 }, () => {
  const scratch = scratchDir('monitor');
  let backend: Backend;
  let gw: TestGateway;
  const good = scenarioFrames({ exporters: ['198.18.0.11', '198.18.0.12'], datagramsPerExporter: 10, seed: 11 }).map((f) => f.frame);
  const wrongVni = scenarioFrames({ vni: 4242, exporters: ['198.18.0.11', '198.18.0.12'], datagramsPerExporter: 10, seed: 12 }).map((f) => f.frame);

  before(async () => ({ backend, gw } = await startGatewayWithBackend(scratch, P)));
  after(() => stopGatewayWithBackend(gw, backend, scratch));

  test('3 refreshes print 3 plain lines with rx_pps > 0 and status=OK while clean traffic flows', async () => {
    const traffic = startTraffic(P, good, 400);
    try {
      await sleep(200);
      const r = await runCli(['monitor', '--control', CONTROL, '--count', '3', '--interval', '300']);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /\x1b\[/, 'no terminal escapes when stdout is not a TTY');
      const lines = parseLines(r.stdout);
      assert.equal(lines.length, 3, r.stdout);
      for (const l of lines) {
        assert.match(l.raw, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z rx_pps=/, l.raw);
        assert.ok(num(l.fields.rx_pps) > 0, l.raw);
        assert.ok(num(l.fields.vxlan_pps) > 0, l.raw);
        assert.ok(num(l.fields.fwd_pps) > 0, l.raw);
        assert.equal(l.fields.drop_pps, '0', l.raw);
        assert.equal(l.fields.err_pps, '0', l.raw);
        assert.equal(l.fields.nat_hit, '100.0%', l.raw);
        assert.equal(l.fields.status, 'OK', l.raw);
        assert.ok(num(l.fields[`fdi/127.0.0.1:${P + 1}`]) > 0, `backend rate in ${l.raw}`);
        // ~400 pps sent: the measured rate is of that order (timers are coarse; allow a wide band).
        assert.ok(num(l.fields.rx_pps) > 100 && num(l.fields.rx_pps) < 2000, l.raw);
      }
      console.log(`monitor, clean traffic:\n${r.stdout}`);
    } finally {
      await traffic.stop();
    }
  });

  test('mostly wrong-VNI traffic: status=CRIT over --max-drop-pct, WARN under it', async () => {
    // 9 of 10 datagrams carry a VNI no session lists: about 90% of what arrives drops.
    const mix = wrongVni.flatMap((f, k) => (k % 9 === 8 ? [f, good[k % good.length]] : [f]));
    const traffic = startTraffic(P, mix, 400);
    try {
      await sleep(300);
      const crit = await runCli(['monitor', '--control', CONTROL, '--count', '3', '--interval', '300', '--max-drop-pct', '50']);
      assert.equal(crit.code, 0, crit.stderr);
      const lines = parseLines(crit.stdout);
      assert.equal(lines.length, 3, crit.stdout);
      for (const l of lines) {
        assert.ok(num(l.fields.rx_pps) > 0, l.raw);
        const share = (100 * num(l.fields.drop_pps)) / num(l.fields.rx_pps);
        assert.ok(share > 70, `drop share ${share.toFixed(0)}% in ${l.raw}`);
        assert.equal(l.fields.status, 'CRIT', l.raw);
      }
      console.log(`monitor, 90% wrong VNI, --max-drop-pct 50:\n${crit.stdout}`);

      const warn = await runCli(['monitor', '--control', CONTROL, '--count', '2', '--interval', '300', '--max-drop-pct', '99']);
      assert.equal(warn.code, 0, warn.stderr);
      const wl = parseLines(warn.stdout);
      assert.equal(wl.length, 2, warn.stdout);
      for (const l of wl) assert.equal(l.fields.status, 'WARN', l.raw);
    } finally {
      await traffic.stop();
    }
    const c = await gw.counters();
    assert.ok(c['drop.unknown_vni'] > 0);
  });
});
