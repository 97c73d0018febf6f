/** Big-endian field access on a caller's buffer; no bounds checks (callers check lengths first). */

export function readU16(buf: Uint8Array, off: number): number {
  return (buf[off] << 8) | buf[off + 1];
}

export function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

/**
 * The same 32 bits as readU32, as a signed int32. Hot paths use it for addresses and hashes:
 * V8 keeps int32 values unboxed, while an unsigned value of 2^31 or more becomes a heap number
 * whenever it crosses a call, so 198.18.x.x read with readU32 would allocate per packet. For the
 * same reason, decoders on the data path fill unsigned fields with `readI32(buf, off) >>> 0`: the
 * conversion happens in the decoder, whether or not V8 inlined the read.
 */
export function readI32(buf: Uint8Array, off: number): number {
  return (buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3];
}

export function writeU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 8) & 0xff;
  buf[off + 1] = v & 0xff;
}

export function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = (v >>> 16) & 0xff;
  buf[off + 2] = (v >>> 8) & 0xff;
  buf[off + 3] = v & 0xff;
}
