import t from 'tap'
import { IMAGE_TYPES, INCODE_RESPONSE_CAP_BYTES } from '../../src/domain/imageTypes.js'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { bisect, planChunks } from '../../src/domain/planChunks.js'
import { SizeEstimator } from '../../src/domain/sizeEstimator.js'
import { Rng, SEEDS } from './helpers.js'

const BRACES = 2

function sizes(table: Partial<Record<ImageType, number>>): (type: ImageType) => number {
  return (type) => {
    const size = table[type]
    if (size === undefined) throw new Error(`no size for ${type} in the test table`)
    return size
  }
}

function chunkBytes(chunk: readonly ImageType[], estimate: (type: ImageType) => number): number {
  return chunk.reduce((sum, type) => sum + estimate(type), BRACES)
}

/** The fewest chunks possible, by exhaustive search (small inputs only). */
function optimalChunkCount(
  types: readonly ImageType[],
  estimate: (type: ImageType) => number,
  budget: number,
) {
  let best = types.length
  const bins: number[] = []
  const place = (index: number): void => {
    if (bins.length >= best) return
    const type = types[index]
    if (type === undefined) {
      best = bins.length
      return
    }
    const size = estimate(type)
    for (let b = 0; b < bins.length; b++) {
      const load = bins[b] ?? 0
      if (load + size <= budget) {
        bins[b] = load + size
        place(index + 1)
        bins[b] = load
      }
    }
    bins.push(BRACES + size)
    place(index + 1)
    bins.pop()
  }
  place(0)
  return best
}

void t.test('empty input plans no chunk', (t) => {
  t.same(
    planChunks([], () => 1, 100),
    [],
    'no types, no chunks',
  )
  t.end()
})

void t.test('known cases', (t) => {
  const cases: Array<{
    name: string
    types: ImageType[]
    table: Partial<Record<ImageType, number>>
    budget: number
    expected: ImageType[][]
  }> = [
    {
      name: 'everything fits in one chunk, in IMAGE_TYPES order',
      types: ['document', 'selfie', 'signature'],
      table: { selfie: 10, document: 30, signature: 5 },
      budget: 1000,
      expected: [['selfie', 'document', 'signature']],
    },
    {
      name: 'a sum exactly at the budget (with braces) fits',
      types: ['selfie', 'croppedFace'],
      table: { selfie: 50, croppedFace: 48 },
      budget: 100,
      expected: [['selfie', 'croppedFace']],
    },
    {
      name: 'one byte over the budget splits',
      types: ['selfie', 'croppedFace'],
      table: { selfie: 50, croppedFace: 49 },
      budget: 100,
      expected: [['selfie'], ['croppedFace']],
    },
    {
      name: 'decreasing order pairs big with small: 60+40 and 50+50',
      types: ['selfie', 'croppedFace', 'croppedIDFace', 'croppedSecondIDFace'],
      table: { selfie: 60, croppedFace: 40, croppedIDFace: 50, croppedSecondIDFace: 50 },
      budget: 102,
      expected: [
        ['selfie', 'croppedFace'],
        ['croppedIDFace', 'croppedSecondIDFace'],
      ],
    },
    {
      name: 'an oversize type gets its own chunk and is not dropped',
      types: ['selfie', 'fullFrameFrontID', 'signature'],
      table: { selfie: 40, fullFrameFrontID: 500, signature: 40 },
      budget: 100,
      expected: [['fullFrameFrontID'], ['selfie', 'signature']],
    },
    {
      name: 'two oversize types get one chunk each',
      types: ['fullFrameBackID', 'fullFrameFrontID'],
      table: { fullFrameFrontID: 500, fullFrameBackID: 500 },
      budget: 100,
      expected: [['fullFrameFrontID'], ['fullFrameBackID']],
    },
    {
      name: 'a type exactly at the budget alone is not oversize but still alone',
      types: ['selfie', 'signature'],
      table: { selfie: 98, signature: 1 },
      budget: 100,
      expected: [['selfie'], ['signature']],
    },
    {
      name: 'equal sizes: ties follow IMAGE_TYPES order, whatever the input order',
      types: ['croppedBackID', 'selfie', 'croppedFrontID', 'document'],
      table: { selfie: 49, document: 49, croppedFrontID: 49, croppedBackID: 49 },
      budget: 100,
      expected: [
        ['selfie', 'document'],
        ['croppedFrontID', 'croppedBackID'],
      ],
    },
    {
      name: 'duplicates are folded before planning',
      types: ['selfie', 'selfie', 'signature', 'selfie'],
      table: { selfie: 10, signature: 10 },
      budget: 100,
      expected: [['selfie', 'signature']],
    },
    {
      name: 'first fit: a small item goes back into the first chunk with room',
      types: ['selfie', 'document', 'signature'],
      table: { selfie: 70, document: 60, signature: 20 },
      budget: 100,
      expected: [['selfie', 'signature'], ['document']],
    },
  ]
  for (const { name, types, table, budget, expected } of cases) {
    const estimate = sizes(table)
    const plan = planChunks(types, estimate, budget)
    t.same(plan, expected, name)
    t.equal(plan.length, optimalChunkCount([...new Set(types)], estimate, budget), `${name}: minimal count`)
  }
  t.end()
})

