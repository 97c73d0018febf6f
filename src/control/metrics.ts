/**
 * Prometheus metrics (prom-client), computed at scrape time from the workers' shared counters, so
 * the data path pays nothing for them.
 */
import client from 'prom-client';
import type { Gateway } from '../gateway/gateway.js';

export function createMetrics(gw: Gateway): client.Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'mirrorgate_process_' });
  let snapshot: Record<string, number> = {};
  const refresh = () => (snapshot = gw.counters());
  const get = (name: string) => snapshot[name] ?? 0;

  const simple = (name: string, help: string, counter: string, type: 'counter' | 'gauge' = 'counter') => {
    const Kind = type === 'counter' ? client.Counter : client.Gauge;
    new Kind({
      name,
      help,
      registers: [registry],
      collect(this: client.Counter | client.Gauge) {
        if (name === 'mirrorgate_rx_packets_total') refresh(); // first collector of a scrape reads once
        (this as client.Gauge).set(get(counter));
      },
    } as never);
  };
  simple('mirrorgate_rx_packets_total', 'Mirrored packets received', 'rx_packets');
  simple('mirrorgate_rx_bytes_total', 'Mirrored bytes received (tunnel payload)', 'rx_bytes');
  simple('mirrorgate_forwarded_packets_total', 'Received packets forwarded to a backend', 'tx.forwarded');
  simple('mirrorgate_tx_packets_total', 'Packets transmitted, fragments and copies included', 'tx.packets');
  simple('mirrorgate_tx_bytes_total', 'IP bytes transmitted', 'tx.bytes');
  simple('mirrorgate_tx_errors_total', 'Packets the egress socket refused', 'tx.errors');
  simple('mirrorgate_reassembly_waiting_fragments', 'Fragments held for reassembly', 'ip4-reassembly.waiting', 'gauge');
  simple('mirrorgate_reassembled_datagrams_total', 'Datagrams reassembled from inner fragments', 'ip4-reassembly.reassembled');
  simple('mirrorgate_fragments_created_total', 'Fragments made to fit the egress MTU', 'mtu.fragments');

  new client.Counter({
    name: 'mirrorgate_drops_total',
    help: 'Received packets dropped, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, v] of Object.entries(snapshot)) if (name.startsWith('drop.') && v > 0) this.inc({ reason: name.slice(5) }, v);
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
