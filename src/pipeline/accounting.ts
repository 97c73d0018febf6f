/**
 * The packet accounting every report is built from, and its invariant:
 * rx = forwarded + Σ drops + fragments merged + fragments still waiting in reassembly.
 */
import { GraphCounter } from '../core/graph.js';

export interface Accounting {
  rx: number;
  rxBytes: number;
  forwarded: number;
  tx: number;
  txBytes: number;
  txErrors: number;
  /** Received packets dropped, by reason. */
  drops: Record<string, number>;
  /** Copies or later fragments that could not be made or sent, by reason. */
  copyDrops: Record<string, number>;
  reassembly: { waiting: number; merged: number; reassembled: number };
  /** True when every received packet is accounted for. */
  balanced: boolean;
  /** Live gateway: packets the kernel dropped at the receive sockets (UDP or XDP), never received. */
  socketDrops?: number;
}

export function accountingFrom(counters: Record<string, number>): Accounting {
  const drops: Record<string, number> = {};
  const copyDrops: Record<string, number> = {};
  let dropped = 0;
  for (const [name, v] of Object.entries(counters)) {
    if (v === 0) continue;
    if (name.startsWith('drop.')) {
      drops[name.slice(5)] = v;
      dropped += v;
    } else if (name.startsWith('copy_drop.')) copyDrops[name.slice(10)] = v;
  }
  const get = (name: string) => counters[name] ?? 0;
  const a = {
    rx: get(GraphCounter.RX_PACKETS),
    rxBytes: get(GraphCounter.RX_BYTES),
    forwarded: get('tx.forwarded'),
    tx: get('tx.packets'),
    txBytes: get('tx.bytes'),
    txErrors: get('tx.errors'),
    drops,
    copyDrops,
    reassembly: {
      waiting: get('ip4-reassembly.waiting') + get('ip6-reassembly.waiting'),
      merged: get('ip4-reassembly.merged') + get('ip6-reassembly.merged'),
      reassembled: get('ip4-reassembly.reassembled') + get('ip6-reassembly.reassembled'),
    },
  };
  const balanced = a.rx === a.forwarded + dropped + a.reassembly.merged + a.reassembly.waiting;
  const socketDrops = counters.rx_socket_drops;
  return socketDrops === undefined ? { ...a, balanced } : { ...a, balanced, socketDrops };
}
