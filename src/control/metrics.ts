/**
 * Prometheus metrics (prom-client), computed at scrape time from the workers' shared counters, so
 * the data path pays nothing for them.
 */
import client from 'prom-client';
import type { Gateway } from '../gateway/gateway.js';

/** Sets a series to a total read from the workers; counters only offer inc, so callers reset first. */
function put<L extends string>(m: client.Counter<L> | client.Gauge<L>, labels: Partial<Record<L, string>>, value: number): void {
  if (m instanceof client.Gauge) m.set(labels, value);
  else m.inc(labels, value);
}

export function createMetrics(gw: Gateway): client.Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'mirrorgate_' });
  let snapshot: Record<string, number> = {};
  const refresh = () => (snapshot = gw.counters());
  const get = (name: string) => snapshot[name] ?? 0;

  /** One series from one counter, or the sum of several (the same fact in each IP version's node). */
  const simple = (name: string, help: string, counter: string | readonly string[], type: 'counter' | 'gauge' = 'counter') => {
    const counters = typeof counter === 'string' ? [counter] : counter;
    const Kind = type === 'counter' ? client.Counter : client.Gauge;
    new Kind({
      name,
      help,
      registers: [registry],
      collect(this: client.Counter | client.Gauge) {
        if (name === 'mirrorgate_rx_packets_total') refresh(); // first collector of a scrape reads once
        this.reset();
        put(this, {}, counters.reduce((sum, c) => sum + get(c), 0));
      },
    } as never);
  };
  simple('mirrorgate_rx_packets_total', 'Mirrored packets received', 'rx_packets');
  simple('mirrorgate_rx_bytes_total', 'Mirrored bytes received: tunnel payload, without the outer Ethernet, IP and UDP headers', 'rx_bytes');
  simple('mirrorgate_rx_socket_drops_total', 'Mirrored packets the kernel dropped at the receive sockets (UDP buffer or XDP ring full), before any worker saw them', 'rx_socket_drops');
  simple('mirrorgate_forwarded_packets_total', 'Received packets forwarded to a backend', 'tx.forwarded');
  simple('mirrorgate_tx_packets_total', 'Packets transmitted, fragments and copies included', 'tx.packets');
  simple('mirrorgate_tx_bytes_total', 'IP bytes transmitted', 'tx.bytes');
  simple('mirrorgate_tx_direct_packets_total', 'Packets written as frames straight to the egress device (egress.mode: packet)', 'tx.direct');
  simple('mirrorgate_tx_busy_waits_total', 'Times the egress queue was full and a worker waited for it to drain before retrying', 'tx.busy_waits');
  simple('mirrorgate_tx_errors_total', 'Packets the egress socket refused', 'tx.errors');
  new client.Counter({
    name: 'mirrorgate_tx_refused_total',
    help: 'Packets the egress socket refused, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, v] of Object.entries(snapshot)) if (name.startsWith('tx.errors_')) this.inc({ reason: name.slice(10) }, v);
    },
  });
  simple('mirrorgate_reassembly_waiting_fragments', 'Fragments held for reassembly', ['ip4-reassembly.waiting', 'ip6-reassembly.waiting'], 'gauge');
  simple('mirrorgate_reassembled_datagrams_total', 'Datagrams reassembled from inner fragments', ['ip4-reassembly.reassembled', 'ip6-reassembly.reassembled']);
  simple('mirrorgate_fragments_created_total', 'Fragments made to fit the egress MTU', 'mtu.fragments');
  simple('mirrorgate_fast_path_packets_total', 'Received packets the fast path forwarded itself (listen.fastPath); included in the received and forwarded totals', 'node.fast-path.packets');
  simple('mirrorgate_fast_path_flows_installed_total', 'Flows the fast path took over, once per generation', 'fast-path.flows_installed');
  simple('mirrorgate_fast_path_proposals_refused_total', 'Flows proposed to the fast path and left on the normal path (no next hop, stale configuration, full)', 'fast-path.proposals_refused');
  simple('mirrorgate_fast_path_generations_total', 'Times the fast path forgot its flows (reload, health, next hop, periodic refresh)', 'fast-path.generations');

  new client.Counter({
    name: 'mirrorgate_drops_total',
    help: 'Received packets dropped, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, v] of Object.entries(snapshot)) if (name.startsWith('drop.')) this.inc({ reason: name.slice(5) }, v);
    },
  });
  const perNode = (name: string, help: string, suffix: string, scale = 1) =>
    new client.Counter({
      name,
      help,
      labelNames: ['node'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [key, v] of Object.entries(snapshot)) {
          const m = /^node\.(.+)\.(\w+)$/.exec(key);
          if (m && m[2] === suffix && v > 0) this.inc({ node: m[1] }, v * scale);
        }
      },
    });
  perNode('mirrorgate_node_packets_total', 'Packets processed by each graph node', 'packets');
  perNode('mirrorgate_node_batches_total', 'Batches processed by each graph node', 'batches');
  perNode('mirrorgate_node_seconds_total', 'Time spent in each graph node', 'ns', 1e-9);

  const labelled = <L extends string>(
    name: string,
    help: string,
    labelNames: L[],
    rows: () => { labels: Record<L, string>; value: number }[],
    type: 'counter' | 'gauge' = 'counter',
  ) => {
    const Kind = type === 'counter' ? client.Counter : client.Gauge;
    new Kind({
      name,
      help,
      labelNames,
      registers: [registry],
      collect(this: client.Counter<L> | client.Gauge<L>) {
        this.reset();
        for (const r of rows()) put(this, r.labels, r.value);
      },
    } as never);
  };
  // Exporters: the top N by traffic plus "other", so a spoofed flood cannot blow up cardinality.
  let exporters: ReturnType<Gateway['exporters']>['rows'] = [];
  labelled('mirrorgate_exporter_packets_total', 'Telemetry datagrams per exporter (top N, rest as "other")', ['exporter'], () => {
    exporters = gw.exporters(gw.config.control.topExporters).rows;
    return exporters.map((e) => ({ labels: { exporter: e.exporter }, value: e.packets }));
  });
  labelled('mirrorgate_exporter_bytes_total', 'Telemetry payload bytes per exporter', ['exporter'], () =>
    exporters.map((e) => ({ labels: { exporter: e.exporter }, value: e.bytes })),
  );
  labelled('mirrorgate_exporter_sequence_gaps_total', 'Sequence gaps per exporter: loss upstream of the gateway', ['exporter'], () =>
    exporters.map((e) => ({ labels: { exporter: e.exporter }, value: e.gaps })),
  );
  labelled('mirrorgate_exporter_sequence_lost_total', 'Units missing in sequence gaps (v5 flows, IPFIX records, v9/sFlow datagrams)', ['exporter'], () =>
    exporters.map((e) => ({ labels: { exporter: e.exporter }, value: e.lost })),
  );
  labelled('mirrorgate_exporter_malformed_total', 'Datagrams on flow ports that did not parse, per exporter', ['exporter'], () =>
    exporters.map((e) => ({ labels: { exporter: e.exporter }, value: e.malformed })),
  );
  labelled('mirrorgate_session_packets_total', 'Mirrored packets per session (VNI)', ['vni'], () =>
    gw.sessions().map((x) => ({ labels: { vni: String(x.vni) }, value: x.packets })),
  );
  labelled('mirrorgate_backend_tx_packets_total', 'Packets sent to each backend', ['destination', 'backend'], () =>
    gw.backendPackets().map((b) => ({ labels: { destination: b.destination, backend: b.backend }, value: b.packets })),
  );
  labelled(
    'mirrorgate_backend_up',
    'Backend health: 1 up, 0 down',
    ['destination', 'backend'],
    () => gw.backendHealth().map((b) => ({ labels: { destination: b.destination, backend: b.backend }, value: b.up ? 1 : 0 })),
    'gauge',
  );

  new client.Counter({
    name: 'mirrorgate_config_reloads_total',
    help: 'Configuration reloads, by result',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ result: 'success' }, gw.reloads.success);
      this.inc({ result: 'failure' }, gw.reloads.failure);
    },
  });
  new client.Gauge({
    name: 'mirrorgate_config_generation',
    help: 'Generation of the running configuration (1 at start, +1 per successful reload)',
    registers: [registry],
    collect() {
      this.set(gw.generation);
    },
  });
  new client.Gauge({
    name: 'mirrorgate_workers',
    help: 'Worker threads forwarding packets',
    registers: [registry],
    collect() {
      this.set(gw.workerCount);
    },
  });
  return registry;
}
