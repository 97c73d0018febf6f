/**
 * Destination NAT to the chosen backend: the exporter's source address and port stay, the
 * destination address (and port, when the backend names one) becomes the backend's. Checksums are
 * updated incrementally (RFC 1624); an IPv4 UDP checksum of zero ("none") stays zero, and an IPv6
 * UDP checksum is always left valid (RFC 8200 §8.1 forbids zero).
 */
import { defineNode } from '../core/node.js';
import { bytesToIpv6, numberToIpv4 } from '../core/prefix-set.js';
import type { PacketVector } from '../core/vector.js';
import { readI32, readU16, readU32, writeU16, writeU32 } from '../proto/bytes.js';
import { update16, update32 } from '../proto/checksum.js';
import * as ip4 from '../proto/ipv4/packet.js';
import * as ip6 from '../proto/ipv6/packet.js';
import * as udp from '../proto/udp/packet.js';
import { type PipelineContext, PipelineNode } from './context.js';
import { TTL_DECREMENT, TTL_KEEP } from '../control/tables.js';
import { PROTO_TCP, PROTO_UDP } from './l4.js';

const spec = defineNode({
  name: 'dnat',
  next: ['mtu'],
  errors: {
    no_port_to_rewrite: 'backend names a port but the packet has no UDP/TCP header',
    ttl_expired: 'TTL or hop limit reached zero (destination ttl: decrement)',
  },
});

const TCP_CHECKSUM = 16;

export class Dnat extends PipelineNode<typeof spec> {
  constructor(ctx: PipelineContext) {
    super(spec, ctx);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, e } = this.spec;
    const destinations = this.ctx.tables.destinations;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const d = destinations[vec.destination[i]];
      const b = d.backends[vec.backend[i]];
      const proto = vec.protocol[i];
      const l4 = vec.l4[i];
      const ported = proto === PROTO_UDP || proto === PROTO_TCP;
      if (b.port !== 0 && (l4 < 0 || !ported)) {
        this.drop(i, e.no_port_to_rewrite);
        continue;
      }
      const buf = vec.data[i];
      const l3 = vec.l3[i];
      // Where the upper-layer checksum sits; -1 when there is none to fix.
      const csumAt = l4 < 0 ? -1 : proto === PROTO_UDP ? l4 + udp.Field.CHECKSUM : proto === PROTO_TCP ? l4 + TCP_CHECKSUM : -1;
      let csum = csumAt >= 0 ? readU16(buf, csumAt) : 0;
      const udpNoChecksum = proto === PROTO_UDP && csum === 0;
      if ((d.ttl !== TTL_KEEP || d.dscp >= 0) && !this.rewriteTtlDscp(buf, l3, vec.family[i], d.ttl, d.dscp)) {
        this.drop(i, e.ttl_expired);
        continue;
      }
      if (vec.family[i] === 4) {
        const old = readI32(buf, l3 + ip4.Field.DST);
        writeU32(buf, l3 + ip4.Field.DST, b.addr4);
        writeU16(buf, l3 + ip4.Field.CHECKSUM, update32(readU16(buf, l3 + ip4.Field.CHECKSUM), old, b.addr4));
        csum = update32(csum, old, b.addr4);
      } else {
        const dst = l3 + ip6.DST_OFFSET;
        for (let w = 0; w < 16; w += 2) {
          const old = (buf[dst + w] << 8) | buf[dst + w + 1];
          const now = (b.addr6[w] << 8) | b.addr6[w + 1];
          buf[dst + w] = b.addr6[w];
          buf[dst + w + 1] = b.addr6[w + 1];
          csum = update16(csum, old, now);
        }
      }
      if (b.port !== 0) {
        const oldPort = readU16(buf, l4 + 2);
        writeU16(buf, l4 + 2, b.port);
        vec.dstPort[i] = b.port;
        csum = update16(csum, oldPort, b.port);
      }
      if (csumAt >= 0) {
        if (udpNoChecksum && vec.family[i] === 4) {
          // "no checksum" stays so: it was never computed, so there is nothing to update.
        } else if (udpNoChecksum) {
          const len = vec.end[i] - l4;
          writeU16(buf, csumAt, 0);
          writeU16(buf, csumAt, udp.checksum6(buf, l3, l4, len));
        } else {
          writeU16(buf, csumAt, proto === PROTO_UDP && csum === 0 ? 0xffff : csum);
        }
      }
      this.next(i, n.mtu);
    }
  }

  /** Applies the destination's TTL and DSCP policies; false when the TTL runs out. */
  private rewriteTtlDscp(buf: Buffer, l3: number, family: number, ttl: number, dscp: number): boolean {
    if (family === 4) {
      // TTL shares a 16-bit word with Protocol, TOS with Version/IHL: update the checksum per word.
      const ttlWord = readU16(buf, l3 + ip4.Field.TTL);
      const oldTtl = ttlWord >>> 8;
      const newTtl = ttl === TTL_KEEP ? oldTtl : ttl === TTL_DECREMENT ? oldTtl - 1 : ttl;
      if (newTtl <= 0) return false;
      const tosWord = readU16(buf, l3);
      const newTos = dscp >= 0 ? (tosWord & 0xff03) | (dscp << 2) : tosWord;
      let csum = readU16(buf, l3 + ip4.Field.CHECKSUM);
      csum = update16(csum, ttlWord, (newTtl << 8) | (ttlWord & 0xff));
      csum = update16(csum, tosWord, newTos);
      buf[l3 + ip4.Field.TTL] = newTtl;
      writeU16(buf, l3, newTos);
      writeU16(buf, l3 + ip4.Field.CHECKSUM, csum);
      return true;
    }
    const hop = buf[l3 + 7];
    const newHop = ttl === TTL_KEEP ? hop : ttl === TTL_DECREMENT ? hop - 1 : ttl;
    if (newHop <= 0) return false;
    buf[l3 + 7] = newHop;
    if (dscp >= 0) {
      // Traffic Class is bits 4-11 of the first word; DSCP is its top six bits (RFC 2474).
      const word = readU16(buf, l3);
      writeU16(buf, l3, (word & 0xf03f) | (dscp << 6));
    }
    return true;
  }

  override describe(vec: PacketVector, i: number): string {
    const buf = vec.data[i];
    const l3 = vec.l3[i];
    const dst = vec.family[i] === 4 ? numberToIpv4(readU32(buf, l3 + ip4.Field.DST)) : `[${bytesToIpv6(buf, l3 + ip6.DST_OFFSET)}]`;
    const src = vec.family[i] === 4 ? numberToIpv4(readU32(buf, l3 + ip4.Field.SRC)) : `[${bytesToIpv6(buf, l3 + ip6.SRC_OFFSET)}]`;
    return `${src}:${vec.srcPort[i]} → ${dst}:${vec.dstPort[i]}`;
  }
}
