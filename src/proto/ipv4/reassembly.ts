/**
 * Inner IPv4 fragment reassembly, bounded in memory and time. Exporters behind a small MTU send
 * fragmented NetFlow/IPFIX; the collector must get whole datagrams (and the rules need the UDP
 * ports, which only the first fragment carries).
 *
 * Datagrams are keyed by (src, dst, id, protocol), RFC 791, in a FragmentPool. Every fragment
 * held is counted as waiting until it is merged into a datagram or dropped with a reason.
 */
import { defineNode } from '../../core/node.js';
import { numberToIpv4 } from '../../core/prefix-set.js';
import type { PacketVector } from '../../core/vector.js';
import type { PipelineContext } from '../../pipeline/context.js';
import { readI32, readU16, readU32, writeU16 } from '../bytes.js';
import { checksum } from '../checksum.js';
import { REASSEMBLY_COUNTERS, ReassemblyNode } from '../reassembly.js';
import * as ip4 from './packet.js';

const MAX_PAYLOAD = 65535 - ip4.MIN_HEADER_LENGTH;
/** Key words: source, destination, and identification with protocol. */
const KEY_WORDS = 3;

const spec = defineNode({
  name: 'ip4-reassembly',
  next: ['allowlist'],
  errors: {
    frag_malformed: 'IPv4 fragment malformed (empty, not a multiple of 8, or inconsistent end)',
    frag_too_big: 'IPv4 fragments would exceed 65535 bytes',
    frag_overlap: 'IPv4 fragment overlaps or repeats one already held',
    reassembly_timeout: 'IPv4 fragments expired before the datagram was complete',
    reassembly_evicted: 'IPv4 fragments evicted to make room (reassembly pool full)',
    reassembly_busy: 'IPv4 fragment refused: every reassembly context is in use this batch',
    reassembled_truncated: 'reassembled datagram has a truncated UDP/TCP header',
    reassembled_udp_malformed: 'reassembled UDP length disagrees with the IP length',
  },
  counters: REASSEMBLY_COUNTERS,
});

export class Ip4Reassembly extends ReassemblyNode<typeof spec> {
  private readonly key = new Int32Array(KEY_WORDS);

  constructor(ctx: PipelineContext, maxDatagrams: number) {
    const e = spec.e;
    const reasons = { timeout: e.reassembly_timeout, evicted: e.reassembly_evicted, overlap: e.frag_overlap, truncated: e.reassembled_truncated, udpMalformed: e.reassembled_udp_malformed };
    super(spec, ctx, maxDatagrams, KEY_WORDS, ip4.MAX_HEADER_LENGTH, reasons, spec.n.allowlist);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const e = this.spec.e;
    const pool = this.pool;
    const base = pool.base;
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      // Each fragment's own arrival time: a replayed batch can span minutes of capture.
      const now = vec.timestampNs[i] / 1e6;
      this.expire(now);
      const buf = vec.data[i];
      const l3 = vec.l3[i];
      const hl = (buf[l3] & 0x0f) * 4;
      const flagsOffset = readU16(buf, l3 + ip4.Field.FLAGS_OFFSET);
      const offset = (flagsOffset & ip4.OFFSET_MASK) * 8;
      const more = (flagsOffset & ip4.FLAG_MF) !== 0;
      const length = vec.end[i] - l3 - hl;
      if (length <= 0 || (more && (length & 7) !== 0)) {
        this.drop(i, e.frag_malformed);
        continue;
      }
      if (offset + length > MAX_PAYLOAD) {
        this.drop(i, e.frag_too_big);
        continue;
      }
      const key = this.key;
      key[0] = readI32(buf, l3 + ip4.Field.SRC);
      key[1] = readI32(buf, l3 + ip4.Field.DST);
      key[2] = (readU16(buf, l3 + ip4.Field.ID) << 8) | buf[l3 + ip4.Field.PROTOCOL];
      const x = pool.find(key, now);
      if (x < 0) {
        this.drop(i, e.reassembly_busy);
        continue;
      }
      if (!pool.fits(x, offset, length, more)) {
        this.drop(i, e.frag_malformed);
        continue;
      }
      if (pool.heldBlocks(x, offset, length) !== 0) {
        this.drop(i, e.frag_overlap);
        continue;
      }
      const store = pool.buffers[x]!;
      buf.copy(store, base + offset, l3 + hl, l3 + hl + length);
      pool.add(x, offset, length, more);
      if (offset === 0) {
        buf.copy(store, base - hl, l3, l3 + hl);
        pool.headerLength[x] = hl;
      }
      if (!pool.complete(x)) {
        this.hold(i, x);
        continue;
      }
      const start = this.finish(store, base, pool.headerLength[x], pool.total[x]);
      this.merge(vec, i, x, start);
      this.deliver(vec, i, store[start + ip4.Field.PROTOCOL], base);
    }
    this.flush();
  }

  override describe(vec: PacketVector, i: number): string {
    const buf = vec.data[i];
    const l3 = vec.l3[i];
    const fo = readU16(buf, l3 + ip4.Field.FLAGS_OFFSET);
    return `id ${readU16(buf, l3 + ip4.Field.ID)} ${numberToIpv4(readU32(buf, l3 + 12))} off ${(fo & ip4.OFFSET_MASK) * 8}${fo & ip4.FLAG_MF ? ' MF' : ''} len ${vec.end[i] - l3}`;
  }

  /** Turns the stored first header into the whole datagram's header; returns its offset. */
  private finish(store: Buffer, base: number, hl: number, total: number): number {
    const start = base - hl;
    writeU16(store, start + ip4.Field.TOTAL_LENGTH, hl + total);
    const df = readU16(store, start + ip4.Field.FLAGS_OFFSET) & ip4.FLAG_DF;
    writeU16(store, start + ip4.Field.FLAGS_OFFSET, df);
    writeU16(store, start + ip4.Field.CHECKSUM, 0);
    writeU16(store, start + ip4.Field.CHECKSUM, checksum(store, start, hl));
    return start;
  }
}
