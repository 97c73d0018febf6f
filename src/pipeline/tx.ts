/**
 * Transmit: hands the whole frame to the egress backend once per batch and counts the outcome.
 * `forwarded` counts received packets that left (a copy or a later fragment is not a new packet);
 * `packets` counts everything put on the wire.
 */
import { defineNode } from '../core/node.js';
import { Flag, type PacketVector } from '../core/vector.js';
import { createSendResult } from '../io/sink.js';
import { type PipelineContext, PipelineNode } from './context.js';

const spec = defineNode({
  name: 'tx',
  next: [],
  errors: {},
  counters: {
    forwarded: 'received packets forwarded to a backend',
    packets: 'packets transmitted (copies and fragments included)',
    bytes: 'IP bytes transmitted',
    direct: 'of those, frames written straight to the egress device (egress.mode: packet)',
    busy_waits: 'times the egress queue was full and the worker waited for it to drain, then retried',
    errors: 'packets the egress socket refused',
    errors_enobufs: 'refused: socket buffer full (ENOBUFS/EAGAIN)',
    errors_emsgsize: 'refused: larger than the route MTU (EMSGSIZE)',
    errors_unreachable: 'refused: no route to the backend (ENETUNREACH/EHOSTUNREACH)',
    errors_other: 'refused for another reason (EPERM, EAFNOSUPPORT, ...)',
  },
});

/** Which counter a refusal goes to, by the errno name the sink reports. */
const ERRNO_COUNTER: Record<string, keyof typeof spec.c> = {
  ENOBUFS: 'errors_enobufs',
  EAGAIN: 'errors_enobufs',
  EWOULDBLOCK: 'errors_enobufs',
  EMSGSIZE: 'errors_emsgsize',
  ENETUNREACH: 'errors_unreachable',
  EHOSTUNREACH: 'errors_unreachable',
};

export class Tx extends PipelineNode<typeof spec> {
  private readonly result = createSendResult();

  constructor(ctx: PipelineContext) {
    super(spec, ctx);
  }

  process(vec: PacketVector, frame: Uint16Array, count: number): void {
    const { c } = this.spec;
    let forwarded = 0;
    for (let k = 0; k < count; k++) {
      const flags = vec.flags[frame[k]];
      if ((flags & Flag.DERIVED) === 0) forwarded++;
      if (flags & Flag.TRACED) this.sent(frame[k]);
    }
    const r = this.result;
    r.sent = r.bytes = r.direct = r.failed = r.busyWaits = 0;
    this.ctx.sink.send(vec, frame, count, this.ctx.tables, r);
    this.count(c.forwarded, forwarded);
    this.count(c.packets, r.sent);
    this.count(c.bytes, r.bytes);
    if (r.direct) this.count(c.direct, r.direct);
    if (r.busyWaits) this.count(c.busy_waits, r.busyWaits);
    if (r.failed) {
      // Counted under the batch's last reason: batches rarely fail for two reasons at once.
      this.count(c.errors, r.failed);
      this.count(c[ERRNO_COUNTER[r.lastError] ?? 'errors_other'], r.failed);
    }
  }
}
