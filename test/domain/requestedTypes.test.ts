import t from 'tap'
import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { foldTypes } from '../../src/domain/requestedTypes.js'
import { Rng, SEEDS } from './helpers.js'

void t.test('table', (t) => {
  const cases: Array<[string, ImageType[], ImageType[]]> = [
    ['empty', [], []],
    ['one', ['selfie'], ['selfie']],
    ['no duplicates keeps order', ['document', 'selfie', 'signature'], ['document', 'selfie', 'signature']],
    ['duplicates folded', ['selfie', 'document', 'selfie', 'selfie', 'document'], ['selfie', 'document']],
    ['first occurrence wins', ['signature', 'selfie', 'signature'], ['signature', 'selfie']],
  ]
  for (const [name, input, expected] of cases) t.same(foldTypes(input), expected, name)
  t.end()
})

void t.test('does not modify its input', (t) => {
  const input: ImageType[] = ['selfie', 'selfie']
  foldTypes(input)
  t.same(input, ['selfie', 'selfie'], 'input untouched')
  t.end()
})

void t.test('random lists', (t) => {
  for (const seed of SEEDS) {
    const rng = new Rng(seed)
    const failures: string[] = []
    for (let round = 0; round < 50; round++) {
      const input = Array.from({ length: rng.int(0, 30) }, () => rng.pick(IMAGE_TYPES))
      const folded = foldTypes(input)
      const expected = input.filter((type, index) => input.indexOf(type) === index)
      if (JSON.stringify(folded) !== JSON.stringify(expected))
        failures.push(`round ${round}: ${folded.join(',')}`)
    }
    t.same(failures, [], `seed ${seed}: 50 random lists fold to their first occurrences`)
  }
  t.end()
})
