/** Small, fast, deterministic pseudo-random helpers (not for cryptography). */

/** 32-bit FNV-1a hash of a string, never 0 (so it can seed xorshift). */
export function hashString(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  // final avalanche (murmur3 fmix32)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0 || 0x9e3779b9
}

/** mulberry32: returns a function yielding floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Fills `target` with xorshift32 output seeded by `seed`, a 32-bit word at a time where aligned. */
export function fillRandom(target: Uint8Array, seed: number): void {
  let x = seed >>> 0 || 0x9e3779b9
  const aligned = target.byteOffset % 4 === 0
  const words = aligned ? Math.floor(target.length / 4) : 0
  if (words > 0) {
    const view = new Uint32Array(target.buffer, target.byteOffset, words)
    for (let i = 0; i < words; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      view[i] = x
    }
  }
  for (let i = words * 4; i < target.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    target[i] = x & 0xff
  }
}