void t.test('a NaN or negative estimate is treated as oversize, never dropped', (t) => {
  const table: Record<string, number> = { selfie: Number.NaN, document: -5, signature: 10 }
  const plan = planChunks(['selfie', 'document', 'signature'], (type) => table[type] ?? 0, 100)
  t.same(plan, [['selfie'], ['document'], ['signature']], 'bad estimates get chunks of their own')
  t.end()
})

void t.test('the full set of types with default estimates and the real cap', (t) => {
  const estimator = new SizeEstimator()
  const estimate = (type: ImageType) => estimator.estimate(type)
  const plan = planChunks(IMAGE_TYPES, estimate, INCODE_RESPONSE_CAP_BYTES)
  const total = IMAGE_TYPES.reduce((sum, type) => sum + estimate(type), 0)
  t.ok(total > INCODE_RESPONSE_CAP_BYTES, 'sanity: a full session does not fit one call')
  t.equal(
    plan.length,
    Math.ceil(total / (INCODE_RESPONSE_CAP_BYTES - BRACES)),
    'as few chunks as the volume allows',
  )
  for (const chunk of plan) {
    t.ok(chunkBytes(chunk, estimate) <= INCODE_RESPONSE_CAP_BYTES, `chunk ${chunk.join(',')} within the cap`)
  }
  t.same(plan.flat().sort(), [...IMAGE_TYPES].sort(), 'every type planned once')
  t.end()
})

void t.test('random inputs: invariants of the plan', (t) => {
  for (const seed of SEEDS) {
    const rng = new Rng(seed)
    const failures: string[] = []
    for (let round = 0; round < 300; round++) {
      const input = Array.from({ length: rng.int(0, 20) }, () => rng.pick(IMAGE_TYPES))
      const unique = [...new Set(input)]
      // A few distinct sizes so that ties happen often.
      const palette = Array.from({ length: rng.int(1, 6) }, () => rng.int(0, 120))
      const table: Partial<Record<ImageType, number>> = {}
      for (const type of IMAGE_TYPES) table[type] = rng.pick(palette)
      const estimate = sizes(table)
      const budget = rng.int(1, 250)
      const plan = planChunks(input, estimate, budget)
      const where = `round ${round}`

      const planned = plan.flat()
      if (planned.length !== unique.length || new Set(planned).size !== planned.length) {
        failures.push(`${where}: types planned ${planned.join(',')} for ${unique.join(',')}`)
      }
      for (const type of unique) if (!planned.includes(type)) failures.push(`${where}: ${type} dropped`)
      if (plan.some((chunk) => chunk.length === 0)) failures.push(`${where}: empty chunk`)
      for (const chunk of plan) {
        if (chunk.length > 1 && chunkBytes(chunk, estimate) > budget) {
          failures.push(`${where}: chunk ${chunk.join(',')} over budget ${budget}`)
        }
        for (const type of chunk) {
          if (estimate(type) + BRACES > budget && chunk.length > 1) {
            failures.push(`${where}: oversize ${type} shares a chunk`)
          }
        }
      }
      // First fit leaves no two chunks that could have been one.
      for (let i = 0; i < plan.length; i++) {
        for (let j = i + 1; j < plan.length; j++) {
          const merged = [...(plan[i] ?? []), ...(plan[j] ?? [])]
          if (chunkBytes(merged, estimate) <= budget)
            failures.push(`${where}: chunks ${i} and ${j} could merge`)
        }
      }
      const again = planChunks(rng.shuffle(input), estimate, budget)
      if (JSON.stringify(again) !== JSON.stringify(plan))
        failures.push(`${where}: input order changed the plan`)
      if (unique.length <= 7) {
        const optimal = optimalChunkCount(unique, estimate, budget)
        // First-fit decreasing's guarantee: at most 11/9 OPT + 6/9 chunks.
        if (plan.length < optimal || plan.length > Math.floor((11 * optimal + 6) / 9)) {
          failures.push(`${where}: ${plan.length} chunks, optimum ${optimal}`)
        }
      }
    }
    t.same(failures, [], `seed ${seed}: 300 random plans keep every invariant`)
  }
  t.end()
})

