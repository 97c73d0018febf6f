/**
 * /metrics of a live gateway, parsed with a Prometheus text-format parser, against traffic whose
 * every number is known: N mirrored datagrams from a few exporters over two sessions, some with a
 * VNI no session lists (they must drop as unknown_vni), two backends that count what they get.
 * Then one good and one bad hot reload, and the exporter label bound (control.topExporters).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  Backend,
  gatewayConfig,
  type GatewaySetup,
  INNER_HEADERS,
  OUTER_HEADERS,
  PORTS,
  scenarioFrames,
  scratchDir,
  sendFrames,
  skipObserve,
  TestGateway,
  writeConfig,
} from './helpers.js';

const P = PORTS.metrics;

describe('observe: /metrics on a live gateway', { skip: skipObserve, timeout: 60_000 }, () => {
  test('counters, labels and gauges match the traffic sent; reloads are counted by result', async () => {
    const scratch = scratchDir('metrics');
    const backends = [await Backend.bind(P + 1), await Backend.bind(P + 2)];
    const setup: GatewaySetup = {
      listenPort: P,
      controlPort: P + 3,
      backendPorts: [P + 1, P + 2],
      sessions: [
        { vni: 123, name: 'prod' },
        { vni: 124, name: 'staging' },
      ],
      workers: 2,
    };
    const configPath = join(scratch.dir, 'gateway.yaml');
    let gw: TestGateway | undefined;
    try {
      gw = await TestGateway.start(configPath, setup);

      // Known traffic: 4 exporters x 4 protocols x 5 datagrams on VNI 123, 1 exporter x 4 x 3 on
      // VNI 124, and 7 datagrams on VNI 999 that no session lists.
      const prod = scenarioFrames({ vni: 123, exporters: ['198.18.0.11', '198.18.0.12', '198.18.0.13', '198.18.0.14'], datagramsPerExporter: 5, seed: 1 });
      const staging = scenarioFrames({ vni: 124, exporters: ['198.18.0.21'], datagramsPerExporter: 3, seed: 2 });
      const stray = scenarioFrames({ vni: 999, exporters: ['198.18.0.31'], datagramsPerExporter: 3, seed: 3 }, 7);
      assert.equal(prod.length, 80);
      assert.equal(staging.length, 12);
      assert.equal(stray.length, 7);
      const all = [...prod, ...staging, ...stray];
      // Interleave so drops and forwards share batches.
      all.sort((a, b) => a.timestampNs - b.timestampNs);
      const N = all.length;
      const forwarded = prod.length + staging.length;
      await sendFrames(P, all.map((f) => f.frame), 8); // 8 source sockets: flows spread over both workers
      await gw.waitForRx(N);

      const res = await gw.request('GET', '/metrics');
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      await res.arrayBuffer();
      const m = await gw.metrics();
      for (const f of m.families.values()) {
        assert.ok(f.name.startsWith('mirrorgate_'), `${f.name}: every family carries the prefix`);
        assert.ok(f.help.length > 0, `${f.name}: HELP text`);
        assert.notEqual(f.type, 'UNTYPED', `${f.name}: TYPE line`);
      }
      assert.equal(m.family('mirrorgate_rx_packets_total').type, 'COUNTER');
      assert.equal(m.value('mirrorgate_rx_packets_total'), N);
      assert.equal(m.value('mirrorgate_rx_bytes_total'), all.reduce((s, f) => s + f.frame.length - OUTER_HEADERS, 0), 'rx bytes = VXLAN header + inner frame');
      assert.equal(m.value('mirrorgate_forwarded_packets_total'), forwarded);
      assert.equal(m.value('mirrorgate_tx_packets_total'), forwarded, 'no fragments or copies in this traffic');
      assert.equal(m.value('mirrorgate_tx_errors_total'), 0);
      assert.equal(m.value('mirrorgate_drops_total', { reason: 'unknown_vni' }), stray.length);
      assert.equal(m.sum('mirrorgate_drops_total'), stray.length, 'no drop but unknown_vni');
      assert.equal(m.value('mirrorgate_node_packets_total', { node: 'tunnel-input' }), N);
      assert.equal(m.value('mirrorgate_node_packets_total', { node: 'vxlan-decap' }), N, 'every packet is decapsulated (and the stray ones dropped there)');
      assert.equal(m.value('mirrorgate_node_packets_total', { node: 'inner-ethernet' }), forwarded);
      assert.equal(m.value('mirrorgate_node_packets_total', { node: 'tx' }), forwarded);
      assert.equal(m.find('mirrorgate_node_packets_total', { node: 'geneve-decap' }), undefined, 'idle nodes are not exported');
      assert.ok(m.value('mirrorgate_node_batches_total', { node: 'vxlan-decap' }) >= 1);
      assert.ok(m.value('mirrorgate_node_seconds_total', { node: 'vxlan-decap' }) > 0);

      // Backends: the gateway's count per backend is what each test socket received, and the
      // exporter's source address survived (raw egress).
      const perBackend = m.samples('mirrorgate_backend_tx_packets_total');
      assert.deepEqual(
        perBackend.map((s) => s.labels).sort((a, b) => a.backend.localeCompare(b.backend)),
        [
          { destination: 'fdi', backend: `127.0.0.1:${P + 1}` },
          { destination: 'fdi', backend: `127.0.0.1:${P + 2}` },
        ],
      );
      for (const b of backends) {
        assert.equal(m.value('mirrorgate_backend_tx_packets_total', { destination: 'fdi', backend: `127.0.0.1:${b.port}` }), b.received.length, `backend ${b.port}`);
        assert.ok(b.received.every((r) => r.address.startsWith('198.18.0.')), 'source kept');
      }
      assert.equal(m.sum('mirrorgate_backend_tx_packets_total'), forwarded);
      assert.ok(backends.every((b) => b.received.length > 0), 'hash balancing spreads 5 exporters over both backends');
      for (const b of backends) assert.equal(m.value('mirrorgate_backend_up', { destination: 'fdi', backend: `127.0.0.1:${b.port}` }), 1);
      assert.equal(m.family('mirrorgate_backend_up').type, 'GAUGE');

      // Exporters: 20 datagrams each on VNI 123, 12 from the staging one; the stray exporter's
      // packets dropped before the flow monitor, so it has no series.
      const exporters = Object.fromEntries(m.samples('mirrorgate_exporter_packets_total').map((s) => [s.labels.exporter, s.value]));
      assert.deepEqual(exporters, { '198.18.0.11': 20, '198.18.0.12': 20, '198.18.0.13': 20, '198.18.0.14': 20, '198.18.0.21': 12 });
      for (const e of Object.keys(exporters)) {
        const bytes = [...prod, ...staging].filter((f) => f.info.exporter === e).reduce((s, f) => s + f.frame.length - INNER_HEADERS, 0);
        assert.equal(m.value('mirrorgate_exporter_bytes_total', { exporter: e }), bytes, `payload bytes of ${e}`);
        assert.equal(m.value('mirrorgate_exporter_sequence_gaps_total', { exporter: e }), 0, `${e}: generator sequences are gapless`);
        assert.equal(m.value('mirrorgate_exporter_sequence_lost_total', { exporter: e }), 0);
        assert.equal(m.value('mirrorgate_exporter_malformed_total', { exporter: e }), 0);
      }

      // Sessions: per VNI, only the sessions the config lists.
      const sessions = Object.fromEntries(m.samples('mirrorgate_session_packets_total').map((s) => [s.labels.vni, s.value]));
      assert.deepEqual(sessions, { '123': prod.length, '124': staging.length });

      assert.equal(m.value('mirrorgate_workers'), 2);
      assert.equal(m.value('mirrorgate_config_generation'), 1);
      assert.equal(m.value('mirrorgate_config_reloads_total', { result: 'success' }), 0);
      assert.equal(m.value('mirrorgate_config_reloads_total', { result: 'failure' }), 0);
      const rss = m.value('mirrorgate_process_resident_memory_bytes');
      assert.ok(rss > 10e6 && rss < 4e9, `resident memory ${rss}`);
      assert.ok(m.value('mirrorgate_process_cpu_seconds_total') > 0);
      assert.ok(m.value('mirrorgate_process_open_fds') > 0);

      // A good reload (the MTU changes) and a bad one (an MTU below the minimum).
      writeConfig(configPath, gatewayConfig({ ...setup, destination: { mtu: 1400 } }));
      const good = await gw.request('POST', '/api/reload');
      assert.equal(good.status, 200);
      assert.deepEqual(await good.json(), { ok: true, generation: 2 });
      writeConfig(configPath, gatewayConfig({ ...setup, destination: { mtu: 100 } }));
      const bad = await gw.request('POST', '/api/reload');
      assert.equal(bad.status, 422);
      const badBody = (await bad.json()) as { ok: boolean; problems: string[] };
      assert.equal(badBody.ok, false);
      assert.ok(badBody.problems.some((p) => p.startsWith('destinations.fdi.mtu:')), badBody.problems.join('\n'));

      // The running configuration (generation 2) keeps forwarding.
      const more = scenarioFrames({ vni: 123, exporters: ['198.18.0.11'], datagramsPerExporter: 2, seed: 4, protocols: ['netflow5'] });
      await sendFrames(P, more.map((f) => f.frame));
      await gw.waitForRx(N + more.length);
      const m2 = await gw.metrics();
      assert.equal(m2.value('mirrorgate_config_reloads_total', { result: 'success' }), 1);
      assert.equal(m2.value('mirrorgate_config_reloads_total', { result: 'failure' }), 1);
      assert.equal(m2.value('mirrorgate_config_generation'), 2);
      assert.equal(m2.value('mirrorgate_rx_packets_total'), N + more.length);
      assert.equal(m2.value('mirrorgate_forwarded_packets_total'), forwarded + more.length);
      const status = await gw.status();
      assert.equal(status.generation, 2);
      assert.deepEqual(status.reloads, { success: 1, failure: 1 });
      assert.ok(status.lastReloadProblems.some((p) => p.startsWith('destinations.fdi.mtu:')));
    } finally {
      if (gw) await gw.stop();
      for (const b of backends) b.close();
      scratch.remove();
    }
  });

  test('exporter labels are bounded by control.topExporters: the top 3 plus "other", summing to the total', async () => {
    const scratch = scratchDir('metrics-top');
    const backend = await Backend.bind(P + 6);
    let gw: TestGateway | undefined;
    try {
      gw = await TestGateway.start(join(scratch.dir, 'gateway.yaml'), { listenPort: P + 5, controlPort: P + 7, backendPorts: [P + 6], topExporters: 3 });
      // 10 exporters; exporter k sends k+2 NetFlow v9 datagrams (2..11), so the top 3 are .10, .9, .8.
      const exporters = Array.from({ length: 10 }, (_, k) => `198.18.0.${k + 1}`);
      const seen = new Map<string, number>();
      const frames = scenarioFrames({ exporters, protocols: ['netflow9'], datagramsPerExporter: 11, seed: 5 }).filter((f) => {
        const k = Number(f.info.exporter.split('.')[3]) - 1;
        const n = (seen.get(f.info.exporter) ?? 0) + 1;
        seen.set(f.info.exporter, n);
        return n <= k + 2;
      });
      const total = exporters.reduce((s, _, k) => s + k + 2, 0);
      assert.equal(frames.length, total);
      await sendFrames(P + 5, frames.map((f) => f.frame));
      await gw.waitForRx(total);

      const m = await gw.metrics();
      const rows = Object.fromEntries(m.samples('mirrorgate_exporter_packets_total').map((s) => [s.labels.exporter, s.value]));
      assert.deepEqual(rows, { '198.18.0.10': 11, '198.18.0.9': 10, '198.18.0.8': 9, other: total - 30 });
      assert.equal(m.sum('mirrorgate_exporter_packets_total'), total);
      assert.equal(m.value('mirrorgate_rx_packets_total'), total);
      for (const name of ['mirrorgate_exporter_bytes_total', 'mirrorgate_exporter_sequence_gaps_total', 'mirrorgate_exporter_sequence_lost_total', 'mirrorgate_exporter_malformed_total']) {
        assert.deepEqual(m.labelValues(name, 'exporter').sort(), ['198.18.0.10', '198.18.0.8', '198.18.0.9', 'other'], name);
      }
      // /api/status lists the top 10 regardless of the metrics bound.
      assert.equal((await gw.status()).exporters.rows.length, 10);
      assert.equal(backend.received.length, total);
    } finally {
      if (gw) await gw.stop();
      backend.close();
      scratch.remove();
    }
  });
});
