import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node'
import type { Test } from 'tap'
import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { startTracing } from '../../src/tracing/setup.js'
import { partnerHeaders } from '../helpers/build.js'

/** A caller's W3C trace context, as a frontend would send it. */
export const CALLER_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
export const CALLER_SPAN_ID = '00f067aa0ba902b7'
export const CALLER_TRACEPARENT = `00-${CALLER_TRACE_ID}-${CALLER_SPAN_ID}-01`

/** The full seeded session's every type (a split request), asked by a partner in the caller's trace. */
export function fetchFullSetTraced(url: string): Promise<Response> {
  return fetch(`${url}/v1/sessions/${SEEDED_INTERVIEW_IDS.full}/images`, {
    method: 'POST',
    headers: { ...partnerHeaders(), traceparent: CALLER_TRACEPARENT },
    body: JSON.stringify({ images: IMAGE_TYPES }),
  })
}

/**
 * Tracing on, as server.ts starts it, with the SDK's in-memory exporter beside whatever the
 * environment names (nothing here); stopped and unregistered when the test ends. Start it before
 * building the app: @fastify/otel instruments Fastify instances as they are created.
 */
export function traceInMemory(t: Test): InMemorySpanExporter {
  const exporter = new InMemorySpanExporter()
  const tracing = startTracing({}, { spanProcessors: [new SimpleSpanProcessor(exporter)] })
  if (tracing === undefined) throw new Error('tracing did not start')
  t.teardown(() => tracing.shutdown())
  return exporter
}

/** The id of a span's parent, or undefined for a root. */
export function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId
}

export function idOf(span: ReadableSpan): string {
  return span.spanContext().spanId
}

/** Whether `ancestor` is on the parent chain of `span` among `spans`. */
export function descendsFrom(
  span: ReadableSpan,
  ancestor: ReadableSpan,
  spans: readonly ReadableSpan[],
): boolean {
  const byId = new Map(spans.map((s) => [idOf(s), s]))
  let parent = parentOf(span)
  while (parent !== undefined) {
    if (parent === idOf(ancestor)) return true
    parent = byId.get(parent) === undefined ? undefined : parentOf(byId.get(parent) as ReadableSpan)
  }
  return false
}

/** The trace id and parent span id of a `traceparent` header. */
export function parseTraceparent(
  value: string | undefined,
): { traceId: string; parentId: string } | undefined {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/.exec(value ?? '')
  return match ? { traceId: match[1] as string, parentId: match[2] as string } : undefined
}
