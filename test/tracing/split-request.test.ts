import { SpanKind } from '@opentelemetry/api'
import t from 'tap'
import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, partnerHeaders } from '../helpers/build.js'
import { warmSeededSessions } from '../routes/fixtures/helpers.js'
import {
  CALLER_SPAN_ID,
  CALLER_TRACE_ID,
  CALLER_TRACEPARENT,
  descendsFrom,
  fetchFullSetTraced,
  idOf,
  parentOf,
  parseTraceparent,
  traceInMemory,
} from './fixtures.js'

warmSeededSessions()

t.test(
  'one split base64 request: its span tree, continued from the caller and passed on to Incode',
  async (t) => {
    const exporter = traceInMemory(t)
    const { simulator, url } = await build(t, { listen: true })

    const res = await fetchFullSetTraced(url)
    t.equal(res.status, 200, 'the request is served')
    const body = (await res.json()) as { images: Record<string, unknown> }
    t.equal(Object.keys(body.images).length, IMAGE_TYPES.length, 'every type is served')

    const spans = exporter.getFinishedSpans()
    t.ok(spans.length > 0, 'spans were recorded')
    t.ok(
      spans.every((span) => span.spanContext().traceId === CALLER_TRACE_ID),
      "every span belongs to the caller's trace",
    )
    const named = (name: string) => spans.filter((span) => span.name === name)

    const [request, ...moreRequests] = named('request')
    if (!request) throw new Error('no request span')
    t.equal(moreRequests.length, 0, 'one request span')
    t.equal(request.kind, SpanKind.SERVER, 'the request span is a server span')
    t.equal(parentOf(request), CALLER_SPAN_ID, "the request span's parent is the caller's span")
    t.equal(request.attributes['http.route'], '/v1/sessions/:interviewId/images', 'it names the route')
    t.equal(request.attributes['http.response.status_code'], 200, 'and the status')

    const [split, ...moreSplits] = named('images.split')
    if (!split) throw new Error('no images.split span')
    t.equal(moreSplits.length, 0, 'one split span')
    t.ok(descendsFrom(split, request, spans), 'the split span is inside the request span')
    const plannedChunks = split.attributes['gateway.plan.chunks'] as string[]
    t.ok(plannedChunks.length >= 2, `the plan has ${plannedChunks.length} parts`)
    t.equal(split.attributes['gateway.plan.parts'], plannedChunks.length, 'counted')
    t.ok(
      (split.attributes['gateway.plan.bytes'] as number) > 10 * 1024 * 1024,
      'planned bytes over the 10 MB cap',
    )
    t.same(split.attributes['gateway.types'], IMAGE_TYPES, 'the types asked')

    const calls = simulator.callsTo('images')
    const parts = named('images.part')
    t.equal(parts.length, calls.length, 'one part span per upstream images call')
    t.equal(split.attributes['gateway.upstream_calls'], calls.length, 'the split span counts them')
    t.same(
      parts.map((part) => (part.attributes['gateway.part.types'] as string[]).join('+')).sort(),
      calls.map((call) => (call.images ?? []).join('+')).sort(),
      "the parts' types are those Incode was asked for",
    )
    for (const part of parts) {
      t.equal(parentOf(part), idOf(split), 'a part is a child of the split span')
      t.equal(part.attributes['gateway.part.outcome'], 'answered', 'answered')
      t.ok((part.attributes['gateway.part.planned_bytes'] as number) > 0, 'with its planned bytes')
      t.ok((part.attributes['gateway.part.bytes'] as number) > 0, 'and its real bytes')
    }

    const upstream = named('incode images')
    t.equal(upstream.length, calls.length, 'one upstream-call span per call')
    const partIds = new Set(parts.map(idOf))
    t.ok(
      upstream.every((span) => partIds.has(parentOf(span) ?? '')),
      'each upstream-call span is a child of a part span',
    )
    t.ok(
      upstream.every((span) => span.attributes['incode.status'] === 200),
      'each records what Incode answered',
    )
    const login = named('incode adminLogin')
    t.equal(login.length, 1, 'the admin log-in has its span')
    t.ok(login[0] && descendsFrom(login[0], split, spans), 'made for a part of this request')

    const upstreamIds = new Set(upstream.map(idOf))
    const attempts = spans.filter(
      (span) => span.kind === SpanKind.CLIENT && upstreamIds.has(parentOf(span) ?? ''),
    )
    t.equal(attempts.length, calls.length, "one HTTP span (undici's) per attempt, each under its call's span")
    t.ok(
      attempts.every((span) => !String(span.attributes['url.full']).includes('?')),
      'the query (the caller-given id) is not recorded',
    )

    const attemptIds = new Set(attempts.map(idOf))
    for (const call of calls) {
      const seen = parseTraceparent(call.traceparent)
      t.equal(seen?.traceId, CALLER_TRACE_ID, "the simulator saw the caller's trace id")
      t.ok(attemptIds.has(seen?.parentId ?? ''), "with the HTTP attempt's span as parent")
    }
  },
)

t.test('links: the cache lookup has its span, MISS then HIT', async (t) => {
  const exporter = traceInMemory(t)
  const { simulator, url } = await build(t, { listen: true })
  const ask = () =>
    fetch(`${url}/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/image-links`, {
      method: 'POST',
      headers: { ...partnerHeaders(), traceparent: CALLER_TRACEPARENT },
      body: JSON.stringify({ images: ['selfie', 'signature'] }),
    })

  const first = await ask()
  await first.arrayBuffer()
  t.equal(first.headers.get('x-cache'), 'MISS', 'first: MISS')
  const second = await ask()
  await second.arrayBuffer()
  t.equal(second.headers.get('x-cache'), 'HIT', 'second: HIT')

  const spans = exporter.getFinishedSpans()
  const lookups = spans.filter((span) => span.name === 'links.cache_lookup')
  t.same(
    lookups.map((span) => span.attributes['gateway.cache.result']),
    ['MISS', 'HIT'],
    'one lookup span per request, with X-Cache',
  )
  const [miss, hit] = lookups
  if (!miss || !hit) throw new Error('no lookup spans')
  t.same(miss.attributes['gateway.cache.loaded_types'], ['selfie', 'signature'], 'the miss loaded both types')
  t.notOk('gateway.cache.loaded_types' in hit.attributes, 'the hit loaded nothing')
  const requests = spans.filter((span) => span.name === 'request')
  t.ok(
    lookups.every((lookup) => requests.some((request) => descendsFrom(lookup, request, spans))),
    "each lookup is inside its request's span",
  )
  const linkCalls = spans.filter((span) => span.name === 'incode imageLinks')
  t.equal(linkCalls.length, 1, 'one upstream call, for the miss')
  t.equal(linkCalls[0] && parentOf(linkCalls[0]), idOf(miss), 'under the lookup that missed')
  t.equal(simulator.callsTo('imageLinks').length, 1, 'the simulator saw one links call')
  t.equal(
    parseTraceparent(simulator.callsTo('imageLinks')[0]?.traceparent)?.traceId,
    CALLER_TRACE_ID,
    "with the caller's trace id",
  )
})
