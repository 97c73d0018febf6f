/**
 * Batch and raw sockets through the small native addon in native/ (built by `npm install`).
 *
 * Node's dgram can neither batch (one syscall and one Buffer per datagram) nor send raw IP
 * packets (needed to keep the exporter's source address). The addon adds exactly that and
 * nothing more; every decision stays here and above:
 *
 * - {@link UdpReceiver}: recvmmsg into a slot arena allocated once by JS (zero copy, no
 *   allocation per packet), SO_REUSEPORT, large SO_RCVBUF, poll-based waiting.
 * - {@link RawSender}: sendmmsg of complete IPv4/IPv6 packets (we write the IP header).
 * - {@link PacketSender}: sendmmsg of whole Ethernet frames on one device (AF_PACKET), which
 *   skips the kernel's routing and IP output per packet ("packet egress mode").
 * - {@link UdpSender}: sendmmsg of UDP payloads from our own address ("udp egress mode").
 *
 * Socket creation failures throw {@link SocketError} (MG_ERR_LISTEN, MG_ERR_RAW_SOCKET,
 * MG_ERR_NATIVE when the addon is not built). The data path never throws on packet errors:
 * batch calls return counts and expose `lastErrno` ('EMSGSIZE', ...); they throw TypeError
 * only for invalid arguments (wrong array types, arrays too small, packets outside the arena).
 *
 * Addresses are numbers in host order for IPv4 (192.0.2.1 = 0xc0000201) and 16 bytes per
 * packet for IPv6. Linux only.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { SocketError } from '../../control/errors.js';

/** What the addon exports (see native/mirrorgate_native.cc for the C++ side). */
export interface NativeAddon {
  udpOpen(address: string, port: number, reusePort: boolean, rcvbufBytes: number): { fd: number; port: number; rcvbufBytes: number };
  rawOpen(family: 4 | 6, sndbufBytes: number): { fd: number; sndbufBytes: number };
  packetOpen(ifindex: number, sndbufBytes: number): { fd: number; sndbufBytes: number };
  udpSendOpen(address: string, port: number, sndbufBytes: number): { fd: number; port: number; sndbufBytes: number };
  recv(
    fd: number, arena: Uint8Array | ArrayBuffer, slotSize: number, max: number,
    lengths: Uint32Array, srcAddr: Uint32Array, srcPort: Uint16Array, truncated: Uint8Array, srcAddr6: Uint8Array | null,
  ): number;
  send(
    fd: number, arena: Uint8Array | ArrayBuffer, offsets: Uint32Array, lengths: Uint32Array, count: number,
    dst4: Uint32Array | null, dst6: Uint8Array | null, dstPort: Uint16Array | null, waitWhenFull: boolean,
  ): number;
  wait(fd: number, timeoutMs: number): number;
  waitAny(fds: Int32Array, count: number, timeoutMs: number): number;
  waitAsync(fd: number, timeoutMs: number): Promise<number>;
  shutdown(fd: number): void;
  close(fd: number): void;
  errnoName(errno: number): string;
  lastErrno(): number;
  busyWaits(): number;
  xdpAttach(
    ifindex: number, queues: number, mac: Uint8Array, dstAddr: number, port1: number, port2: number, maxFrame: number,
    fast?: { flowsFd: number; countersFd: number; controlFd: number },
  ): { linkFd: number; mapFd: number };
  fastPathMaps(maxFlows: number, slots: number): { flowsFd: number; countersFd: number; controlFd: number; counters: ArrayBuffer; control: ArrayBuffer };
  fastPathPut(flowsFd: number, key: Uint8Array, action: Uint8Array): void;
  tcAttach(
    ifindex: number, dstAddr: number, vxlanPort: number, fast: { flowsFd: number; countersFd: number; controlFd: number },
    how: 'link' | 'filter' | 'auto',
  ): { fd: number; via: 'link' | 'filter' };
  tcDetachFilter(ifindex: number, progFd: number): boolean;
  /** The clsact filter's preference (native/tc_filter.h). */
  readonly tcFilterPref: number;
  xskOpen(ifindex: number, queue: number, mapFd: number, frames: number, frameSize: number): { fd: number; zeroCopy: boolean };
  xskRecv(fd: number, arena: Uint8Array, slotSize: number, max: number, lengths: Uint32Array): number;
  xskDrops(fd: number): number;
  xskClose(fd: number): void;
}

