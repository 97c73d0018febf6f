/**
 * A batch of packets, VPP's "vector": fixed slots in one preallocated arena plus per-packet
 * metadata as parallel typed arrays, so a batch of any size costs no allocation.
 *
 * Packet i lives in slot i. Its bytes are `data[i]` from `start[i]` to `end[i]`; `data[i]` is the
 * slot itself unless a node swapped in another buffer (a reassembled datagram). The first
 * `rxCapacity` slots take received packets; the rest are spares that nodes take with `alloc()`
 * for copies (replication) and fragments.
 */

/** Packet flags. */
export const Flag = {
  /** Trace this packet through the graph. */
  TRACED: 1,
  /** A copy or a later fragment made by a node, not a received packet (not counted as rx). */
  DERIVED: 2,
} as const;

export const NO_VNI = -1;

export interface VectorOptions {
  /** Packets received per batch. */
  rxCapacity: number;
  /** Extra slots for copies and fragments made while the batch runs. */
  spare: number;
  /** Bytes per slot: the largest frame accepted (jumbo frames need 9216 + headers). */
  slotSize: number;
  /** An arena to build on (the native receiver writes into it); allocated when absent. */
  arena?: Buffer;
}

export class PacketVector {
  readonly rxCapacity: number;
  readonly capacity: number;
  readonly slotSize: number;
  readonly arena: Buffer;
  readonly slot: Buffer[];
  readonly data: Buffer[];
  readonly start: Int32Array;
  readonly end: Int32Array;
  /** Inner IP header offset, and L4 header offset (-1 when there is none to read). */
  readonly l3: Int32Array;
  readonly l4: Int32Array;
  /** Inner IP version: 4 or 6. */
  readonly family: Uint8Array;
  readonly protocol: Uint8Array;
  readonly srcPort: Uint16Array;
  readonly dstPort: Uint16Array;
  /** Outer (mirror) header facts: the ENI that mirrored, the UDP ports, the session. */
  /** IPv4 outer source as int32 (the 32 bits of the address; see readI32). */
  readonly outerSrc: Int32Array;
  readonly outerSrcPort: Uint16Array;
  readonly outerDstPort: Uint16Array;
  readonly vni: Int32Array;
  /** Policy results: matched rule, destination and chosen backend (-1 before). */
  readonly rule: Int32Array;
  readonly destination: Int32Array;
  readonly backend: Int32Array;
  /** Telemetry sequence stream of the packet (see flow/exporters.ts), -1 when none. */
  readonly stream: Int32Array;
  readonly flags: Uint8Array;
  /** Packet sequence number, for traces. */
  readonly id: Float64Array;
  readonly timestampNs: Float64Array;
  /** Packets in use this batch (received + allocated). */
  count = 0;

  constructor(options: VectorOptions) {
    const { rxCapacity, spare, slotSize } = options;
    this.rxCapacity = rxCapacity;
    this.capacity = rxCapacity + spare;
    if (this.capacity > 0xffff) throw new RangeError('a vector holds at most 65535 packets');
    this.slotSize = slotSize;
    const bytes = this.capacity * slotSize;
    if (options.arena && options.arena.length < bytes) {
      throw new RangeError(`arena of ${options.arena.length} bytes is smaller than ${bytes}`);
    }
    // Not zero-filled: a slot is always written before it is read, and untouched spare pages stay
    // out of RSS until a burst of fragments or copies needs them.
    this.arena = options.arena ?? Buffer.allocUnsafeSlow(bytes);
    this.slot = [];
    for (let i = 0; i < this.capacity; i++) {
      this.slot.push(this.arena.subarray(i * slotSize, (i + 1) * slotSize));
    }
    this.data = this.slot.slice();
    const n = this.capacity;
    this.start = new Int32Array(n);
    this.end = new Int32Array(n);
    this.l3 = new Int32Array(n);
    this.l4 = new Int32Array(n);
    this.family = new Uint8Array(n);
    this.protocol = new Uint8Array(n);
    this.srcPort = new Uint16Array(n);
    this.dstPort = new Uint16Array(n);
    this.outerSrc = new Int32Array(n);
    this.outerSrcPort = new Uint16Array(n);
    this.outerDstPort = new Uint16Array(n);
    this.vni = new Int32Array(n);
    this.rule = new Int32Array(n);
    this.destination = new Int32Array(n);
    this.backend = new Int32Array(n);
    this.stream = new Int32Array(n);
    this.flags = new Uint8Array(n);
    this.id = new Float64Array(n);
    this.timestampNs = new Float64Array(n);
  }

  /** Starts a batch of `received` packets already written to slots 0..received-1. */
  begin(received: number): void {
    this.count = received;
    for (let i = 0; i < received; i++) this.reset(i);
  }

  /** Gives back every spare slot taken since the batch began (between sub-batches). */
  releaseSpares(received: number): void {
    this.count = received;
  }

  /** Takes a spare slot for a new packet; -1 when the batch has none left. */
  alloc(): number {
    if (this.count >= this.capacity) return -1;
    const i = this.count++;
    this.reset(i);
    this.flags[i] = Flag.DERIVED;
    return i;
  }

  /** Copies packet `from` (bytes and metadata) into a new spare slot; -1 when none is left. */
  clone(from: number): number {
    const i = this.alloc();
    if (i < 0) return -1;
    const len = this.end[from] - this.start[from];
    this.data[from].copy(this.slot[i], 0, this.start[from], this.end[from]);
    const shift = this.start[from];
    this.start[i] = 0;
    this.end[i] = len;
    this.l3[i] = this.l3[from] - shift;
    this.l4[i] = this.l4[from] < 0 ? -1 : this.l4[from] - shift;
    this.copyMeta(from, i);
    return i;
  }

  /** Copies everything but the bytes and their offsets. */
  copyMeta(from: number, to: number): void {
    this.family[to] = this.family[from];
    this.protocol[to] = this.protocol[from];
    this.srcPort[to] = this.srcPort[from];
    this.dstPort[to] = this.dstPort[from];
    this.outerSrc[to] = this.outerSrc[from];
    this.outerSrcPort[to] = this.outerSrcPort[from];
    this.outerDstPort[to] = this.outerDstPort[from];
    this.vni[to] = this.vni[from];
    this.rule[to] = this.rule[from];
    this.destination[to] = this.destination[from];
    this.backend[to] = this.backend[from];
    this.stream[to] = this.stream[from];
    this.flags[to] = this.flags[from] | Flag.DERIVED;
    this.id[to] = this.id[from];
    this.timestampNs[to] = this.timestampNs[from];
  }

  private reset(i: number): void {
    this.data[i] = this.slot[i];
    this.l3[i] = -1;
    this.l4[i] = -1;
    this.vni[i] = NO_VNI;
    this.rule[i] = -1;
    this.destination[i] = -1;
    this.backend[i] = -1;
    this.stream[i] = -1;
    this.flags[i] = 0;
  }
}
