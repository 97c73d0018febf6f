/**
 * Integer hashing for flow stickiness and the rendezvous (highest-random-weight) table that maps
 * a key to a backend: with HRW, removing a backend moves only the keys it owned, and adding one
 * takes an even share from each of the others.
 */

/**
 * murmur3's 32-bit finaliser: full avalanche, a handful of multiplies. Results are signed int32
 * (unboxed in V8); mask them for a bucket, `>>> 0` them for arithmetic.
 */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

export function combine(a: number, b: number): number {
  return mix32(a ^ Math.imul(b, 0x9e3779b1));
}

/** Hash of the 16-byte address at `off`. */
export function hash16(buf: Uint8Array, off: number): number {
  let h = 0x6a09e667;
  for (let k = 0; k < 16; k += 4) {
    const w = (buf[off + k] << 24) | (buf[off + k + 1] << 16) | (buf[off + k + 2] << 8) | buf[off + k + 3];
    h = combine(h, w);
  }
  return h;
}

/** Buckets in a rendezvous table: enough for an even spread over tens of backends. */
export const TABLE_SIZE = 4096;

/**
 * For each bucket, the backend with the highest weighted HRW score among `eligible` ones.
 * Weighted per "Weighted Distributed Hash Tables" (score = -w / ln(u)), so a weight-2 backend
 * owns twice the buckets. Returns -1 in every bucket when none is eligible.
 */
export function rendezvousTable(
  backendIds: readonly number[],
  weights: readonly number[],
  eligible: readonly boolean[],
  size = TABLE_SIZE,
): Int16Array {
  const table = new Int16Array(size).fill(-1);
  for (let b = 0; b < size; b++) {
    let best = -1;
    let bestScore = -Infinity;
    for (let j = 0; j < backendIds.length; j++) {
      if (!eligible[j]) continue;
      const u = ((combine(mix32(b + 1), backendIds[j]) >>> 0) + 1) / 4294967297; // in (0, 1)
      const score = -weights[j] / Math.log(u);
      if (score > bestScore) {
        bestScore = score;
        best = j;
      }
    }
    table[b] = best;
  }
  return table;
}

/** Stable 32-bit id for a backend from its text form (so table order does not matter). */
export function stringId(text: string): number {
  let h = 0x811c9dc5; // FNV-1a, then mixed
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return mix32(h);
}