void t.test('bisect without estimates halves by count', (t) => {
  t.same(bisect(['a', 'b']), [['a'], ['b']], 'two items')
  t.same(bisect(['a', 'b', 'c']), [['a', 'b'], ['c']], 'odd count: first half gets the extra')
  t.same(
    bisect([1, 2, 3, 4]),
    [
      [1, 2],
      [3, 4],
    ],
    'even count',
  )
  const input = ['x', 'y', 'z']
  bisect(input)
  t.same(input, ['x', 'y', 'z'], 'input untouched')
  t.end()
})

void t.test('bisect refuses what cannot be split', (t) => {
  t.throws(() => bisect([]), RangeError, 'empty chunk')
  t.throws(() => bisect(['selfie']), RangeError, 'one-item chunk')
  t.throws(() => bisect(['selfie'], () => 1), RangeError, 'one-item chunk with estimate')
  t.end()
})

void t.test('bisect with estimates balances the weight', (t) => {
  const weights: Record<string, number> = {
    big: 10,
    a: 1,
    b: 1,
    c: 1,
    d: 1,
    e: 1,
    f: 1,
    g: 1,
    h: 1,
    i: 1,
    j: 1,
  }
  const weight = (item: string) => weights[item] ?? 0
  t.same(
    bisect(['a', 'b', 'big', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], weight),
    [['big'], ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']],
    'one heavy item against ten light ones',
  )
  t.same(
    bisect(['fullFrameFrontID', 'selfie', 'fullFrameBackID', 'signature'], (type) =>
      type.startsWith('fullFrame') ? 100 : 10,
    ),
    [
      ['fullFrameFrontID', 'selfie'],
      ['fullFrameBackID', 'signature'],
    ],
    'the two big ones are separated, order kept inside halves',
  )
  t.same(
    bisect(['a', 'b'], () => 0),
    [['a'], ['b']],
    'zero weights still give two non-empty halves',
  )
  t.same(
    bisect(['a', 'b', 'c'], () => 5),
    [['a', 'c'], ['b']],
    'equal weights alternate',
  )
  t.end()
})

void t.test('bisect on random chunks', (t) => {
  for (const seed of SEEDS) {
    const rng = new Rng(seed)
    const failures: string[] = []
    for (let round = 0; round < 300; round++) {
      const chunk = Array.from({ length: rng.int(2, 14) }, (_, index) => ({ index, size: rng.int(0, 1000) }))
      const withWeights = rng.bool()
      const [first, second] = withWeights ? bisect(chunk, (item) => item.size) : bisect(chunk)
      const where = `round ${round}${withWeights ? ' (weighted)' : ''}`
      if (first.length === 0 || second.length === 0) failures.push(`${where}: an empty half`)
      const rejoined = [...first, ...second].sort((a, b) => a.index - b.index)
      if (rejoined.length !== chunk.length || rejoined.some((item, i) => item !== chunk[i])) {
        failures.push(`${where}: halves are not a partition`)
      }
      for (const half of [first, second]) {
        if (half.some((item, i) => i > 0 && item.index < (half[i - 1]?.index ?? -1))) {
          failures.push(`${where}: order not kept in a half`)
        }
      }
      if (withWeights) {
        const weigh = (half: typeof chunk) => half.reduce((sum, item) => sum + item.size, 0)
        const heaviest = Math.max(...chunk.map((item) => item.size))
        if (Math.abs(weigh(first) - weigh(second)) > heaviest) failures.push(`${where}: unbalanced`)
      } else if (first.length - second.length !== chunk.length % 2) {
        failures.push(`${where}: halves by count are ${first.length}/${second.length}`)
      }
    }
    t.same(failures, [], `seed ${seed}: 300 random bisections are balanced partitions`)
  }
  t.end()
})
