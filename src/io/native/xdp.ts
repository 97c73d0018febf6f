/**
 * XDP ingress: mirror packets taken off the device by a small XDP program and handed to AF_XDP
 * sockets, one per receive queue, before the kernel's IP and UDP receive path runs. That path and
 * the recvmmsg after it cost about half of what a relayed packet costs the machine.
 *
 * The program (native/xdp.cc) selects unfragmented IPv4/UDP frames to our MAC, listen address and
 * tunnel ports that fit one ring frame; every other frame goes on to the kernel, whose UDP sockets
 * stay bound. So fragments, IPv6, jumbo frames and queues without a socket still arrive, by the
 * slower path, and the kernel never answers port-unreachable.
 */
import { readdirSync, readFileSync } from 'node:fs';

import { SocketError } from '../../control/errors.js';
import { ipv4ToNumber } from '../../core/prefix-set.js';
import { macFromText } from '../../proto/ethernet/packet.js';
import type { FastPathMaps } from './fast-path.js';
import { native, socketError, type NativeAddon } from './index.js';

/** Room the kernel keeps in front of each frame (XDP_PACKET_HEADROOM). */
const XDP_HEADROOM = 256;

/** What the gateway needs to know about the mirror-target interface. */
export interface XdpInterface {
  name: string;
  ifindex: number;
  mac: Uint8Array;
  /** Receive queues: one AF_XDP socket each. */
  queues: number;
}

/**
 * Reads an interface's index, MAC and receive queue count from sysfs. `setting` and `code` are
 * the configuration field that named it and the error code, for the error.
 */
export function readInterface(name: string, setting = 'listen.xdp.interface', code = 'MG_ERR_XDP'): XdpInterface {
  const dir = `/sys/class/net/${name}`;
  let ifindex: number;
  let address: string;
  let queues: number;
  try {
    ifindex = Number(readFileSync(`${dir}/ifindex`, 'utf8'));
    address = readFileSync(`${dir}/address`, 'utf8').trim();
    queues = readdirSync(`${dir}/queues`).filter((q) => q.startsWith('rx-')).length;
  } catch {
    throw new SocketError(code, 'ENODEV', `no interface ${JSON.stringify(name)} (${setting})`);
  }
  const mac = macFromText(address);
  if (!mac) {
    throw new SocketError(code, 'EINVAL', `${name} has no Ethernet address (${address}) (${setting})`);
  }
  return { name, ifindex, mac, queues: Math.max(queues, 1) };
}

export interface XdpProgramOptions {
  iface: XdpInterface;
  /** The listen address: '0.0.0.0' (or an IPv6 one) selects any destination address. */
  address: string;
  /** Tunnel ports to select; 0 entries are ignored (GENEVE off). */
  ports: number[];
  /** Bytes per ring frame (2048 or 4096): longer frames take the kernel path. */
  frameSize: number;
  /** The fast path's maps: with them, frames of known flows are forwarded by the program itself. */
  fast?: FastPathMaps;
}

/**
 * The outer destination address a program selects for a listen address, host order: 0 (any) for
 * '0.0.0.0' and for an IPv6 address (the programs see IPv4 only; the sockets decide the rest).
 */
export function selectedAddress(address: string): number {
  return address.includes(':') || address === '0.0.0.0' ? 0 : ipv4ToNumber(address);
}

/** The XDP program on one interface, attached until {@link close} (or the process ends). */
export class XdpProgram {
  /** The XSKMAP sockets register in, by queue. */
  readonly mapFd: number;
  readonly #linkFd: number;
  readonly #native: NativeAddon;
  #closed = false;

  /** @throws SocketError MG_ERR_XDP (EPERM, EBUSY...) or MG_ERR_NATIVE. */
  constructor(opts: XdpProgramOptions) {
    this.#native = native();
    const ports = opts.ports.filter((p) => p > 0);
    if (ports.length === 0 || ports.length > 2) throw new TypeError(`one or two tunnel ports expected, got ${opts.ports.join(', ')}`);
    try {
      const r = this.#native.xdpAttach(opts.iface.ifindex, opts.iface.queues, opts.iface.mac, selectedAddress(opts.address), ports[0], ports[ports.length - 1], opts.frameSize - XDP_HEADROOM, opts.fast?.fds);
      this.mapFd = r.mapFd;
      this.#linkFd = r.linkFd;
    } catch (err) {
      throw socketError(err, 'MG_ERR_XDP', `XDP program on ${opts.iface.name}`);
    }
  }

  /** Detaches the program: from here on every frame takes the kernel path. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close(this.#linkFd);
    this.#native.close(this.mapFd);
  }
}

export interface XdpReceiverOptions {
  iface: XdpInterface;
  queue: number;
  /** The program's map ({@link XdpProgram.mapFd}). */
  mapFd: number;
  /** Frames in the ring (a power of two); what a burst may hold before the kernel drops. */
  frames: number;
  frameSize: number;
}

/**
 * An AF_XDP socket on one receive queue. {@link recv} copies whole Ethernet frames into slots of
 * an arena, as {@link UdpReceiver.recv} does with datagrams; the caller parses the outer headers.
 */
export class XdpReceiver {
  readonly fd: number;
  readonly queue: number;
  /** True when the driver hands frames over without a copy (zero-copy mode). */
  readonly zeroCopy: boolean;
  readonly #native: NativeAddon;
  #closed = false;

  /** @throws SocketError MG_ERR_XDP or MG_ERR_NATIVE. */
  constructor(opts: XdpReceiverOptions) {
    this.#native = native();
    try {
      const r = this.#native.xskOpen(opts.iface.ifindex, opts.queue, opts.mapFd, opts.frames, opts.frameSize);
      this.fd = r.fd;
      this.zeroCopy = r.zeroCopy;
    } catch (err) {
      throw socketError(err, 'MG_ERR_XDP', `XDP socket on ${opts.iface.name} queue ${opts.queue}`);
    }
    this.queue = opts.queue;
  }

  /** Reads up to `max` frames into `arena` (frame i at i*slotSize, its length in lengths[i]); never blocks. */
  recv(arena: Uint8Array, slotSize: number, max: number, lengths: Uint32Array): number {
    return this.#closed ? 0 : this.#native.xskRecv(this.fd, arena, slotSize, max, lengths);
  }

  /** Frames the kernel dropped at this socket: its ring was full or had no free frame. */
  drops(): number {
    return this.#closed ? 0 : this.#native.xskDrops(this.fd);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.xskClose(this.fd);
  }
}

/**
 * Frames the kernel dropped at the given XDP sockets, read from any thread (fds are
 * process-wide); a socket closed meanwhile counts 0.
 */
export function readXdpDrops(fds: Iterable<number>): number {
  const addon = native();
  let drops = 0;
  for (const fd of fds) {
    try {
      drops += addon.xskDrops(fd);
    } catch {
      // closed by its worker since: its drops were counted while it lived
    }
  }
  return drops;
}
