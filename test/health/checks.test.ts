import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { probe, probeHttp, probeTcp } from '../../src/health/checks.js';
import { HealthCheckSchema } from '../../src/health/config.js';
import { closedPort, hangingHttpServer, httpServer, tcpServer } from './helpers.js';

const ok200 = { path: '/healthz', expect: [[200, 200]] as const };

test('tcp: a listening server is up (IPv4 and IPv6)', async () => {
  for (const host of ['127.0.0.1', '::1']) {
    const s = await tcpServer(host);
    try {
      const r = await probeTcp(host, s.port, 500);
      assert.equal(r.ok, true, host);
      assert.equal(r.detail, 'connected');
      assert.ok(r.latencyMs >= 0 && r.latencyMs < 500);
    } finally {
      await s.close();
    }
  }
});

test('tcp: a closed port is down with ECONNREFUSED', async () => {
  const port = await closedPort();
  const r = await probeTcp('127.0.0.1', port, 500);
  assert.deepEqual([r.ok, r.detail], [false, 'ECONNREFUSED']);
});

test('tcp: the probe closes its connection', async () => {
  const server = createServer((sock) => sock.resume().on('close', () => closed++));
  let closed = 0;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await probeTcp('127.0.0.1', (server.address() as AddressInfo).port, 500);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(closed, 1);
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('tcp: an abort settles at once as "aborted"', async () => {
  const s = await tcpServer();
  const ac = new AbortController();
  ac.abort();
  const r = await probeTcp('127.0.0.1', s.port, 500, ac.signal);
  assert.deepEqual([r.ok, r.detail], [false, 'aborted']);
  await s.close();
});

test('http: 200 is up, over IPv4 and IPv6, and the path is requested', async () => {
  for (const host of ['127.0.0.1', '::1']) {
    const paths: string[] = [];
    const s = await httpServer((req, res) => {
      paths.push(req.url ?? '');
      res.end('ok');
    }, host);
    try {
      const r = await probeHttp(host, s.port, { path: '/ready?deep=1', expect: [[200, 200]] }, 500);
      assert.deepEqual([r.ok, r.detail], [true, 'HTTP 200'], host);
      assert.deepEqual(paths, ['/ready?deep=1']);
    } finally {
      await s.close();
    }
  }
});

test('http: 503 is down and says what was expected', async () => {
  const s = await httpServer((_req, res) => {
    res.statusCode = 503;
    res.end('starting');
  });
  try {
    const r = await probeHttp('127.0.0.1', s.port, ok200, 500);
    assert.deepEqual([r.ok, r.detail], [false, 'HTTP 503 (expected 200)']);
  } finally {
    await s.close();
  }
});

test('http: range expectations', async () => {
  let status = 200;
  const s = await httpServer((_req, res) => {
    res.statusCode = status;
    res.end();
  });
  try {
    const expect = HealthCheckSchema.parse({ check: 'http', expect: ['200-299', 301] }).expect;
    const verdicts: Record<number, boolean> = {};
    for (status of [200, 204, 299, 301, 302, 404, 500]) verdicts[status] = (await probeHttp('127.0.0.1', s.port, { path: '/', expect }, 500)).ok;
    assert.deepEqual(verdicts, { 200: true, 204: true, 299: true, 301: true, 302: false, 404: false, 500: false });
  } finally {
    await s.close();
  }
});

test('http: a server that never answers is down after the timeout', async () => {
  const s = await hangingHttpServer();
  try {
    const start = performance.now();
    const r = await probeHttp('127.0.0.1', s.port, ok200, 80);
    const took = performance.now() - start;
    assert.deepEqual([r.ok, r.detail], [false, 'timeout after 80 ms']);
    assert.ok(took >= 75 && took < 300, `took ${took} ms`);
  } finally {
    await s.close();
  }
});

test('http: a closed port is down with ECONNREFUSED', async () => {
  const port = await closedPort();
  const r = await probeHttp('127.0.0.1', port, ok200, 500);
  assert.deepEqual([r.ok, r.detail], [false, 'ECONNREFUSED']);
});

test('http: a peer that is not HTTP is down', async () => {
  const server = createServer((sock) => sock.resume().end('SSH-2.0-nope\r\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const r = await probeHttp('127.0.0.1', port, ok200, 500);
  assert.equal(r.ok, false);
  assert.match(r.detail, /^HPE_|ECONNRESET|Parse Error/);
  await new Promise((r) => server.close(r));
});

test('http: aborting an in-flight probe settles it as "aborted" and frees the connection', async () => {
  const s = await hangingHttpServer();
  try {
    const ac = new AbortController();
    const pending = probeHttp('127.0.0.1', s.port, ok200, 5000, ac.signal);
    setTimeout(() => ac.abort(), 30);
    const r = await pending;
    assert.deepEqual([r.ok, r.detail], [false, 'aborted']);
    assert.ok(r.latencyMs < 1000);
  } finally {
    await s.close();
  }
});

test('probe(): dispatches on the check kind and honours check.port', async () => {
  const web = await httpServer((_req, res) => {
    res.statusCode = 204;
    res.end();
  });
  const dead = await closedPort();
  try {
    const http = HealthCheckSchema.parse({ check: 'http', port: web.port, expect: 204, interval: 1000, timeout: 500 });
    assert.equal((await probe('127.0.0.1', dead, http)).detail, 'HTTP 204', 'check.port overrides the backend port');
    const tcp = HealthCheckSchema.parse({ check: 'tcp', timeout: 500 });
    assert.equal((await probe('127.0.0.1', web.port, tcp)).ok, true);
    assert.equal((await probe('127.0.0.1', dead, tcp)).detail, 'ECONNREFUSED');
    const none = HealthCheckSchema.parse({});
    assert.deepEqual(await probe('127.0.0.1', dead, none), { ok: true, detail: 'no health check', latencyMs: 0 });
  } finally {
    await web.close();
  }
});
