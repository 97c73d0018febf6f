/**
 * The shipped deployment files: valid JSON/YAML, a config that validates, and dashboards and
 * alerts that name only metrics the gateway really exports (a renamed metric must not leave a
 * dashboard silently empty).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { createMetrics } from '../../src/control/metrics.js';
import { validateConfig } from '../../src/control/config.js';
import type { Gateway } from '../../src/gateway/gateway.js';

const root = join(import.meta.dirname, '..', '..', '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

/** A gateway with one of everything, enough for every collector to produce its series. */
function stubGateway(): Gateway {
  const config = validateConfig(YAML.parse(read('examples/demo.yaml')));
  assert.ok('config' in config);
  return {
    config: config.config,
    generation: 1,
    workerCount: 1,
    reloads: { success: 0, failure: 0 },
    counters: () => ({ rx_packets: 1, 'drop.no_rule': 1, 'node.tx.packets': 1, 'node.tx.batches': 1, 'node.tx.ns': 1 }),
    exporters: () => ({ rows: [{ exporter: '198.18.0.11', packets: 1, bytes: 1, gaps: 0, lost: 0, malformed: 0, resets: 0, lastSeenMs: 0 }], untracked: 0 }),
    sessions: () => [{ vni: 123, name: 'prod', packets: 1, bytes: 1 }],
    backendPackets: () => [{ destination: 'netflow', backend: '203.0.113.10:2055', packets: 1 }],
    backendHealth: () => [{ destination: 'netflow', backend: '203.0.113.10:2055', up: true, since: 0, detail: '' }],
  } as unknown as Gateway;
}

async function exportedNames(): Promise<Set<string>> {
  const registry = createMetrics(stubGateway());
  const metrics = await registry.getMetricsAsJSON();
  return new Set(metrics.map((m) => m.name));
}

function referenced(text: string): string[] {
  return [...new Set(text.match(/mirrorgate_[a-z0-9_]+/g) ?? [])];
}

test('the Grafana dashboard is valid JSON and names only exported metrics', async () => {
  const dash = JSON.parse(read('deploy/grafana/mirrorgate-dashboard.json')) as { panels: { targets: { expr: string }[] }[] };
  const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
  const names = await exportedNames();
  const used = referenced(exprs + JSON.stringify((dash as { templating?: unknown }).templating));
  assert.ok(used.length >= 10, `dashboard uses ${used.length} metrics`);
  for (const m of used) assert.ok(names.has(m), `dashboard names ${m}, which the gateway does not export`);
});

test('the alert rules are valid YAML, cover the required alerts and name only exported metrics', async () => {
  const doc = YAML.parse(read('deploy/prometheus/alerts.yaml')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  const rules = doc.groups.flatMap((g) => g.rules);
  const alerts = rules.map((r) => r.alert);
  for (const a of ['MirrorgateDown', 'MirrorgateDropsRising', 'MirrorgateBackendDown', 'MirrorgateExporterSequenceGaps', 'MirrorgateReloadFailed']) {
    assert.ok(alerts.includes(a), `missing alert ${a}`);
  }
  const names = await exportedNames();
  for (const m of referenced(rules.map((r) => r.expr).join('\n'))) assert.ok(names.has(m), `alert names ${m}, which the gateway does not export`);
});

test('the Kubernetes manifest parses and its embedded config validates', () => {
  const docs = YAML.parseAllDocuments(read('deploy/kubernetes/mirrorgate.yaml')).map((d) => d.toJS() as { kind: string; data?: Record<string, string> });
  assert.deepEqual(docs.map((d) => d.kind), ['Namespace', 'ConfigMap', 'DaemonSet']);
  const r = validateConfig(YAML.parse(docs[1].data!['mirrorgate.yaml']));
  assert.ok('config' in r, 'problems' in r ? r.problems.join('\n') : '');
});

test('the systemd unit runs, reloads and stops the gateway the documented way', () => {
  const unit = read('deploy/systemd/mirrorgate.service');
  assert.match(unit, /^ExecStart=.*mirrorgate run -c /m);
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  assert.match(unit, /^AmbientCapabilities=CAP_NET_RAW$/m);
});
