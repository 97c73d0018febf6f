/**
 * Inner IPv6 fragment reassembly (RFC 8200 §4.5), bounded in memory and time like IPv4's. An
 * exporter whose datagrams exceed the path MTU fragments them itself over IPv6 (routers never
 * do); the collector must get whole datagrams, and the rules need the UDP ports, which only the
 * first fragment carries.
 *
 * Datagrams are keyed by (src, dst, Identification). The first fragment's unfragmentable part
 * (the fixed header and the extension headers before the Fragment header) becomes the datagram's
 * header, with the Fragment header's Next Header spliced into it. A fragment that repeats blocks
 * already held is dropped alone; one that overlaps them partly drops the whole datagram (RFC 5722,
 * with its errata: duplicates are ignored). An atomic fragment (offset 0, M clear) is a whole
 * datagram and leaves at once without its Fragment header (RFC 6946).
 */
import { defineNode } from '../../core/node.js';
import { bytesToIpv6 } from '../../core/prefix-set.js';
import type { PacketVector } from '../../core/vector.js';
import type { PipelineContext } from '../../pipeline/context.js';
import { readI32, writeU16 } from '../bytes.js';
import { Discard, REASSEMBLY_COUNTERS, ReassemblyNode } from '../reassembly.js';
import { Decode } from '../result.js';
import * as ip6 from './packet.js';

/** Room for the unfragmentable part: the fixed header and up to 472 bytes of extension headers. */
const MAX_UNFRAGMENTABLE = 512;
/** Key words: source (4), destination (4), Identification. */
const KEY_WORDS = 9;

const spec = defineNode({
  name: 'ip6-reassembly',
  next: ['allowlist'],
  errors: {
    frag6_malformed: 'IPv6 fragment malformed (empty, not a multiple of 8, inconsistent end, or over 512 bytes of headers before it)',
    frag6_too_big: 'IPv6 fragments would exceed 65535 bytes of payload',
    frag6_duplicate: 'IPv6 fragment repeating one already held (dropped alone; the datagram goes on)',
    frag6_overlap: 'IPv6 fragment partly overlapping one already held: the whole datagram is dropped (RFC 5722)',
    reassembly6_timeout: 'IPv6 fragments expired before the datagram was complete',
    reassembly6_evicted: 'IPv6 fragments evicted to make room (reassembly pool full)',
    reassembly6_busy: 'IPv6 fragment refused: every reassembly context is in use this batch',
    reassembled6_malformed: 'reassembled IPv6 datagram has a malformed or truncated extension-header chain',
    reassembled6_truncated: 'reassembled IPv6 datagram has a truncated UDP/TCP header',
    reassembled6_udp_malformed: 'reassembled UDP length disagrees with the IPv6 length',
  },
  counters: REASSEMBLY_COUNTERS,
});

export class Ip6Reassembly extends ReassemblyNode<typeof spec> {
  private readonly key = new Int32Array(KEY_WORDS);
  private readonly upper = ip6.createUpperLayer();

  constructor(ctx: PipelineContext, maxDatagrams: number) {
    const e = spec.e;
    const reasons = { timeout: e.reassembly6_timeout, evicted: e.reassembly6_evicted, overlap: e.frag6_overlap, truncated: e.reassembled6_truncated, udpMalformed: e.reassembled6_udp_malformed };
    super(spec, ctx, maxDatagrams, KEY_WORDS, MAX_UNFRAGMENTABLE, reasons, spec.n.allowlist);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const e = this.spec.e;
    const pool = this.pool;
    const base = pool.base;
    const up = this.upper;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      const now = vec.timestampNs[i] / 1e6;
      this.expire(now);
      const buf = vec.data[i];
      const l3 = vec.l3[i];
      const end = vec.end[i];
      // ip6-input walked this chain already and found the Fragment header.
      if (ip6.findUpperLayer(buf, l3, end, up) !== Decode.OK || up.fragmentHeader < 0) {
        this.drop(i, e.frag6_malformed);
        continue;
      }
      const unfragmentable = up.fragmentHeader - l3;
      const data = up.fragmentHeader + ip6.FRAGMENT_HEADER_LENGTH;
      const offset = up.fragmentOffset * 8;
      const more = up.more;
      const length = end - data;
      if (unfragmentable > MAX_UNFRAGMENTABLE || length <= 0 || (more && (length & 7) !== 0)) {
        this.drop(i, e.frag6_malformed);
        continue;
      }
      if (unfragmentable - ip6.HEADER_LENGTH + offset + length > 0xffff) {
        this.drop(i, e.frag6_too_big);
        continue;
      }
      const key = this.key;
      for (let w = 0; w < 4; w++) {
        key[w] = readI32(buf, l3 + ip6.SRC_OFFSET + 4 * w);
        key[4 + w] = readI32(buf, l3 + ip6.DST_OFFSET + 4 * w);
      }
      key[8] = up.id | 0;
      const x = pool.find(key, now);
      if (x < 0) {
        this.drop(i, e.reassembly6_busy);
        continue;
      }
      if (!pool.fits(x, offset, length, more)) {
        this.drop(i, e.frag6_malformed);
        continue;
      }
      const repeated = pool.heldBlocks(x, offset, length);
      if (repeated !== 0) {
        if (repeated === ((offset + length - 1) >>> 3) - (offset >>> 3) + 1) {
          this.drop(i, e.frag6_duplicate);
        } else {
          pool.discard(x, Discard.OVERLAP);
          this.drop(i, e.frag6_overlap);
        }
        continue;
      }
      const store = pool.buffers[x]!;
      buf.copy(store, base + offset, data, end);
      pool.add(x, offset, length, more);
      if (offset === 0) {
        const at = base - unfragmentable;
        buf.copy(store, at, l3, up.fragmentHeader);
        store[at + (up.fragmentNextHeaderAt - l3)] = buf[up.fragmentHeader];
        pool.headerLength[x] = unfragmentable;
      }
      if (!pool.complete(x)) {
        this.hold(i, x);
        continue;
      }
      const total = pool.total[x];
      const start = base - pool.headerLength[x];
      writeU16(store, start + ip6.PAYLOAD_LENGTH_OFFSET, pool.headerLength[x] - ip6.HEADER_LENGTH + total);
      this.merge(vec, i, x, start);
      // The fragmentable part may begin with more extension headers before the upper layer.
      if (ip6.findUpperLayer(store, start, base + total, up) !== Decode.OK || up.fragmentHeader >= 0) {
        this.drop(i, e.reassembled6_malformed);
        continue;
      }
      this.deliver(vec, i, up.protocol, up.offset);
    }
    this.flush();
  }

  override describe(vec: PacketVector, i: number): string {
    const buf = vec.data[i];
    const up = this.upper;
    if (ip6.findUpperLayer(buf, vec.l3[i], vec.end[i], up) !== Decode.OK || up.fragmentHeader < 0) return `len ${vec.end[i] - vec.l3[i]}`;
    const src = bytesToIpv6(buf, vec.l3[i] + ip6.SRC_OFFSET);
    return `id ${up.id >>> 0} ${src} off ${up.fragmentOffset * 8}${up.more ? ' M' : ''} len ${vec.end[i] - vec.l3[i]}`;
  }
}
