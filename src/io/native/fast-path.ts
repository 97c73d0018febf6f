/**
 * The fast path's maps and their byte layouts (native/fast_path.cc): flows the gateway has
 * decided, keyed as the program (at the XDP or the tc hook) reads them off the wire, each with the
 * action the program repeats (DNAT, checksum deltas, next hop, counter slot), and the counters it
 * adds to.
 *
 * Key (20 bytes, wire order): outer source, VNI (3 bytes, then 0), inner source, inner
 * destination, source port, destination port. Action (48 bytes): see ActionField. Counters (64
 * bytes per slot): packets, IP bytes, DF bits cleared, and frames dropped after decapsulation
 * because the kernel refused a change, each a u64 the program adds to atomically; then the flow's
 * export stream as the program follows it: the sequence it expects next (u32), whether it has
 * one (u32), and gaps, units lost in them and resets (u64 each).
 */
import { SocketError } from '../../control/errors.js';
import { writeU16, writeU32 } from '../../proto/bytes.js';
import { native, socketError, type NativeAddon } from './index.js';

export const KEY_BYTES = 20;
export const ACTION_BYTES = 48;
const COUNTER_BYTES = 64;
/** Byte offsets of a slot's sequence fields. */
const KNOWN = 36;
const GAPS = 40;

/** Byte offsets of an action's fields. */
const ActionField = {
  /** u32: the generation this action belongs to; another generation's is ignored. */
  GENERATION: 0,
  /** The backend's address and port, wire order. */
  ADDR: 4,
  PORT: 8,
  /** u16: RFC 1624's Σ(~m + m') for the IP header and the UDP checksum, little-endian words. */
  IP_DELTA: 10,
  UDP_DELTA: 12,
  /** u16: the egress MTU; longer packets take the normal path, which fragments them. */
  MTU: 14,
  DST_MAC: 16,
  SRC_MAC: 22,
  /** u32: the device the frame is redirected to. */
  IFINDEX: 28,
  /** u32: the counter slot. */
  SLOT: 32,
  FLAGS: 36,
  /** u8: the export protocol whose sequence the program follows (ExportKind). */
  KIND: 37,
  /** The stream's domain and sFlow agent, wire order: datagrams of other streams take the normal path. */
  DOMAIN: 40,
  AGENT: 44,
} as const;

export const ActionFlag = { CLEAR_DF: 1, DECREMENT_TTL: 2 } as const;

/**
 * Export headers the program follows the sequence of. IPFIX is not among them: its sequence
 * counts data records, which only templates tell apart.
 */
export const ExportKind = { NONE: 0, NETFLOW5: 1, NETFLOW9: 2, SFLOW5: 3 } as const;

/** The export stream a flow carries, as the normal path identified it. */
export interface ExportStream {
  kind: number;
  /** v5: engine type << 8 | engine id; v9: source ID; sFlow: sub-agent ID. */
  domain: number;
  /** sFlow: the IPv4 agent address as a number; else 0. */
  agent: number;
}

export interface FlowKey {
  /** Outer and inner addresses as int32 (readI32's form); ports and VNI as numbers. */
  outerSrc: number;
  vni: number;
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
}

export interface FlowAction {
  generation: number;
  /** The backend: address as int32, port (0 keeps the packet's). */
  addr: number;
  port: number;
  mtu: number;
  dstMac: Uint8Array;
  srcMac: Uint8Array;
  ifindex: number;
  slot: number;
  flags: number;
  export: ExportStream;
}

export function encodeKey(k: FlowKey, into: Uint8Array): Uint8Array {
  writeU32(into, 0, k.outerSrc >>> 0);
  writeU32(into, 4, (k.vni & 0xffffff) << 8);
  writeU32(into, 8, k.src >>> 0);
  writeU32(into, 12, k.dst >>> 0);
  writeU16(into, 16, k.srcPort);
  writeU16(into, 18, k.dstPort);
  return into;
}

/** The program reads 16-bit words little-endian; a wire word [a, b] reads as a | b << 8. */
function leWord(wire: number): number {
  return ((wire & 0xff) << 8) | (wire >>> 8);
}

