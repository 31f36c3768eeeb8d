import { base64Length, IMAGE_TYPE_INFO, IMAGE_TYPES } from './imageTypes.js'
import type { ImageType } from './imageTypes.js'

export interface SizeEstimatorOptions {
  /** Raw (decoded) image size per type, used until that type has been observed. */
  defaults?: Partial<Record<ImageType, number>>
  /** How many recent observations per type are remembered. */
  window?: number
}

const DEFAULT_WINDOW = 32

/** `"type":"` + `",` around the base64 text of one entry of an upstream answer. */
function entryOverhead(type: ImageType): number {
  return type.length + 6
}

/**
 * Predicts how many bytes one image takes in an upstream `/omni/get/images` answer, to plan
 * chunks under Incode's response cap.
 *
 * Once a type has been observed, the estimate is the largest of its last `window` observations,
 * not their mean: an under-estimate costs a 502 and a retry of the whole chunk, an over-estimate
 * only an extra (parallel) upstream call. The window lets the estimate come down again when
 * images get smaller (e.g. a capture setting changed), while staying high for a while.
 *
 * A type refused alone as too large is marked (markTooLarge) rather than observed: the mark is
 * a guess, not a size, so the next real observation of that type replaces it. One bad spell of
 * refusals thus costs at most one call of its own per marked type, not a window of poisoned plans.
 */
export class SizeEstimator {
  readonly #defaults = new Map<ImageType, number>()
  readonly #window: number
  readonly #observed = new Map<ImageType, { sizes: number[]; next: number }>()
  /** Types refused alone as too large, with the size assumed for them until really observed. */
  readonly #tooLarge = new Map<ImageType, number>()

  constructor(options: SizeEstimatorOptions = {}) {
    const window = options.window ?? DEFAULT_WINDOW
    if (!Number.isSafeInteger(window) || window < 1) {
      throw new RangeError(`SizeEstimator window must be a positive integer, got ${window}`)
    }
    this.#window = window
    for (const type of IMAGE_TYPES) {
      const raw = options.defaults?.[type] ?? IMAGE_TYPE_INFO[type].estimatedBytes
      if (!Number.isFinite(raw) || raw < 0) {
        throw new RangeError(`SizeEstimator default for ${type} must be a non-negative number, got ${raw}`)
      }
      this.#defaults.set(type, base64Length(raw))
    }
  }

  /** Expected bytes of this type's entry in an answer: base64 length, key, quotes, colon, comma. */
  estimate(type: ImageType): number {
    const observed = this.#observed.get(type)
    let base64Bytes = this.#defaults.get(type) ?? 0
    if (observed) {
      base64Bytes = 0
      for (const size of observed.sizes) if (size > base64Bytes) base64Bytes = size
    }
    const marked = this.#tooLarge.get(type)
    if (marked !== undefined && marked > base64Bytes) base64Bytes = marked
    return base64Bytes + entryOverhead(type)
  }

  /** Expected bytes of an answer holding these types' entries (without its braces). */
  estimateTotal(types: readonly ImageType[]): number {
    let total = 0
    for (const type of types) total += this.estimate(type)
    return total
  }

  /** Records the length of a base64 value really received for `type`; it replaces a too-large mark. */
  observe(type: ImageType, base64Bytes: number): void {
    if (!Number.isFinite(base64Bytes) || base64Bytes < 0) {
      throw new RangeError(`observed size of ${type} must be a non-negative number, got ${base64Bytes}`)
    }
    this.#tooLarge.delete(type)
    const observed = this.#observed.get(type)
    if (!observed) {
      this.#observed.set(type, { sizes: [base64Bytes], next: 1 % this.#window })
      return
    }
    // Ring buffer: overwrite the oldest observation once the window is full.
    observed.sizes[observed.next] = base64Bytes
    observed.next = (observed.next + 1) % this.#window
  }

  /**
   * Incode refused `type` alone as too large: plan it at least `base64Bytes` (so that it gets a
   * call of its own) until a real size of it is observed.
   */
  markTooLarge(type: ImageType, base64Bytes: number): void {
    if (!Number.isFinite(base64Bytes) || base64Bytes < 0) {
      throw new RangeError(`too-large mark of ${type} must be a non-negative number, got ${base64Bytes}`)
    }
    this.#tooLarge.set(type, base64Bytes)
  }

  /** Whether `type` carries a too-large mark (for tests and diagnostics). */
  isMarkedTooLarge(type: ImageType): boolean {
    return this.#tooLarge.has(type)
  }
}
