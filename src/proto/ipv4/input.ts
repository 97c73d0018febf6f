/**
 * Inner IPv4: header checks, the truncation check (AWS cuts copies larger than the target MTU or a
 * session's PacketLength, so the packet may be shorter than its Total Length says), then whole
 * packets to policy and fragments to reassembly.
 */
import { defineNode, Node } from '../../core/node.js';
import { numberToIpv4 } from '../../core/prefix-set.js';
import type { PacketVector } from '../../core/vector.js';
import { readL4, PROTO_UDP } from '../../pipeline/l4.js';
import { readU16 } from '../bytes.js';
import { Decode } from '../result.js';
import * as ip4 from './packet.js';

const spec = defineNode({
  name: 'ip4-input',
  next: ['ip4-reassembly', 'allowlist'],
  errors: {
    ip4_truncated: 'inner IPv4 packet shorter than its header or Total Length (mirror truncation)',
    ip4_malformed: 'inner IPv4 header malformed',
    ip4_bad_checksum: 'inner IPv4 header checksum wrong',
    l4_truncated: 'inner UDP/TCP header truncated',
    udp_malformed: 'inner UDP length disagrees with the IP length',
  },
});

export class Ip4Input extends Node<typeof spec> {
  private readonly h = ip4.create();
  constructor() {
    super(spec);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const h = this.h;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const buf = vec.data[i];
      const l3 = vec.l3[i];
      const r = ip4.decode(buf, l3, vec.end[i], h);
      if (r !== Decode.OK) {
        this.drop(i, r === Decode.TRUNCATED ? e.ip4_truncated : e.ip4_malformed);
        continue;
      }
      if (vec.end[i] - l3 < h.totalLength) {
        this.drop(i, e.ip4_truncated);
        continue;
      }
      if (!ip4.checksumValid(buf, l3, h.headerLength)) {
        this.drop(i, e.ip4_bad_checksum);
        continue;
      }
      vec.end[i] = l3 + h.totalLength; // drop Ethernet padding
      vec.family[i] = 4;
      vec.protocol[i] = h.protocol;
      if (ip4.isFragment(h)) {
        vec.l4[i] = -1;
        this.next(i, n['ip4-reassembly']);
        continue;
      }
      const l4 = l3 + h.headerLength;
      if (!readL4(vec, i, h.protocol, l4)) {
        this.drop(i, e.l4_truncated);
        continue;
      }
      if (h.protocol === PROTO_UDP) {
        if (vec.end[i] - l4 < 8) {
          this.drop(i, e.l4_truncated);
          continue;
        }
        if (readU16(buf, l4 + 4) !== h.totalLength - h.headerLength) {
          this.drop(i, e.udp_malformed);
          continue;
        }
      }
      this.next(i, n.allowlist);
    }
  }

  override describe(vec: PacketVector, i: number): string {
    const h = this.h;
    const frag = ip4.isFragment(h) ? ` frag id ${h.id} off ${h.fragmentOffset * 8}${h.flags & ip4.FLAG_MF ? ' MF' : ''}` : '';
    const ports = vec.l4[i] >= 0 && vec.dstPort[i] ? ` ${vec.srcPort[i]} → ${vec.dstPort[i]}` : '';
    return `${numberToIpv4(h.src)} → ${numberToIpv4(h.dst)} proto ${h.protocol} len ${h.totalLength}${h.flags & ip4.FLAG_DF ? ' DF' : ''}${frag}${ports}`;
  }
}
