/**
 * Inner IPv6: fixed header, truncation check against Payload Length, and the extension-header
 * walk to the upper layer; fragments go to reassembly.
 */
import { defineNode, Node } from '../../core/node.js';
import { bytesToIpv6 } from '../../core/prefix-set.js';
import type { PacketVector } from '../../core/vector.js';
import { readL4, PROTO_UDP } from '../../pipeline/l4.js';
import { readU16 } from '../bytes.js';
import { Decode } from '../result.js';
import * as ip6 from './packet.js';

const spec = defineNode({
  name: 'ip6-input',
  next: ['ip6-reassembly', 'allowlist'],
  errors: {
    ip6_truncated: 'inner IPv6 packet shorter than its Payload Length (mirror truncation)',
    ip6_malformed: 'inner IPv6 header or extension chain malformed',
    l4_truncated_6: 'inner UDP/TCP header truncated (IPv6)',
    udp_malformed_6: 'inner UDP length disagrees with the IPv6 length',
  },
});

export class Ip6Input extends Node<typeof spec> {
  private readonly h = ip6.create();
  private readonly upper = ip6.createUpperLayer();
  constructor() {
    super(spec);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const h = this.h;
    const up = this.upper;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const buf = vec.data[i];
      const l3 = vec.l3[i];
      const r = ip6.decode(buf, l3, vec.end[i], h);
      if (r !== Decode.OK) {
        this.drop(i, r === Decode.TRUNCATED ? e.ip6_truncated : e.ip6_malformed);
        continue;
      }
      const total = ip6.HEADER_LENGTH + h.payloadLength;
      if (vec.end[i] - l3 < total) {
        this.drop(i, e.ip6_truncated);
        continue;
      }
      vec.end[i] = l3 + total;
      vec.family[i] = 6;
      const rw = ip6.findUpperLayer(buf, l3, vec.end[i], up);
      if (rw !== Decode.OK) {
        this.drop(i, rw === Decode.TRUNCATED ? e.ip6_truncated : e.ip6_malformed);
        continue;
      }
      if (up.fragmentHeader >= 0) {
        vec.protocol[i] = up.protocol;
        vec.l4[i] = -1;
        this.next(i, n['ip6-reassembly']);
        continue;
      }
      if (!readL4(vec, i, up.protocol, up.offset)) {
        this.drop(i, e.l4_truncated_6);
        continue;
      }
      if (up.protocol === PROTO_UDP) {
        if (vec.end[i] - up.offset < 8) {
          this.drop(i, e.l4_truncated_6);
          continue;
        }
        if (readU16(buf, up.offset + 4) !== vec.end[i] - up.offset) {
          this.drop(i, e.udp_malformed_6);
          continue;
        }
      }
      this.next(i, n.allowlist);
    }
  }

  override describe(vec: PacketVector, i: number): string {
    const ports = vec.l4[i] >= 0 && vec.dstPort[i] ? ` ${vec.srcPort[i]} → ${vec.dstPort[i]}` : '';
    return `${bytesToIpv6(this.h.src)} → ${bytesToIpv6(this.h.dst)} next ${this.upper.protocol} plen ${this.h.payloadLength}${ports}`;
  }
}
