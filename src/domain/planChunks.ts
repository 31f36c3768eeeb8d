import { IMAGE_TYPES } from './imageTypes.js'
import type { ImageType } from './imageTypes.js'
import { foldTypes } from './requestedTypes.js'

/** `{` and `}` around an answer's entries. */
const BRACES_BYTES = 2

const typeOrder = new Map<ImageType, number>(IMAGE_TYPES.map((type, index) => [type, index]))

function byTypeOrder(a: ImageType, b: ImageType): number {
  return (typeOrder.get(a) ?? 0) - (typeOrder.get(b) ?? 0)
}

/**
 * Splits `types` into upstream calls whose answers should each stay within `budgetBytes`
 * (sum of the types' estimates plus the braces), using first-fit decreasing: few chunks, and
 * the same plan for the same input. A type too big for the budget on its own gets a chunk to
 * itself rather than being dropped: the upstream may still answer it, or fail it alone.
 *
 * Duplicate types are folded. Chunks are listed largest-first (the order they were opened);
 * the types inside a chunk follow IMAGE_TYPES order.
 */
export function planChunks(
  types: readonly ImageType[],
  estimate: (type: ImageType) => number,
  budgetBytes: number,
): ImageType[][] {
  const sized = foldTypes(types).map((type) => ({ type, size: sanitise(estimate(type)) }))
  sized.sort((a, b) => b.size - a.size || byTypeOrder(a.type, b.type))

  const chunks: Array<{ types: ImageType[]; size: number }> = []
  for (const { type, size } of sized) {
    const fits = chunks.find((chunk) => chunk.size + size <= budgetBytes)
    if (fits) {
      fits.types.push(type)
      fits.size += size
    } else {
      chunks.push({ types: [type], size: BRACES_BYTES + size })
    }
  }
  return chunks.map((chunk) => chunk.types.sort(byTypeOrder))
}

/**
 * The per-call budget for a list that must be split anyway (it does not fit `budgetBytes`), sized
 * so that its calls run side by side: no smaller than its largest type (which needs a call of its
 * own anyway) nor than its share of `slots` parallel calls. Packing under it still uses as few
 * calls as fit, but the answer then takes about as long as the slowest of them rather than as
 * long as a full-budget call. A list that fits keeps `budgetBytes`, and so one call, whose answer
 * can be passed on untouched.
 */
export function parallelBudget(
  types: readonly ImageType[],
  estimate: (type: ImageType) => number,
  budgetBytes: number,
  slots: number,
): number {
  let largest = 0
  let total = 0
  for (const type of foldTypes(types)) {
    const size = sanitise(estimate(type))
    largest = Math.max(largest, size)
    total += size
  }
  if (BRACES_BYTES + total <= budgetBytes) return budgetBytes
  const share = Math.ceil(total / Math.max(1, slots))
  return Math.min(budgetBytes, BRACES_BYTES + Math.max(largest, share))
}

export interface SplitPlanOptions {
  budgetBytes: number
  /** Calls one request may run at once. */
  slots: number
  plan: 'parallel' | 'fewest-calls'
}

/** The upstream calls for a list: planChunks under the plan's per-call budget. */
export function planSplit(
  types: readonly ImageType[],
  estimate: (type: ImageType) => number,
  options: SplitPlanOptions,
): ImageType[][] {
  const budget =
    options.plan === 'parallel'
      ? parallelBudget(types, estimate, options.budgetBytes, options.slots)
      : options.budgetBytes
  return planChunks(types, estimate, budget)
}

/** A NaN or negative estimate would corrupt the packing; treat it as "could be anything": huge. */
function sanitise(size: number): number {
  return Number.isFinite(size) && size >= 0 ? size : Number.MAX_SAFE_INTEGER
}

/**
 * Splits a chunk in two for a retry after the upstream refused it as too big (502). Without
 * `estimate`, the first half gets the extra item of an odd count; with it, items go
 * largest-first to the lighter half so both halves weigh about the same. Either way both
 * halves are non-empty and keep the chunk's relative order.
 *
 * @throws RangeError for fewer than two items: a single item cannot be split, so the caller
 * must report that type as failed instead of retrying.
 */
export function bisect<T>(chunk: readonly T[], estimate?: (item: T) => number): [T[], T[]] {
  if (chunk.length < 2) throw new RangeError(`cannot bisect a chunk of ${chunk.length} item(s)`)
  if (!estimate) {
    const middle = Math.ceil(chunk.length / 2)
    return [chunk.slice(0, middle), chunk.slice(middle)]
  }
  const byWeight = chunk
    .map((item, index) => ({ index, size: sanitise(estimate(item)) }))
    .sort((a, b) => b.size - a.size || a.index - b.index)
  const halves: [{ indexes: Set<number>; size: number }, { indexes: Set<number>; size: number }] = [
    { indexes: new Set(), size: 0 },
    { indexes: new Set(), size: 0 },
  ]
  for (const { index, size } of byWeight) {
    const [first, second] = halves
    // Ties go to the half with fewer items, so the second item always opens the second half.
    const target =
      first.size < second.size || (first.size === second.size && first.indexes.size <= second.indexes.size)
        ? first
        : second
    target.indexes.add(index)
    target.size += size
  }
  const first = chunk.filter((_, index) => halves[0].indexes.has(index))
  const second = chunk.filter((_, index) => halves[1].indexes.has(index))
  return [first, second]
}
