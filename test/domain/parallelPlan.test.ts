import t from 'tap'
import { IMAGE_TYPES, type ImageType } from '../../src/domain/imageTypes.js'
import { parallelBudget, planChunks, planSplit } from '../../src/domain/planChunks.js'

const MB = 1_000_000
const BRACES = 2

/** Base64 sizes close to the simulator's full session: 14.45 MB in all, the largest 4.75 MB. */
const FULL: Record<ImageType, number> = {
  selfie: 0.57 * MB,
  croppedFace: 0.08 * MB,
  croppedIDFace: 0.06 * MB,
  croppedSecondIDFace: 0.05 * MB,
  document: 2.19 * MB,
  signature: 0.04 * MB,
  fullFrameFrontID: 4.75 * MB,
  fullFrameBackID: 4.33 * MB,
  croppedFrontID: 0.17 * MB,
  croppedBackID: 0.15 * MB,
  croppedOriginalFrontID: 0.21 * MB,
  croppedOriginalBackID: 0.2 * MB,
  addressStatement: 1.64 * MB,
  croppedAuthenticationSelfie: 0.08 * MB,
}
const estimate = (type: ImageType) => FULL[type]
const bytesOf = (chunk: readonly ImageType[]) => chunk.reduce((sum, type) => sum + FULL[type], BRACES)

t.test('a list that fits one call keeps the whole budget: one call, either plan', async (t) => {
  const small: ImageType[] = ['selfie', 'document', 'fullFrameFrontID']
  t.ok(bytesOf(small) <= 8 * MB, 'the list fits 8 MB')
  t.equal(parallelBudget(small, estimate, 8 * MB, 4), 8 * MB, 'budget unchanged')
  for (const plan of ['parallel', 'fewest-calls'] as const) {
    t.same(planSplit(small, estimate, { budgetBytes: 8 * MB, slots: 4, plan }).length, 1, `${plan}: one call`)
  }
})

t.test('a list that must be split is sized for parallel calls', async (t) => {
  const budget = parallelBudget(IMAGE_TYPES, estimate, 8 * MB, 4)
  t.equal(budget, BRACES + FULL.fullFrameFrontID, 'no smaller than the largest image, which beats a quarter')

  const parallel = planSplit(IMAGE_TYPES, estimate, { budgetBytes: 8 * MB, slots: 4, plan: 'parallel' })
  const fewest = planSplit(IMAGE_TYPES, estimate, { budgetBytes: 8 * MB, slots: 4, plan: 'fewest-calls' })
  t.same(fewest, planChunks(IMAGE_TYPES, estimate, 8 * MB), "'fewest-calls' is planChunks under the budget")
  t.equal(fewest.length, 2, 'the fewest calls: 2')
  t.ok(parallel.length > fewest.length, `parallel uses more calls (${parallel.length})`)
  t.ok(parallel.length <= 4, 'but no more than the fan-out runs at once')
  const largestPart = Math.max(...parallel.map(bytesOf))
  t.ok(largestPart <= budget, `every part fits its budget (largest ${largestPart} B)`)
  t.ok(
    largestPart < Math.max(...fewest.map(bytesOf)),
    'so the slowest call carries fewer bytes than with the fewest calls',
  )
  t.same(parallel.flat().sort(), [...IMAGE_TYPES].sort(), 'every type planned exactly once')
})

t.test("a list's share of the slots wins when it is larger than its largest image", async (t) => {
  const even = Object.fromEntries(IMAGE_TYPES.map((type) => [type, 1 * MB])) as Record<ImageType, number>
  const budget = parallelBudget(IMAGE_TYPES, (type) => even[type], 8 * MB, 4)
  t.equal(budget, BRACES + Math.ceil((14 * MB) / 4), 'a quarter of 14 MB')
  const chunks = planSplit(IMAGE_TYPES, (type) => even[type], {
    budgetBytes: 8 * MB,
    slots: 4,
    plan: 'parallel',
  })
  t.equal(chunks.length, 5, 'three images per call fit 3.5 MB: five calls')
  t.equal(
    parallelBudget(IMAGE_TYPES, (type) => even[type], 2 * MB, 4),
    2 * MB,
    'never above the budget',
  )
})