/** Error thrown by the addon's open functions. */
interface NativeErrnoError extends Error {
  syscall: string;
  errno: number;
  errnoName: string;
}

/** Path of the addon relative to the package root. */
export const ADDON_PATH = 'native/build/Release/mirrorgate_native.node';

let addon: NativeAddon | null = null;
let addonError: string | null = null;
let loaded = false;

/** The package root: the first directory at or above this module holding package.json (works from dist/ and build/src/). */
function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

function load(): NativeAddon | null {
  if (loaded) return addon;
  loaded = true;
  const root = packageRoot();
  if (root === null) {
    addonError = 'package.json not found above ' + fileURLToPath(import.meta.url);
    return null;
  }
  const file = join(root, ADDON_PATH);
  if (!existsSync(file)) {
    addonError = `${file} does not exist`;
    return null;
  }
  try {
    addon = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (err) {
    addonError = `${file}: ${(err as Error).message}`;
  }
  return addon;
}

/** True when the native addon is built and loads. */
export function nativeAvailable(): boolean {
  return load() !== null;
}

/** Why the addon did not load, or null when it did (or was not tried yet and loads). */
export function loadError(): string | null {
  load();
  return addonError;
}

/** The addon, for the other modules of src/io/native; throws MG_ERR_NATIVE when it is not built. */
export function native(): NativeAddon {
  const a = load();
  if (a !== null) return a;
  throw new SocketError(
    'MG_ERR_NATIVE',
    addonError !== null && addonError.endsWith('does not exist') ? 'ENOENT' : 'ELIBBAD',
    `native addon not available (${addonError}) — it is built by \`npm install\` (or \`npm run install\`), ` +
      'which needs g++, make and python3; raw egress and batch receive are unavailable until then',
  );
}

/** Name of an errno number ('EPERM'); throws MG_ERR_NATIVE when the addon is missing. */
export function errnoName(errno: number): string {
  return native().errnoName(errno);
}

function isErrnoError(err: unknown): err is NativeErrnoError {
  return err instanceof Error && typeof (err as Partial<NativeErrnoError>).errnoName === 'string';
}

/** What an XDP error means, per errno; other errnos show the addon's message. */
const XDP_HINTS: Record<string, string> = {
  EPERM: 'XDP ingress needs CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW (or root)',
  EBUSY: 'another XDP program is attached to this interface (`ip link show` names it)',
  EOPNOTSUPP: 'this interface or kernel cannot run XDP',
  EAFNOSUPPORT: 'this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)',
};

const TC_HINTS: Record<string, string> = {
  EPERM: 'the tc fast path needs CAP_NET_ADMIN and CAP_BPF (or root)',
  ENODEV: 'no such interface',
};

/** One line saying what is missing, per errno, for each kind of socket. */
function hint(code: string, e: NativeErrnoError): string {
  // The verifier's log (when it refused the program) follows the errno in the addon's message.
  if (code === 'MG_ERR_XDP') return XDP_HINTS[e.errnoName] ?? e.message;
  if (code === 'MG_ERR_TC') {
    return TC_HINTS[e.errnoName] ?? e.message;
  }
  switch (e.errnoName) {
    case 'EPERM':
    case 'EACCES':
      return code === 'MG_ERR_RAW_SOCKET'
        ? 'raw egress needs root or CAP_NET_RAW (or use egress.mode: udp)'
        : 'ports below 1024 need root or CAP_NET_BIND_SERVICE';
    case 'EADDRINUSE':
      return 'another process owns this address/port';
    case 'EADDRNOTAVAIL':
      return 'no local interface has this address';
    case 'EAFNOSUPPORT':
      return 'this address family (IPv6?) is disabled or unsupported on this host';
    case 'EMFILE':
    case 'ENFILE':
      return 'out of file descriptors (raise ulimit -n)';
    case 'ENOBUFS':
    case 'ENOMEM':
      return 'the kernel is out of memory for sockets';
    case 'EINVAL':
      if (e.syscall === 'inet_pton') return 'not an IPv4 or IPv6 address';
  }
  return `${e.syscall} failed`;
}

/** Converts an addon creation error to SocketError; argument TypeErrors pass through. */
export function socketError(err: unknown, code: string, what: string): unknown {
  if (!isErrnoError(err)) return err;
  return new SocketError(code, err.errnoName, `${what}: ${err.errnoName} — ${hint(code, err)}`);
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Result of waiting for a receive socket. 'closed': the socket was shut down or closed. */
export type WaitResult = 'readable' | 'timeout' | 'closed';

function waitResult(r: number): WaitResult {
  return r > 0 ? 'readable' : r === 0 ? 'timeout' : 'closed';
}

/**
 * Blocks the calling thread until `fd` is readable or `timeoutMs` passes (poll(2)).
 * For worker threads, which may receive a {@link UdpReceiver.fd} in a message: fds are
 * process-wide, and the addon loads in workers too. Returns 'closed' once the owner closed it.
 */
export function waitReadable(fd: number, timeoutMs: number): WaitResult {
  return waitResult(native().wait(fd, timeoutMs));
}

/**
 * Blocks until one of `fds[0..count)` (at most 8) is readable: bit i set for fds[i]; 0 on
 * timeout, -1 when one was closed. A worker serves its VXLAN, GENEVE and XDP sockets with it.
 */
export function waitAny(fds: Int32Array, count: number, timeoutMs: number): number {
  return native().waitAny(fds, count, timeoutMs);
}

/**
 * Memory a receive batch lands in, allocated once and reused for every {@link UdpReceiver.recv}.
 * After `n = recv()`, for i < n: datagram i is `arena[i*slotSize .. i*slotSize + lengths[i])`,
 * from `srcAddr[i]:srcPort[i]`; `truncated[i]` is 1 when it was longer than `slotSize`
 * (only the first slotSize bytes were kept).
 */
export interface RecvBuffers {
  readonly slots: number;
  readonly slotSize: number;
  readonly arena: Uint8Array;
  readonly lengths: Uint32Array;
  /** IPv4 source, host order; 0 for IPv6 sources that are not IPv4-mapped. */
  readonly srcAddr: Uint32Array;
  readonly srcPort: Uint16Array;
  readonly truncated: Uint8Array;
  /** 16 bytes per slot (IPv4 sources as ::ffff:a.b.c.d), or null when not wanted. */
  readonly srcAddr6: Uint8Array | null;
}

/**
 * Allocates {@link RecvBuffers}. `shared: true` backs them with SharedArrayBuffers so
 * worker threads can receive into / read the same memory.
 */
export function allocRecvBuffers(slots: number, slotSize: number, opts: { ipv6?: boolean; shared?: boolean } = {}): RecvBuffers {
  if (!Number.isInteger(slots) || slots < 1) throw new TypeError(`slots must be a positive integer, got ${slots}`);
  if (!Number.isInteger(slotSize) || slotSize < 1) throw new TypeError(`slotSize must be a positive integer, got ${slotSize}`);
  const mem = (bytes: number): ArrayBufferLike => (opts.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  return {
    slots,
    slotSize,
    arena: new Uint8Array(mem(slots * slotSize)),
    lengths: new Uint32Array(mem(slots * 4)),
    srcAddr: new Uint32Array(mem(slots * 4)),
    srcPort: new Uint16Array(mem(slots * 2)),
    truncated: new Uint8Array(mem(slots)),
    srcAddr6: opts.ipv6 ? new Uint8Array(mem(slots * 16)) : null,
  };
}

export interface UdpReceiverOptions {
  /** Local IPv4 or IPv6 address ('0.0.0.0', '::' for dual stack). */
  address: string;
  /** Local port; 0 picks a free one (see {@link UdpReceiver.port}). */
  port: number;
  /** Set SO_REUSEPORT so several receivers share the port (default true). */
  reusePort?: boolean;
  /**
   * Requested SO_RCVBUF (default {@link DEFAULT_RCVBUF_BYTES}; beyond net.core.rmem_max only
   * with CAP_NET_ADMIN).
   */
  rcvbufBytes?: number;
  /** Buffers to receive into; default allocRecvBuffers(slots, slotSize, {ipv6: address is IPv6}). */
  buffers?: RecvBuffers;
  /** Default 64. */
  slots?: number;
  /** Default 9216: a jumbo-frame mirror packet fits. */
  slotSize?: number;
}

/** The receive buffer a {@link UdpReceiver} asks for: room for bursts of tens of thousands of datagrams. */
export const DEFAULT_RCVBUF_BYTES = 64 << 20;

/**
 * What to tell an operator about a receive buffer the kernel granted (as SO_RCVBUF reports it,
 * twice the usable size), or null when it is what was asked. Without CAP_NET_ADMIN the kernel
 * caps the request at net.core.rmem_max (208 KiB by default): a few hundred mirrored packets.
 */
export function rcvbufAdvice(grantedBytes: number, askedBytes = DEFAULT_RCVBUF_BYTES): string | null {
  if (grantedBytes >= askedBytes) return null;
  const kib = (n: number) => `${Math.round(n / 1024)} KiB`;
  return (
    `receive buffer ${kib(grantedBytes / 2)} per socket, ${kib(askedBytes)} asked: net.core.rmem_max caps it; ` +
    `a burst larger than that is dropped by the kernel (sysctl -w net.core.rmem_max=${askedBytes}, or grant CAP_NET_ADMIN)`
  );
}

/** A non-blocking UDP socket read in batches (recvmmsg) into preallocated {@link RecvBuffers}. */
export class UdpReceiver {
  readonly address: string;
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** The socket fd, e.g. for {@link waitReadable} in a worker thread. */
  readonly fd: number;
  /** SO_RCVBUF as granted by the kernel (it reports twice the usable size). */
  readonly rcvbufBytes: number;
  /** The buffers recv() fills by default. */
  readonly buffers: RecvBuffers;
  readonly #native: NativeAddon;
  #closed = false;
  #pendingWaits = 0;
  #lastErrno: string | null = null;

  /** @throws SocketError MG_ERR_LISTEN (e.g. EADDRINUSE) or MG_ERR_NATIVE. */
  constructor(opts: UdpReceiverOptions) {
    this.#native = native();
    const ipv6 = opts.address.includes(':');
    this.buffers = opts.buffers ?? allocRecvBuffers(opts.slots ?? 64, opts.slotSize ?? 9216, { ipv6 });
    let r: { fd: number; port: number; rcvbufBytes: number };
    try {
      r = this.#native.udpOpen(opts.address, opts.port, opts.reusePort ?? true, opts.rcvbufBytes ?? DEFAULT_RCVBUF_BYTES);
    } catch (err) {
      throw socketError(err, 'MG_ERR_LISTEN', `listen ${hostPort(opts.address, opts.port)}`);
    }
    this.address = opts.address;
    this.port = r.port;
    this.fd = r.fd;
    this.rcvbufBytes = r.rcvbufBytes;
  }

  /**
   * Reads up to `max` waiting datagrams into `into` without blocking; returns how many
   * (0 when none were waiting, or after close). Other receive errors set {@link lastErrno}.
   */
  recv(max: number = this.buffers.slots, into: RecvBuffers = this.buffers): number {
    if (this.#closed) return 0;
    const n = this.#native.recv(
      this.fd, into.arena, into.slotSize, Math.min(max, into.slots),
      into.lengths, into.srcAddr, into.srcPort, into.truncated, into.srcAddr6,
    );
    const e = this.#native.lastErrno();
    this.#lastErrno = e === 0 ? null : this.#native.errnoName(e);
    return n;
  }

  /** errno name of the last recv() failure other than "nothing waiting", or null. */
  get lastErrno(): string | null {
    return this.#lastErrno;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Blocks this thread until readable (poll). Only for worker threads or tests. */
  wait(timeoutMs: number): WaitResult {
    return this.#closed ? 'closed' : waitResult(this.#native.wait(this.fd, timeoutMs));
  }

  /**
   * Waits on a libuv pool thread without blocking the event loop. The pool thread is busy
   * until readable or timeout, so keep timeouts short (say <= 500 ms) and have one wait at a time.
   */
  async waitAsync(timeoutMs: number): Promise<WaitResult> {
    if (this.#closed) return 'closed';
    this.#pendingWaits++;
    try {
      const r = await this.#native.waitAsync(this.fd, timeoutMs);
      return this.#closed ? 'closed' : waitResult(r);
    } finally {
      // close() postponed releasing the fd number until no poll could still look at it.
      if (--this.#pendingWaits === 0 && this.#closed) this.#native.close(this.fd);
    }
  }

  /**
   * Closes the socket. Waiters in any thread wake up with 'closed' (shutdown(2) first);
   * the fd itself is released once pending waitAsync() calls have returned.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.shutdown(this.fd);
    if (this.#pendingWaits === 0) this.#native.close(this.fd);
  }
}

/**
 * What the senders share: one socket, a batch send that never throws on packet errors and names
 * the first one, and a close after which sending is a counted no-op.
 */
abstract class BatchSender {
  readonly fd: number;
  /** SO_SNDBUF as granted by the kernel. */
  readonly sndbufBytes: number;
  readonly #native: NativeAddon;
  readonly #waitWhenFull: boolean;
  #closed = false;
  #lastErrno: string | null = null;
  #busyWaits = 0;

  protected constructor(addon: NativeAddon, opened: { fd: number; sndbufBytes: number }, opts: SenderOptions) {
    this.#native = addon;
    this.fd = opened.fd;
    this.sndbufBytes = opened.sndbufBytes;
    this.#waitWhenFull = opts.waitWhenFull ?? true;
  }

  protected sendBatch(
    arena: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number,
    dst4: Uint32Array | null, dst6: Uint8Array | null, dstPort: Uint16Array | null,
  ): number {
    if (this.#closed) {
      this.#lastErrno = count > 0 ? 'EBADF' : null; // closed: nothing goes out, nothing throws
      this.#busyWaits = 0;
      return 0;
    }
    const sent = this.#native.send(this.fd, arena, offsets, lengths, count, dst4, dst6, dstPort, this.#waitWhenFull);
    this.#lastErrno = sent === count ? null : this.#native.errnoName(this.#native.lastErrno());
    this.#busyWaits = this.#native.busyWaits();
    return sent;
  }

  /** errno name of the first failure in the last send() ('EMSGSIZE', 'ENOBUFS'...), or null. */
  get lastErrno(): string | null {
    return this.#lastErrno;
  }

  /**
   * How often the last send() found the egress queue full and waited for it to drain before
   * retrying (at most about 1 ms per call; none for 10 ms after a wait that did not help).
   */
  get busyWaits(): number {
    return this.#busyWaits;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close(this.fd);
  }
}

/** Options shared by the senders. */
export interface SenderOptions {
  /** Requested SO_SNDBUF (default 16 MiB; beyond net.core.wmem_max only as root). */
  sndbufBytes?: number;
  /**
   * Wait (about 1 ms at most) for a full egress queue to drain before refusing packets (default
   * true). A traffic source that must not slow down when its receiver falls behind sets false.
   */
  waitWhenFull?: boolean;
}

export interface RawSenderOptions extends SenderOptions {
  family: 4 | 6;
}

/**
 * A raw IP socket (IP_HDRINCL / IPV6_HDRINCL) sending complete IP packets in batches
 * with sendmmsg. Needs root or CAP_NET_RAW. A full queue is waited out briefly
 * (see {@link SenderOptions.waitWhenFull}).
 */
export class RawSender extends BatchSender {
  readonly family: 4 | 6;

  /** @throws SocketError MG_ERR_RAW_SOCKET (EPERM without CAP_NET_RAW) or MG_ERR_NATIVE. */
  constructor(opts: RawSenderOptions) {
    if (opts.family !== 4 && opts.family !== 6) throw new TypeError(`family must be 4 or 6, got ${String(opts.family)}`);
    const n = native();
    let r: { fd: number; sndbufBytes: number };
    try {
      r = n.rawOpen(opts.family, opts.sndbufBytes ?? 16 << 20);
    } catch (err) {
      throw socketError(err, 'MG_ERR_RAW_SOCKET', `raw IPv${opts.family} socket`);
    }
    super(n, r, opts);
    this.family = opts.family;
  }

  /**
   * Sends packets 0..count-1: packet i is `arena[offsets[i] .. offsets[i] + lengths[i])`,
   * starting with its IPv4/IPv6 header, routed to `dst`: for family 4 a Uint32Array of
   * host-order addresses (dst[i]), for family 6 a Uint8Array with 16 bytes at i*16 (normally
   * the header's destination). Returns how many the kernel accepted; `count - sent` were
   * dropped. A refused packet (EMSGSIZE...) is skipped and the rest still go; a full queue
   * (EAGAIN/ENOBUFS) drops the rest of the batch. {@link lastErrno} names the first failure.
   * After close() it sends nothing and returns 0 (lastErrno EBADF).
   */
  send(arena: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, dst: Uint32Array | Uint8Array, count: number): number {
    if (this.family === 4) {
      if (!(dst instanceof Uint32Array)) throw new TypeError('IPv4 destinations must be a Uint32Array');
      return this.sendBatch(arena, offsets, lengths, count, dst, null, null);
    }
    if (!(dst instanceof Uint8Array)) throw new TypeError('IPv6 destinations must be a Uint8Array (16 bytes each)');
    return this.sendBatch(arena, offsets, lengths, count, null, dst, null);
  }
}

/**
 * An AF_PACKET socket bound to one device, sending complete Ethernet frames in batches with
 * sendmmsg. The kernel neither routes nor fragments them: the caller resolved the next hop and
 * sized the frames. Needs root or CAP_NET_RAW. A full queue is waited out briefly
 * (see {@link SenderOptions.waitWhenFull}).
 */
export class PacketSender extends BatchSender {
  readonly ifindex: number;

  /** @throws SocketError MG_ERR_RAW_SOCKET (EPERM without CAP_NET_RAW, ENODEV...) or MG_ERR_NATIVE. */
  constructor(ifindex: number, opts: SenderOptions = {}) {
    const n = native();
    let r: { fd: number; sndbufBytes: number };
    try {
      r = n.packetOpen(ifindex, opts.sndbufBytes ?? 16 << 20);
    } catch (err) {
      throw socketError(err, 'MG_ERR_RAW_SOCKET', `packet socket on interface ${ifindex}`);
    }
    super(n, r, opts);
    this.ifindex = ifindex;
  }

  /** Sends frames 0..count-1 (`arena[offsets[i] ..+ lengths[i])`); as {@link RawSender.send}. */
  send(arena: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    return this.sendBatch(arena, offsets, lengths, count, null, null, null);
  }
}

export interface UdpSenderOptions extends SenderOptions {
  /** Local IPv4 address to send from (default '0.0.0.0': chosen by routing). */
  bindAddress?: string;
  /** Local port (default 0: ephemeral, see {@link UdpSender.port}). */
  bindPort?: number;
}

/**
 * An ordinary IPv4 UDP socket sending payloads in batches with sendmmsg, from our own
 * address ("udp egress mode": no privileges needed, but the exporter's address is lost).
 */
export class UdpSender extends BatchSender {
  /** The bound local port. */
  readonly port: number;

  /** @throws SocketError MG_ERR_RAW_SOCKET (egress socket failure, e.g. EADDRINUSE on bindPort) or MG_ERR_NATIVE. */
  constructor(opts: UdpSenderOptions = {}) {
    const address = opts.bindAddress ?? '0.0.0.0';
    const port = opts.bindPort ?? 0;
    if (address.includes(':')) throw new TypeError(`UdpSender is IPv4 only, got bindAddress ${address}`);
    const n = native();
    let r: { fd: number; port: number; sndbufBytes: number };
    try {
      r = n.udpSendOpen(address, port, opts.sndbufBytes ?? 16 << 20);
    } catch (err) {
      throw socketError(err, 'MG_ERR_RAW_SOCKET', `udp egress socket ${hostPort(address, port)}`);
    }
    super(n, r, opts);
    this.port = r.port;
  }

  /**
   * Sends payloads 0..count-1: payload i is `arena[offsets[i] .. offsets[i] + lengths[i])`
   * to `dstAddr[i]` (IPv4, host order) port `dstPort[i]`. Same return value and error
   * handling as {@link RawSender.send}.
   */
  send(arena: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, dstAddr: Uint32Array, dstPort: Uint16Array, count: number): number {
    return this.sendBatch(arena, offsets, lengths, count, dstAddr, null, dstPort);
  }
}

/** '192.0.2.1' ↔ 0xc0000201 (host order, as the typed arrays above hold them). */
export { ipv4ToNumber as ipv4ToU32, numberToIpv4 as u32ToIpv4 } from '../../core/prefix-set.js';
