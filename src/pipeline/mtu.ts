/**
 * Egress MTU: clears DF (the seed systems' fix for collectors behind a VPN with a smaller path
 * MTU) and fragments packets larger than the destination's MTU, as a router would. All fragments
 * of a packet share one non-zero IP ID; IPv6 gets a fragment header (RFC 8200 §4.5) with a fresh
 * 32-bit identification. The packet itself becomes the first fragment; the rest take spare slots.
 */
import { defineNode } from '../core/node.js';
import type { PacketVector } from '../core/vector.js';
import { readU16, writeU16 } from '../proto/bytes.js';
import { checksum, update16 } from '../proto/checksum.js';
import * as ip4 from '../proto/ipv4/packet.js';
import * as ip6 from '../proto/ipv6/packet.js';
import { type PipelineContext, PipelineNode } from './context.js';

const spec = defineNode({
  name: 'mtu',
  next: ['tx'],
  errors: {
    df_too_big: 'packet larger than the MTU with DF set and the destination keeps DF',
    frag_no_buffer: 'no spare buffers left in the batch for the fragments',
    mtu_too_small: 'MTU too small for the packet headers',
    ip6_too_big_fragment: 'IPv6 fragment larger than the MTU (cannot fragment again)',
  },
  counters: {
    fragmented: 'packets fragmented to fit the MTU',
    fragments: 'fragments made',
    df_cleared: 'packets whose DF bit was cleared',
  },
});

export class Mtu extends PipelineNode<typeof spec> {
  private readonly upper = ip6.createUpperLayer();
  /** Identification for fragments of packets that carry none; per pipeline, never zero. */
  private nextId4 = 1 + Math.floor(Math.random() * 0xfffe);
  private nextId6 = (1 + Math.floor(Math.random() * 0xfffffffe)) >>> 0;
  private fragmented = 0;
  private fragments = 0;
  private dfCleared = 0;

  constructor(ctx: PipelineContext) {
    super(spec, ctx);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { n, c } = this.spec;
    const t = this.ctx.tables;
    const passThrough = t.egressMode === 'udp'; // the kernel fragments what our UDP socket sends
    for (let k = 0; k < count; k++) {
      const i = frame[k];
      if (passThrough) {
        this.next(i, n.tx);
        continue;
      }
      const d = t.destinations[vec.destination[i]];
      if (vec.family[i] === 4) this.ip4(vec, i, d.mtu, d.clearDf);
      else this.ip6(vec, i, d.mtu);
    }
    if (this.fragmented) this.count(c.fragmented, this.fragmented);
    if (this.fragments) this.count(c.fragments, this.fragments);
    if (this.dfCleared) this.count(c.df_cleared, this.dfCleared);
    this.fragmented = this.fragments = this.dfCleared = 0;
  }

  private ip4(vec: PacketVector, i: number, mtu: number, clearDf: boolean): void {
    const { n, e } = this.spec;
    const buf = vec.data[i];
    const l3 = vec.l3[i];
    let flags = readU16(buf, l3 + ip4.Field.FLAGS_OFFSET);
    if (clearDf && flags & ip4.FLAG_DF) {
      const cleared = flags & ~ip4.FLAG_DF;
      writeU16(buf, l3 + ip4.Field.FLAGS_OFFSET, cleared);
      writeU16(buf, l3 + ip4.Field.CHECKSUM, update16(readU16(buf, l3 + ip4.Field.CHECKSUM), flags, cleared));
      flags = cleared;
      this.dfCleared++;
    }
    const length = vec.end[i] - l3;
    if (length <= mtu) {
      this.next(i, n.tx);
      return;
    }
    if (flags & ip4.FLAG_DF) {
      this.drop(i, e.df_too_big);
      return;
    }
    const hl = (buf[l3] & 0x0f) * 4;
    // Later fragments carry only the options marked "copied" (RFC 791), so their header may be shorter.
    const laterHl = ip4.MIN_HEADER_LENGTH + (hl > ip4.MIN_HEADER_LENGTH ? this.copiedOptionsLength(buf, l3, hl) : 0);
    const firstData = (mtu - hl) & ~7;
    const laterData = (mtu - laterHl) & ~7;
    if (firstData <= 0 || laterData <= 0) {
      this.drop(i, e.mtu_too_small);
      return;
    }
    const payload = length - hl;
    const extra = Math.ceil((payload - firstData) / laterData);
    if (vec.capacity - vec.count < extra) {
      this.drop(i, e.frag_no_buffer);
      return;
    }
    let id = readU16(buf, l3 + ip4.Field.ID);
    if (id === 0) {
      id = this.nextId4;
      this.nextId4 = this.nextId4 === 0xffff ? 1 : this.nextId4 + 1;
      writeU16(buf, l3 + ip4.Field.ID, id);
    }
    const baseOffset = (flags & ip4.OFFSET_MASK) * 8; // the packet may itself be a fragment
    const lastMore = flags & ip4.FLAG_MF;
    // The first fragment is the packet, cut short and sent first; the rest follow in order.
    const firstFlags = (flags & ~ip4.OFFSET_MASK) | ip4.FLAG_MF | (baseOffset >>> 3);
    writeU16(buf, l3 + ip4.Field.TOTAL_LENGTH, hl + firstData);
    writeU16(buf, l3 + ip4.Field.FLAGS_OFFSET, firstFlags);
    writeU16(buf, l3 + ip4.Field.CHECKSUM, 0);
    writeU16(buf, l3 + ip4.Field.CHECKSUM, checksum(buf, l3, hl));
    vec.end[i] = l3 + hl + firstData;
    this.next(i, n.tx);
    for (let done = firstData; done < payload; done += laterData) {
      const size = Math.min(laterData, payload - done);
      const f = vec.alloc();
      vec.copyMeta(i, f);
      const out = vec.slot[f];
      buf.copy(out, 0, l3, l3 + ip4.MIN_HEADER_LENGTH);
      const optLen = laterHl > ip4.MIN_HEADER_LENGTH ? ip4.copyFragmentOptions(buf, l3 + ip4.MIN_HEADER_LENGTH, l3 + hl, out, ip4.MIN_HEADER_LENGTH) : 0;
      const fhl = ip4.MIN_HEADER_LENGTH + optLen;
      out[0] = 0x40 | (fhl >>> 2);
      const last = done + size >= payload;
      const fragFlags = (flags & ~(ip4.OFFSET_MASK | ip4.FLAG_MF)) | (last ? lastMore : ip4.FLAG_MF) | ((baseOffset + done) >>> 3);
      writeU16(out, ip4.Field.TOTAL_LENGTH, fhl + size);
      writeU16(out, ip4.Field.FLAGS_OFFSET, fragFlags);
      writeU16(out, ip4.Field.CHECKSUM, 0);
      writeU16(out, ip4.Field.CHECKSUM, checksum(out, 0, fhl));
      buf.copy(out, fhl, l3 + hl + done, l3 + hl + done + size);
      vec.start[f] = 0;
      vec.l3[f] = 0;
      vec.l4[f] = -1;
      vec.end[f] = fhl + size;
      this.fragments++;
      this.next(f, n.tx);
    }
    this.fragments++;
    this.fragmented++;
  }

