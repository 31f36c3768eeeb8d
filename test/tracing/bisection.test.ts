import t from 'tap'
import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import { build } from '../helpers/build.js'
import { warmSeededSessions } from '../routes/fixtures/helpers.js'
import { CALLER_TRACE_ID, fetchFullSetTraced, idOf, parentOf, traceInMemory } from './fixtures.js'

/**
 * A part Incode refuses as too large is bisected: the refused call and each half have their part
 * span, so an operator sees the plan, the refusal and the calls it cost.
 */

warmSeededSessions()

t.test('a bisected part: the refused part and each half have their span, counted on the split', async (t) => {
  const exporter = traceInMemory(t)
  // Every image fits under 5 MB alone, but the chunks planned as the fewest calls do not
  // (as in test/routes/images-bisect.test.ts).
  const { simulator, url } = await build(t, {
    listen: true,
    simulator: { responseCapBytes: 5_000_000 },
    env: { SPLIT_PLAN: 'fewest-calls' },
  })
  const res = await fetchFullSetTraced(url)
  t.equal(res.status, 200, 'the request is served')
  const body = (await res.json()) as { images: Record<string, unknown> }
  t.equal(Object.keys(body.images).length, IMAGE_TYPES.length, 'every type is served')

  const spans = exporter.getFinishedSpans()
  t.ok(
    spans.every((span) => span.spanContext().traceId === CALLER_TRACE_ID),
    "every span belongs to the caller's trace",
  )
  const [split] = spans.filter((span) => span.name === 'images.split')
  if (!split) throw new Error('no images.split span')
  const parts = spans.filter((span) => span.name === 'images.part')
  const calls = simulator.callsTo('images')
  t.equal(parts.length, calls.length, 'one part span per upstream images call')
  t.equal(split.attributes['gateway.upstream_calls'], calls.length, 'the split span counts the calls')
  t.ok(
    parts.every((part) => parentOf(part) === idOf(split)),
    'every part, planned or a half, is a child of the split span',
  )

  const refused = parts.filter((part) => part.attributes['gateway.part.outcome'] === 'bisected')
  t.ok(refused.length >= 1, `parts refused as too large were bisected (${refused.length})`)
  t.equal(split.attributes['gateway.bisections'], refused.length, 'the split span counts the bisections')
  t.ok(
    refused.every((part) => part.attributes['gateway.part.refusal'] === 'size-cap'),
    "each refused for Incode's size cap",
  )
  t.ok(
    refused.some((part) => part.attributes['gateway.part.kind'] === 'planned'),
    'a planned part was among them',
  )
  const halves = parts.filter((part) => part.attributes['gateway.part.kind'] === 'bisection')
  t.ok(halves.length >= 2 * refused.length, `each refused part became two halves (${halves.length})`)
  const answered = parts.filter((part) => part.attributes['gateway.part.outcome'] === 'answered')
  t.ok(
    answered.every((part) => (part.attributes['gateway.part.bytes'] as number) > 0),
    'the answered parts record their real bytes',
  )
  t.same(
    answered.flatMap((part) => part.attributes['gateway.part.types'] as string[]).sort(),
    [...IMAGE_TYPES].sort(),
    'the answered parts, halves included, asked for every type once',
  )
})
