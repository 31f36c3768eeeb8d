import type { Context, Span, SpanContext } from '@opentelemetry/api'

export type { Context, Span }

/**
 * `src/tracing/spans.ts` with the OpenTelemetry API taken out: what the service's own code was
 * before tracing came in (issue 11), as far as tracing goes. `scripts/bundle.ts --untraced DIR`
 * builds the service with this module in place of spans.ts, so that the `tracing` scenario can
 * set "tracing off" beside a build with no tracing code at all, in the same run. Each function
 * does the least its callers need: run the callback, hand over an inert span.
 */
const NO_CONTEXT = Object.freeze({}) as Context
const SPAN_CONTEXT: SpanContext = Object.freeze({ traceId: '', spanId: '', traceFlags: 0 })

const INERT: Span = {
  spanContext: () => SPAN_CONTEXT,
  setAttribute: () => INERT,
  setAttributes: () => INERT,
  addEvent: () => INERT,
  addLink: () => INERT,
  addLinks: () => INERT,
  setStatus: () => INERT,
  updateName: () => INERT,
  end: () => undefined,
  isRecording: () => false,
  recordException: () => undefined,
}

export function inSpan<T>(_name: string, fn: (span: Span) => Promise<T>): Promise<T> {
  return fn(INERT)
}

export function startSpan(_name: string): { span: Span; context: Context } {
  return { span: INERT, context: NO_CONTEXT }
}

export function markFailed(_span: Span, _err: unknown): void {
  // nothing records
}

export function activeContext(): Context {
  return NO_CONTEXT
}

export function recordingSpan(_ctx?: Context): Span | undefined {
  return undefined
}

export function inContext<A extends unknown[], R>(_ctx: Context, fn: (...args: A) => R): (...args: A) => R {
  return fn
}
