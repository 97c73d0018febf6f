/**
 * The control API's exposure rules: a non-loopback listen address needs a token (refused by
 * `check` and by `run`), and with a token every route but the probes wants the bearer header.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Backend, gatewayConfig, PORTS, runCli, scratchDir, skipObserve, type Status, TestGateway, writeConfig } from './helpers.js';

const P = PORTS.auth;
const TOKEN = 'observe-test-token-0123456789';
const STACK = /^\s+at .+:\d+:\d+\)?$/m;

describe('observe: control API exposure and token', { skip: skipObserve, timeout: 60_000 }, () => {
  const scratch = scratchDir('auth');
  const setup = { listenPort: P, controlPort: P + 2, backendPorts: [P + 1] };

  test('check refuses a non-loopback control.listen without a token, naming the field', async () => {
    for (const host of ['0.0.0.0', '192.0.2.10', '[::]']) {
      const path = join(scratch.dir, 'open.yaml');
      const config = gatewayConfig(setup) as { control: Record<string, unknown> };
      config.control.listen = `${host}:${P + 2}`;
      writeConfig(path, config);
      const r = await runCli(['check', '-c', path]);
      assert.equal(r.code, 1, `${host}: ${r.stdout}${r.stderr}`);
      const shown = host.replace(/^\[|\]$/g, '');
      assert.equal(r.stderr, `control.listen: expected a loopback address unless control.token is set, got "${shown}"\n`);
      assert.equal(r.stdout, '');

      // `run` refuses the same file before opening anything.
      const run = await runCli(['run', '-c', path], { timeoutMs: 10_000 });
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /control\.listen: expected a loopback address unless control\.token is set/);
      assert.doesNotMatch(run.stderr, STACK);

      // With a token the same address is accepted.
      config.control.token = TOKEN;
      writeConfig(path, config);
      const ok = await runCli(['check', '-c', path]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /: valid \(/);
    }
    for (const host of ['127.0.0.1', '127.0.0.2', '[::1]']) {
      const path = join(scratch.dir, 'loopback.yaml');
      const config = gatewayConfig(setup) as { control: Record<string, unknown> };
      config.control.listen = `${host}:${P + 2}`;
      writeConfig(path, config);
      const r = await runCli(['check', '-c', path]);
      assert.equal(r.code, 0, `${host}: ${r.stderr}`);
    }
  });

  describe('a gateway with control.token on 127.0.0.1', () => {
    const configPath = join(scratch.dir, 'gateway.yaml');
    let backend: Backend;
    let gw: TestGateway;

    before(async () => {
      backend = await Backend.bind(P + 1);
      gw = await TestGateway.start(configPath, { ...setup, token: TOKEN });
    });

    after(async () => {
      await gw?.stop();
      backend?.close();
      scratch.remove();
    });

    const call = (method: string, path: string, authorization?: string) =>
      fetch(`http://127.0.0.1:${P + 2}${path}`, { method, headers: authorization === undefined ? {} : { authorization } });

    test('probes answer without the token', async () => {
      const h = await call('GET', '/healthz');
      assert.equal(h.status, 200);
      assert.equal(await h.text(), 'ok\n');
      const r = await call('GET', '/readyz');
      assert.equal(r.status, 200);
      assert.equal(await r.text(), 'ready\n');
    });

    test('every other route is 401 without the bearer token or with a wrong one, 200 with it', async () => {
      const routes: [string, string][] = [
        ['GET', '/metrics'],
        ['GET', '/api/status'],
        ['GET', '/api/counters'],
        ['POST', '/api/trace?count=1&waitMs=10'],
        ['POST', '/api/reload'],
        ['GET', '/no/such/route'],
      ];
      for (const [method, path] of routes) {
        for (const bad of [undefined, `Bearer ${TOKEN.slice(0, -1)}x`, `Bearer ${TOKEN}x`, TOKEN, `bearer ${TOKEN}`, '']) {
          const r = await call(method, path, bad);
          assert.equal(r.status, 401, `${method} ${path} with ${JSON.stringify(bad)}`);
          assert.deepEqual(await r.json(), { error: 'missing or wrong bearer token' });
        }
      }
      const status = (await gw.status()) as Status;
      assert.deepEqual(status.reloads, { success: 0, failure: 0 }, 'a refused POST /api/reload did not reload');

      for (const [method, path] of routes) {
        const r = await call(method, path, `Bearer ${TOKEN}`);
        assert.equal(r.status, path === '/no/such/route' ? 404 : 200, `${method} ${path}`);
        await r.arrayBuffer();
      }
      const metrics = await (await call('GET', '/metrics', `Bearer ${TOKEN}`)).text();
      assert.match(metrics, /^mirrorgate_rx_packets_total 0$/m);
    });

    test('the CLI takes the token from -c or MIRRORGATE_TOKEN, and says so without it', async () => {
      const control = `127.0.0.1:${P + 2}`;
      const without = await runCli(['status', '--control', control], { env: { MIRRORGATE_TOKEN: '' } });
      assert.equal(without.code, 1);
      assert.equal(without.stderr.trim(), `mirrorgate: ${control}: token required or wrong (set control.token in -c FILE or MIRRORGATE_TOKEN)`);
      const fromConfig = await runCli(['status', '--json', '-c', configPath]);
      assert.equal(fromConfig.code, 0, fromConfig.stderr);
      assert.equal((JSON.parse(fromConfig.stdout) as Status).pid, gw.pid);
      const fromEnv = await runCli(['runtime', '--control', control], { env: { MIRRORGATE_TOKEN: TOKEN } });
      assert.equal(fromEnv.code, 0, fromEnv.stderr);
      assert.match(fromEnv.stdout, /^vxlan-decap /m);
    });
  });
});
