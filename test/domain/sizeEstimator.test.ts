import t from 'tap'
import { base64Length, IMAGE_TYPE_INFO, IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { SizeEstimator } from '../../src/domain/sizeEstimator.js'
import { Rng, SEEDS } from './helpers.js'

/** Bytes of `"type":"<base64>",` — what one entry really costs in an answer, comma included. */
function entryBytes(type: ImageType, base64Bytes: number): number {
  // `"type":` then `"` + base64 + `",`
  return Buffer.byteLength(`${JSON.stringify(type)}:`) + base64Bytes + 3
}

void t.test('the entry-size formula counts a real entry', (t) => {
  const entry = `"selfie":"${'A'.repeat(1234)}",`
  t.equal(entryBytes('selfie', 1234), Buffer.byteLength(entry), 'formula matches a literal entry')
  t.end()
})

void t.test('defaults come from IMAGE_TYPE_INFO, as base64 plus the entry overhead', (t) => {
  const estimator = new SizeEstimator()
  for (const type of IMAGE_TYPES) {
    const expected = entryBytes(type, base64Length(IMAGE_TYPE_INFO[type].estimatedBytes))
    t.equal(
      estimator.estimate(type),
      expected,
      `${type}: base64 of the default raw size plus key and punctuation`,
    )
  }
  t.end()
})

void t.test('partial defaults override only the types given', (t) => {
  const estimator = new SizeEstimator({ defaults: { selfie: 3000, signature: 0 } })
  t.equal(estimator.estimate('selfie'), entryBytes('selfie', 4000), 'selfie uses the given 3000 raw bytes')
  t.equal(estimator.estimate('signature'), entryBytes('signature', 0), 'a zero default is honoured')
  t.equal(
    estimator.estimate('document'),
    entryBytes('document', base64Length(IMAGE_TYPE_INFO.document.estimatedBytes)),
    'document keeps the built-in default',
  )
  t.end()
})

void t.test('an odd raw size rounds the base64 length up', (t) => {
  const estimator = new SizeEstimator({ defaults: { selfie: 1 } })
  t.equal(estimator.estimate('selfie'), entryBytes('selfie', 4), 'one raw byte is four base64 bytes')
  t.end()
})

void t.test('observations replace the default, per type', (t) => {
  const estimator = new SizeEstimator()
  estimator.observe('selfie', 1000)
  t.equal(estimator.estimate('selfie'), entryBytes('selfie', 1000), 'estimate is the observed size')
  t.equal(
    estimator.estimate('croppedFace'),
    entryBytes('croppedFace', base64Length(IMAGE_TYPE_INFO.croppedFace.estimatedBytes)),
    'another type still uses its default',
  )
  estimator.observe('selfie', 500)
  t.equal(estimator.estimate('selfie'), entryBytes('selfie', 1000), 'a smaller observation does not lower it')
  estimator.observe('selfie', 5000)
  t.equal(estimator.estimate('selfie'), entryBytes('selfie', 5000), 'a larger observation raises it')
  t.end()
})

void t.test('observations may lower the estimate below the default', (t) => {
  const estimator = new SizeEstimator()
  estimator.observe('fullFrameFrontID', 10)
  t.equal(
    estimator.estimate('fullFrameFrontID'),
    entryBytes('fullFrameFrontID', 10),
    'observed beats default',
  )
  t.end()
})

void t.test('only the last `window` observations count', (t) => {
  const estimator = new SizeEstimator({ window: 3 })
  const steps: Array<[number, number]> = [
    [100, 100],
    [300, 300],
    [200, 300],
    [10, 300],
    [10, 200],
    [10, 10],
    [50, 50],
  ]
  for (const [observed, expectedMax] of steps) {
    estimator.observe('signature', observed)
    t.equal(
      estimator.estimate('signature'),
      entryBytes('signature', expectedMax),
      `after observing ${observed}, the max of the last three is ${expectedMax}`,
    )
  }
  t.end()
})

void t.test('default window is 32', (t) => {
  const estimator = new SizeEstimator()
  estimator.observe('selfie', 9999)
  for (let i = 0; i < 31; i++) estimator.observe('selfie', 1)
  t.equal(estimator.estimate('selfie'), entryBytes('selfie', 9999), 'the big one is still within 32')
  estimator.observe('selfie', 1)
  t.equal(estimator.estimate('selfie'), entryBytes('selfie', 1), 'the 33rd observation pushes it out')
  t.end()
})

void t.test('window of 1 follows the last observation', (t) => {
  const estimator = new SizeEstimator({ window: 1 })
  estimator.observe('selfie', 50)
  estimator.observe('selfie', 20)
  t.equal(estimator.estimate('selfie'), entryBytes('selfie', 20), 'only the last one counts')
  t.end()
})

void t.test('bad options and observations throw RangeError', (t) => {
  for (const window of [0, -1, 1.5, Number.NaN, Infinity]) {
    t.throws(() => new SizeEstimator({ window }), RangeError, `window ${window}`)
  }
  for (const raw of [-1, Number.NaN, Infinity]) {
    t.throws(() => new SizeEstimator({ defaults: { selfie: raw } }), RangeError, `default ${raw}`)
  }
  const estimator = new SizeEstimator()
  for (const size of [-1, Number.NaN, Infinity]) {
    t.throws(() => estimator.observe('selfie', size), RangeError, `observation ${size}`)
  }
  t.end()
})

void t.test('random sequences match a model: max of the last `window` observations', (t) => {
  for (const seed of SEEDS) {
    const rng = new Rng(seed)
    const window = rng.int(1, 10)
    const estimator = new SizeEstimator({ window })
    const history = new Map<ImageType, number[]>()
    const failures: string[] = []
    for (let step = 0; step < 400; step++) {
      const type = rng.pick(IMAGE_TYPES)
      if (rng.bool(0.7)) {
        const size = rng.int(0, 5_000_000)
        estimator.observe(type, size)
        history.set(type, [...(history.get(type) ?? []), size])
      }
      const seen = history.get(type)
      const expected = seen
        ? entryBytes(type, Math.max(...seen.slice(-window)))
        : entryBytes(type, base64Length(IMAGE_TYPE_INFO[type].estimatedBytes))
      const actual = estimator.estimate(type)
      if (actual !== expected) failures.push(`step ${step} ${type}: ${actual} !== ${expected}`)
    }
    t.same(failures, [], `seed ${seed} (window ${window}): estimates follow the model`)
  }
  t.end()
})

t.test('estimateTotal is the sum of the estimates, observed sizes included', async (t) => {
  const estimator = new SizeEstimator()
  estimator.observe('selfie', 123_456)
  const types: ImageType[] = ['selfie', 'document', 'signature']
  t.equal(
    estimator.estimateTotal(types),
    estimator.estimate('selfie') + estimator.estimate('document') + estimator.estimate('signature'),
    'sum of three',
  )
  t.ok(estimator.estimate('selfie') >= 123_456, 'the observed size counts')
  t.equal(estimator.estimateTotal([]), 0, 'nothing for no types')
})

void t.test('a too-large mark raises the estimate until a real size replaces it', (t) => {
  const estimator = new SizeEstimator()
  const base = estimator.estimate('selfie')
  estimator.markTooLarge('selfie', 8_000_000)
  t.ok(estimator.isMarkedTooLarge('selfie'), 'marked')
  t.equal(estimator.estimate('selfie'), entryBytes('selfie', 8_000_000), 'planned at the marked size')
  estimator.observe('selfie', 1000)
  t.notOk(estimator.isMarkedTooLarge('selfie'), 'a real observation clears the mark')
  t.equal(estimator.estimate('selfie'), entryBytes('selfie', 1000), 'and its size is the estimate')
  t.ok(estimator.estimate('selfie') < base, 'the mark left nothing behind')
  t.throws(() => estimator.markTooLarge('selfie', -1), RangeError, 'a negative mark is refused')
  t.end()
})

void t.test('a mark below what was observed does not lower the estimate', (t) => {
  const estimator = new SizeEstimator()
  estimator.observe('document', 5_000_000)
  estimator.markTooLarge('document', 10)
  t.equal(estimator.estimate('document'), entryBytes('document', 5_000_000), 'the larger observation stays')
  t.end()
})
