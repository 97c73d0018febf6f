/**
 * The fast path at a device's tc ingress hook (listen.fastPath hook tc): the program in
 * native/fast_path.cc. It forwards the frames of flows the fast path's maps hold an action for;
 * every other frame goes on to the kernel's receive path and the workers' sockets, whatever the
 * ingress mode. Unlike the XDP hook it works with any driver and MTU, and what it redirects is an
 * ordinary skb, so the egress device needs no XDP support.
 *
 * It is attached by a tcx link where the kernel has them (Linux 6.6), which the kernel removes
 * when the process ends however it ends. On older kernels it becomes a direct-action filter on
 * the device's clsact qdisc, which outlives a killed process: it has a fixed preference
 * ({@link TcProgram.filterPref}), so the next gateway on the device replaces it, and removal
 * leaves a filter alone that another gateway has replaced since.
 */
import type { FastPathMaps } from './fast-path.js';
import { native, socketError, type NativeAddon } from './index.js';
import { selectedAddress } from './xdp.js';

export type TcAttach = 'link' | 'filter';

export interface TcProgramOptions {
  iface: { name: string; ifindex: number };
  /** The listen address: '0.0.0.0' (or an IPv6 one) selects any destination address. */
  address: string;
  vxlanPort: number;
  fast: FastPathMaps;
  /** How to attach: 'auto' (default) takes a link where the kernel has tcx, else a filter. */
  attach?: TcAttach | 'auto';
}

/** The program on one interface, attached until {@link close}. */
export class TcProgram {
  /** How it is attached. */
  readonly via: TcAttach;
  readonly #iface: { name: string; ifindex: number };
  /** The link's fd (via link), or the program's (via filter). */
  readonly #fd: number;
  readonly #native: NativeAddon;
  #closed = false;

  /** @throws SocketError MG_ERR_TC (EPERM, ENODEV...) or MG_ERR_NATIVE. */
  constructor(opts: TcProgramOptions) {
    this.#native = native();
    this.#iface = opts.iface;
    try {
      const { fd, via } = this.#native.tcAttach(opts.iface.ifindex, selectedAddress(opts.address), opts.vxlanPort, opts.fast.fds, opts.attach ?? 'auto');
      this.#fd = fd;
      this.via = via;
    } catch (err) {
      throw socketError(err, 'MG_ERR_TC', `tc fast path on ${opts.iface.name}`);
    }
  }

  /** The clsact filter's preference: `tc filter del dev <if> ingress pref <it>` removes a leftover. */
  get filterPref(): number {
    return this.#native.tcFilterPref;
  }

  /**
   * Detaches the program: from here on every frame takes the kernel path. Never throws: returns
   * why a filter could not be removed (it then goes on forwarding known flows), or null.
   */
  close(): string | null {
    if (this.#closed) return null;
    this.#closed = true;
    let problem: string | null = null;
    if (this.via === 'filter') {
      try {
        this.#native.tcDetachFilter(this.#iface.ifindex, this.#fd);
      } catch (err) {
        problem = `tc fast path on ${this.#iface.name}: the filter is still attached (${(err as Error).message}); ` +
          `remove it with \`tc filter del dev ${this.#iface.name} ingress pref ${this.filterPref}\``;
      }
    }
    this.#native.close(this.#fd);
    return problem;
  }
}
