import type { IncomingMessage, ServerResponse } from 'node:http'
import { context, SpanKind, trace, TraceFlags } from '@opentelemetry/api'
import t from 'tap'
import { inMs, startServer, testConfig, upstreamPolicy } from '../upstream/helpers.js'
import {
  CALLER_SPAN_ID,
  CALLER_TRACE_ID,
  idOf,
  parentOf,
  parseTraceparent,
  traceInMemory,
} from './fixtures.js'

t.test(
  'a retried call: one call span with a retry event, an HTTP span per attempt, each passed on',
  async (t) => {
    const exporter = traceInMemory(t)
    const seen: Array<string | undefined> = []
    const statuses: number[] = []
    const upstream = await startServer(t, (req: IncomingMessage, res: ServerResponse) => {
      const traceparent = req.headers.traceparent
      seen.push(Array.isArray(traceparent) ? traceparent[0] : traceparent)
      const status = statuses.shift() ?? 200
      req.resume()
      req.on('end', () => {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ status }))
      })
    })
    // One connection, opened by a call of another trace: undici decides the retry on that socket.
    const policy = upstreamPolicy(
      t,
      testConfig(upstream.url, { RETRY_BASE_MS: '5', RETRY_MAX_DELAY_MS: '20', UPSTREAM_CONNECTIONS: '1' }),
    )
    const post = () =>
      policy.request({
        endpoint: 'images',
        method: 'POST',
        path: '/omni/get/images',
        headers: { 'content-type': 'application/json' },
        body: '{"images":["selfie"]}',
        deadlineAt: inMs(10_000),
      })
    t.equal((await post()).status, 200, 'a first call, in a trace of its own, opened the connection')
    seen.length = 0
    exporter.reset()

    // Inside the caller's trace, as a request's span would hold it.
    const caller = trace.wrapSpanContext({
      traceId: CALLER_TRACE_ID,
      spanId: CALLER_SPAN_ID,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    })
    statuses.push(503, 200)
    const answer = await context.with(trace.setSpan(context.active(), caller), post)
    t.equal(answer.status, 200, 'the retry succeeded')
    t.equal(seen.length, 2, 'two attempts reached the server')
    t.equal(upstream.connections(), 1, 'over the one connection')

    const spans = exporter.getFinishedSpans()
    const calls = spans.filter((span) => span.name === 'incode images')
    t.equal(calls.length, 1, 'one span for the logical call')
    const [call] = calls
    if (!call) throw new Error('no call span')
    t.equal(call.spanContext().traceId, CALLER_TRACE_ID, "in the caller's trace")
    t.equal(parentOf(call), CALLER_SPAN_ID, "under the caller's span")
    t.same(
      call.events.map((event) => [event.name, event.attributes?.['incode.status']]),
      [['retry', 503]],
      'a retry event, naming the answer that caused it',
    )
    t.equal(call.attributes['incode.status'], 200, "the last answer is the call's")

    const attempts = spans.filter((span) => span.kind === SpanKind.CLIENT)
    t.equal(attempts.length, 2, 'an HTTP span per attempt')
    t.ok(
      attempts.every((span) => parentOf(span) === idOf(call)),
      "both under the call's span (the retry too, though undici decides it on the socket)",
    )
    t.same(
      seen.map((value) => parseTraceparent(value)?.parentId).sort(),
      attempts.map(idOf).sort(),
      'each attempt carried its own span as traceparent',
    )
  },
)
