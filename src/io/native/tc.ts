/**
 * The fast path at a device's tc ingress hook (listen.fastPath hook tc): the program in
 * native/fast_path.cc, attached by a tcx link. It forwards the frames of flows the fast path's
 * maps hold an action for; every other frame goes on to the kernel's receive path and the
 * workers' sockets, whatever the ingress mode. Unlike the XDP hook it works with any driver and
 * MTU, and what it redirects is an ordinary skb, so the egress device needs no XDP support.
 */
import type { FastPathMaps } from './fast-path.js';
import { native, socketError, type NativeAddon } from './index.js';
import { selectedAddress } from './xdp.js';

export interface TcProgramOptions {
  iface: { name: string; ifindex: number };
  /** The listen address: '0.0.0.0' (or an IPv6 one) selects any destination address. */
  address: string;
  vxlanPort: number;
  fast: FastPathMaps;
}

/** The program on one interface, attached until {@link close} (or the process ends). */
export class TcProgram {
  readonly #linkFd: number;
  readonly #native: NativeAddon;
  #closed = false;

  /** @throws SocketError MG_ERR_TC (EPERM, a kernel without tcx...) or MG_ERR_NATIVE. */
  constructor(opts: TcProgramOptions) {
    this.#native = native();
    try {
      this.#linkFd = this.#native.tcAttach(opts.iface.ifindex, selectedAddress(opts.address), opts.vxlanPort, opts.fast.fds);
    } catch (err) {
      throw socketError(err, 'MG_ERR_TC', `tc fast path on ${opts.iface.name}`);
    }
  }

  /** Detaches the program: from here on every frame takes the kernel path. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close(this.#linkFd);
  }
}
