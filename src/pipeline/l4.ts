/** Upper-layer facts the rules match on: protocols with 16-bit ports at the start of the header. */
import type { PacketVector } from '../core/vector.js';

export const PROTO_UDP = 17;
export const PROTO_TCP = 6;

const PORTED = new Uint8Array(256);
PORTED[6] = 1; // TCP
PORTED[17] = 1; // UDP
PORTED[132] = 1; // SCTP
PORTED[136] = 1; // UDP-Lite


/**
 * Records the protocol and, when the header is present, the ports of packet `i`. Returns false
 * when a protocol with ports has fewer than 4 bytes of header (a truncated packet).
 */
export function readL4(vec: PacketVector, i: number, protocol: number, l4: number): boolean {
  vec.protocol[i] = protocol;
  vec.srcPort[i] = 0;
  vec.dstPort[i] = 0;
  if (PORTED[protocol] === 0) {
    vec.l4[i] = l4;
    return true;
  }
  // TCP's checksum sits at byte 16: DNAT needs the whole minimal header (RFC 9293), others 4 bytes.
  if (vec.end[i] - l4 < (protocol === PROTO_TCP ? 20 : 4)) return false;
  const b = vec.data[i];
  vec.l4[i] = l4;
  vec.srcPort[i] = (b[l4] << 8) | b[l4 + 1];
  vec.dstPort[i] = (b[l4 + 2] << 8) | b[l4 + 3];
  return true;
}