/** Σ(~m + m') over pairs of wire-order 16-bit words, folded to 16 bits, in the program's byte order. */
function checksumDelta(words: [number, number][]): number {
  let sum = 0;
  for (const [from, to] of words) sum += (~leWord(from) & 0xffff) + leWord(to);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Encodes the action for a packet of flow `k`: its checksum deltas depend on the key's destination. */
export function encodeAction(k: FlowKey, a: FlowAction, into: Uint8Array): Uint8Array {
  const view = new DataView(into.buffer, into.byteOffset, into.byteLength);
  const port = a.port || k.dstPort;
  const addrWords: [number, number][] = [
    [k.dst >>> 16, a.addr >>> 16],
    [k.dst & 0xffff, a.addr & 0xffff],
  ];
  into.fill(0, 0, ACTION_BYTES);
  view.setUint32(ActionField.GENERATION, a.generation, true);
  writeU32(into, ActionField.ADDR, a.addr >>> 0);
  writeU16(into, ActionField.PORT, port);
  view.setUint16(ActionField.IP_DELTA, checksumDelta(addrWords), true);
  view.setUint16(ActionField.UDP_DELTA, checksumDelta([...addrWords, [k.dstPort, port]]), true);
  view.setUint16(ActionField.MTU, a.mtu, true);
  into.set(a.dstMac.subarray(0, 6), ActionField.DST_MAC);
  into.set(a.srcMac.subarray(0, 6), ActionField.SRC_MAC);
  view.setUint32(ActionField.IFINDEX, a.ifindex, true);
  view.setUint32(ActionField.SLOT, a.slot, true);
  into[ActionField.FLAGS] = a.flags;
  into[ActionField.KIND] = a.export.kind;
  if (a.export.kind === ExportKind.NETFLOW5) writeU16(into, ActionField.DOMAIN, a.export.domain & 0xffff);
  else writeU32(into, ActionField.DOMAIN, a.export.domain >>> 0);
  writeU32(into, ActionField.AGENT, a.export.agent >>> 0);
  return into;
}

/** One slot's counts. */
export interface SlotCounts {
  packets: number;
  bytes: number;
  dfCleared: number;
  /** Dropped half-way: the kernel refused a change after the outer headers were taken off. */
  aborted: number;
  /** The export stream's sequence jumps forward, the units they skipped, and steps back. */
  gaps: number;
  lost: number;
  resets: number;
}

/** The three maps, created together; the program gets their fds when it is attached. */
export class FastPathMaps {
  readonly flowsFd: number;
  readonly countersFd: number;
  readonly controlFd: number;
  readonly slots: number;
  /** u32 halves of the u64 counters, shared with the program. */
  readonly #counters: Uint32Array;
  readonly #control: Uint32Array;
  readonly #native: NativeAddon;
  #closed = false;

  /** @throws SocketError `code` (EPERM...: MG_ERR_XDP or MG_ERR_TC, by the hook) or MG_ERR_NATIVE. */
  constructor(maxFlows: number, slots: number, code = 'MG_ERR_XDP') {
    this.#native = native();
    try {
      const m = this.#native.fastPathMaps(maxFlows, slots);
      this.flowsFd = m.flowsFd;
      this.countersFd = m.countersFd;
      this.controlFd = m.controlFd;
      this.#counters = new Uint32Array(m.counters);
      this.#control = new Uint32Array(m.control);
    } catch (err) {
      throw socketError(err, code, 'fast path maps');
    }
    this.slots = slots;
  }

  /** What the program needs at attach time. */
  get fds(): { flowsFd: number; countersFd: number; controlFd: number } {
    return { flowsFd: this.flowsFd, countersFd: this.countersFd, controlFd: this.controlFd };
  }

  /** The generation actions must carry to be used; 0 turns the fast path off. */
  get generation(): number {
    return Atomics.load(this.#control, 0);
  }

  set generation(g: number) {
    Atomics.store(this.#control, 0, g >>> 0);
  }

  /** Adds or replaces a flow's action. @throws SocketError when the kernel refuses. */
  put(key: Uint8Array, action: Uint8Array): void {
    if (this.#closed) throw new SocketError('MG_ERR_XDP', 'EBADF', 'fast path maps are closed');
    try {
      this.#native.fastPathPut(this.flowsFd, key, action);
    } catch (err) {
      throw socketError(err, 'MG_ERR_XDP', 'fast path flow');
    }
  }

  /** Slot `slot`'s counts so far, into `out`. */
  read(slot: number, out: SlotCounts): SlotCounts {
    const at = (slot * COUNTER_BYTES) / 4;
    out.packets = this.u64(at);
    out.bytes = this.u64(at + 2);
    out.dfCleared = this.u64(at + 4);
    out.aborted = this.u64(at + 6);
    out.gaps = this.u64(at + GAPS / 4);
    out.lost = this.u64(at + GAPS / 4 + 2);
    out.resets = this.u64(at + GAPS / 4 + 4);
    return out;
  }

  /** Forgets the sequence slot `slot` expects, before it serves another flow. */
  forgetSequence(slot: number): void {
    Atomics.store(this.#counters, (slot * COUNTER_BYTES + KNOWN) / 4, 0);
  }

  /** A u64 the program may be adding to: the high half read again catches a carry in between. */
  private u64(at: number): number {
    const c = this.#counters;
    for (;;) {
      const high = c[at + 1];
      const low = c[at];
      if (c[at + 1] === high) return low + high * 2 ** 32;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.generation = 0;
    for (const fd of [this.flowsFd, this.countersFd, this.controlFd]) this.#native.close(fd);
  }
}