  private copiedOptionsLength(buf: Buffer, l3: number, hl: number): number {
    return ip4.copyFragmentOptions(buf, l3 + ip4.MIN_HEADER_LENGTH, l3 + hl, this.optionScratch, 0);
  }

  private readonly optionScratch = new Uint8Array(ip4.MAX_HEADER_LENGTH);

  private ip6(vec: PacketVector, i: number, mtu: number): void {
    const { n, e } = this.spec;
    const length = vec.end[i] - vec.l3[i];
    if (length <= mtu) {
      this.next(i, n.tx);
      return;
    }
    const buf = vec.data[i];
    const l3 = vec.l3[i];
    const up = this.upper;
    ip6.findUpperLayer(buf, l3, vec.end[i], up); // validated by ip6-input
    if (up.fragmentHeader >= 0) {
      this.drop(i, e.ip6_too_big_fragment);
      return;
    }
    // Everything before the upper layer stays in every fragment (the per-fragment headers).
    const unfragmentable = up.offset - l3;
    const data = (mtu - unfragmentable - ip6.FRAGMENT_HEADER_LENGTH) & ~7;
    if (data <= 0) {
      this.drop(i, e.mtu_too_small);
      return;
    }
    const payload = length - unfragmentable;
    const extra = Math.ceil(payload / data) - 1;
    if (vec.capacity - vec.count < extra) {
      this.drop(i, e.frag_no_buffer);
      return;
    }
    const id = this.nextId6;
    this.nextId6 = this.nextId6 === 0xffffffff ? 1 : this.nextId6 + 1;
    const nextAt = this.nextHeaderAt(buf, l3, up.offset);
    const upperProtocol = buf[nextAt];
    // Later fragments first: they copy from the original bytes, which the first fragment then moves.
    const fragments: number[] = this.fragmentList;
    fragments.length = 0;
    for (let done = data; done < payload; done += data) {
      const size = Math.min(data, payload - done);
      const f = vec.alloc();
      vec.copyMeta(i, f);
      const out = vec.slot[f];
      buf.copy(out, 0, l3, up.offset);
      out[nextAt - l3] = ip6.NextHeader.FRAGMENT;
      ip6.encodeFragmentHeader(out, unfragmentable, upperProtocol, done >>> 3, done + size < payload, id);
      buf.copy(out, unfragmentable + ip6.FRAGMENT_HEADER_LENGTH, up.offset + done, up.offset + done + size);
      const total = unfragmentable + ip6.FRAGMENT_HEADER_LENGTH + size;
      writeU16(out, ip6.PAYLOAD_LENGTH_OFFSET, total - ip6.HEADER_LENGTH);
      vec.start[f] = 0;
      vec.l3[f] = 0;
      vec.l4[f] = -1;
      vec.end[f] = total;
      fragments.push(f);
    }
    buf.copyWithin(up.offset + ip6.FRAGMENT_HEADER_LENGTH, up.offset, up.offset + data);
    buf[nextAt] = ip6.NextHeader.FRAGMENT;
    ip6.encodeFragmentHeader(buf, up.offset, upperProtocol, 0, true, id);
    const firstTotal = unfragmentable + ip6.FRAGMENT_HEADER_LENGTH + data;
    writeU16(buf, l3 + ip6.PAYLOAD_LENGTH_OFFSET, firstTotal - ip6.HEADER_LENGTH);
    vec.end[i] = l3 + firstTotal;
    vec.l4[i] = up.offset + ip6.FRAGMENT_HEADER_LENGTH;
    this.next(i, n.tx);
    for (const f of fragments) this.next(f, n.tx);
    this.fragments += fragments.length + 1;
    this.fragmented++;
  }

  private readonly fragmentList: number[] = [];

  /** Offset of the Next Header byte that names the upper layer (fixed header or last extension). */
  private nextHeaderAt(buf: Buffer, l3: number, upperOffset: number): number {
    let at = l3 + ip6.NEXT_HEADER_OFFSET;
    let p = l3 + ip6.HEADER_LENGTH;
    while (p < upperOffset) {
      at = p;
      p += (buf[p + 1] + 1) * 8;
    }
    return at;
  }
}
