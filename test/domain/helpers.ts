/** Test helpers for the domain tests: a tiny seeded PRNG so random tests are reproducible. */

/** mulberry32: a small, fast 32-bit PRNG; good enough to generate test cases. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

export class Rng {
  readonly #next: () => number

  constructor(readonly seed: number) {
    this.#next = mulberry32(seed)
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.#next()
  }

  /** Uniform integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.#next() * (max - min + 1))
  }

  bool(probability = 0.5): boolean {
    return this.#next() < probability
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(0, items.length - 1)]
    if (item === undefined) throw new Error('pick from an empty list')
    return item
  }

  shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items]
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.int(0, i)
      const a = copy[i] as T
      copy[i] = copy[j] as T
      copy[j] = a
    }
    return copy
  }

  /** A random subset (each item kept with `probability`), in the original order. */
  subset<T>(items: readonly T[], probability = 0.5): T[] {
    return items.filter(() => this.bool(probability))
  }

  /** Random bytes, reproducible from the seed. */
  bytes(length: number): Buffer {
    const buffer = Buffer.allocUnsafe(length)
    let i = 0
    for (; i + 4 <= length; i += 4) buffer.writeUInt32LE(Math.floor(this.#next() * 4294967296), i)
    for (; i < length; i++) buffer[i] = this.int(0, 255)
    return buffer
  }
}

/** Seeds for the property-style loops; a failure message names its seed so it can be replayed. */
export const SEEDS: readonly number[] = [1, 2, 3, 42, 1337, 20240601, 0xdecafbad, 0x5eed]
