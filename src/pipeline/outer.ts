/**
 * Outer headers of a mirrored packet as a capture or XDP ingress holds them: Ethernet (optionally
 * tagged), IPv4, UDP. The receive sockets skip these nodes: they have already stripped them and
 * report the outer source themselves. So that received bytes mean the same on every path, the
 * tunnel payload is counted here, where the socket's count would begin.
 */
import { defineNode, Node } from '../core/node.js';
import type { PacketVector } from '../core/vector.js';
import * as eth from '../proto/ethernet/packet.js';
import * as ip4 from '../proto/ipv4/packet.js';
import { Decode } from '../proto/result.js';
import * as udp from '../proto/udp/packet.js';
import { numberToIpv4 } from '../core/prefix-set.js';

const ethernetSpec = defineNode({
  name: 'outer-ethernet',
  next: ['outer-ip4'],
  errors: {
    outer_eth_truncated: 'outer Ethernet header truncated',
    outer_eth_malformed: 'outer Ethernet header malformed (more than two VLAN tags)',
    outer_not_ipv4: 'outer frame is not IPv4 (ARP, IPv6, ...)',
  },
});

export class OuterEthernet extends Node<typeof ethernetSpec> {
  private readonly h = eth.create();
  constructor() {
    super(ethernetSpec);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const h = this.h;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const r = eth.decode(vec.data[i], vec.start[i], vec.end[i], h);
      if (r !== Decode.OK) {
        this.drop(i, r === Decode.TRUNCATED ? e.outer_eth_truncated : e.outer_eth_malformed);
      } else if (h.etherType !== eth.EtherType.IPV4) {
        this.drop(i, e.outer_not_ipv4);
      } else {
        vec.start[i] += eth.headerLength(h);
        this.next(i, n['outer-ip4']);
      }
    }
  }
}

const ip4Spec = defineNode({
  name: 'outer-ip4',
  next: ['tunnel-input'],
  errors: {
    outer_ip_truncated: 'outer IPv4 or UDP header truncated',
    outer_ip_malformed: 'outer IPv4 or UDP header malformed',
    outer_not_udp: 'outer packet is not UDP',
    outer_fragment: 'outer packet is an IP fragment (mirror copies are truncated, never fragmented)',
  },
});

/** Outer IPv4 + UDP: records the mirror's source and ports, moves to the tunnel header. */
export class OuterIp4 extends Node<typeof ip4Spec> {
  private readonly ip = ip4.create();
  private readonly udp = udp.create();
  constructor() {
    super(ip4Spec);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const ip = this.ip;
    const uh = this.udp;
    let payload = 0;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const buf = vec.data[i];
      const off = vec.start[i];
      const r = ip4.decode(buf, off, vec.end[i], ip);
      if (r !== Decode.OK) {
        this.drop(i, r === Decode.TRUNCATED ? e.outer_ip_truncated : e.outer_ip_malformed);
        continue;
      }
      if (ip.protocol !== udp.PROTOCOL) {
        this.drop(i, e.outer_not_udp);
        continue;
      }
      if (ip4.isFragment(ip)) {
        this.drop(i, e.outer_fragment);
        continue;
      }
      const end = Math.min(vec.end[i], off + ip.totalLength);
      const u = off + ip.headerLength;
      const ru = udp.decode(buf, u, end, uh);
      if (ru !== Decode.OK) {
        this.drop(i, ru === Decode.TRUNCATED ? e.outer_ip_truncated : e.outer_ip_malformed);
        continue;
      }
      vec.outerSrc[i] = ip.src; // wraps to int32: same bits
      vec.outerSrcPort[i] = uh.srcPort;
      vec.outerDstPort[i] = uh.dstPort;
      vec.start[i] = u + udp.HEADER_LENGTH;
      vec.end[i] = Math.min(end, u + uh.length);
      payload += vec.end[i] - vec.start[i];
      this.next(i, n['tunnel-input']);
    }
    this.receivedBytes(payload);
  }

  override describe(vec: PacketVector, i: number): string {
    return `outer ${numberToIpv4(vec.outerSrc[i])}:${vec.outerSrcPort[i]} → :${vec.outerDstPort[i]}`;
  }
}
