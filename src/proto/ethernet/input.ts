/**
 * The mirrored (inner) Ethernet frame: original MACs and any 802.1Q/QinQ tags are skipped; IPv4
 * and IPv6 go on, anything else (ARP, LLDP...) is counted and dropped.
 */
import { defineNode, Node } from '../../core/node.js';
import type { PacketVector } from '../../core/vector.js';
import { Decode } from '../result.js';
import * as eth from './packet.js';

const spec = defineNode({
  name: 'inner-ethernet',
  next: ['ip4-input', 'ip6-input'],
  errors: {
    inner_eth_truncated: 'inner Ethernet header truncated',
    inner_eth_malformed: 'inner Ethernet header malformed (more than two VLAN tags)',
    inner_not_ip: 'inner frame is neither IPv4 nor IPv6',
  },
});

export class InnerEthernet extends Node<typeof spec> {
  private readonly h = eth.create();
  constructor() {
    super(spec);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const h = this.h;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const r = eth.decode(vec.data[i], vec.start[i], vec.end[i], h);
      if (r !== Decode.OK) {
        this.drop(i, r === Decode.TRUNCATED ? e.inner_eth_truncated : e.inner_eth_malformed);
        continue;
      }
      const l3 = vec.start[i] + eth.headerLength(h);
      if (h.etherType === eth.EtherType.IPV4) {
        vec.l3[i] = l3;
        vec.start[i] = l3;
        this.next(i, n['ip4-input']);
      } else if (h.etherType === eth.EtherType.IPV6) {
        vec.l3[i] = l3;
        vec.start[i] = l3;
        this.next(i, n['ip6-input']);
      } else {
        this.drop(i, e.inner_not_ip);
      }
    }
  }

  override describe(vec: PacketVector, i: number): string {
    const tags = this.h.tagCount ? ` vlan ${this.h.tci.slice(0, this.h.tagCount).map(eth.vlanId).join('/')}` : '';
    return `${eth.formatMac(this.h.src)} → ${eth.formatMac(this.h.dst)} type 0x${this.h.etherType.toString(16).padStart(4, '0')}${tags}`;
  }
}
