import { context, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api'

export type { Context, Span }

/**
 * The service's own spans, through the OpenTelemetry API only: while tracing is off (no provider
 * registered, see setup.ts) every span is the API's non-recording one and costs a few calls.
 * Attributes are set only where `span.isRecording()`, so that nothing is built for nobody.
 */
const TRACER_NAME = 'incode-image-gateway'

/**
 * Runs `fn` inside a new span, active while it runs (so that the spans of its own calls, undici's
 * included, become its children), and ends the span when `fn` settles. A thrown error marks the
 * span as failed, with its code (never its message's data: messages here name codes, not values).
 */
export function inSpan<T>(name: string, fn: (span: Span) => Promise<T>): Promise<T> {
  // Asked for each time: a tracer kept from before a provider was (re)registered would stay a no-op.
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, async (span) => {
    try {
      return await fn(span)
    } catch (err) {
      if (span.isRecording()) markFailed(span, err)
      throw err
    } finally {
      span.end()
    }
  })
}

/**
 * A span started now as a child of the active one, with the context in which it is active, for
 * work that may finish synchronously or go on asynchronously (run the rest with `inContext`);
 * the caller ends it. No promise is made on the way: for hot paths that often finish at once.
 */
export function startSpan(name: string): { span: Span; context: Context } {
  const span = trace.getTracer(TRACER_NAME).startSpan(name)
  const active = context.active()
  // A span that records nothing (tracing off, or not sampled) has no children to parent: the
  // active context serves as well, without a new one built on every warm lookup.
  return { span, context: span.isRecording() ? trace.setSpan(active, span) : active }
}

export function markFailed(span: Span, err: unknown): void {
  const code = (err as { code?: unknown } | undefined)?.code
  span.setAttribute('error.type', typeof code === 'string' ? code : err instanceof Error ? err.name : 'Error')
  span.setStatus({ code: SpanStatusCode.ERROR, ...(err instanceof Error ? { message: err.message } : {}) })
}

/** The context active now, to run a later callback in (see inContext). */
export function activeContext(): Context {
  return context.active()
}

/** The span of `ctx` (default: active now), when one is recording; undefined otherwise. */
export function recordingSpan(ctx: Context = context.active()): Span | undefined {
  const span = trace.getSpan(ctx)
  return span?.isRecording() === true ? span : undefined
}

/**
 * `fn` bound to `ctx`: for callbacks that undici calls from a socket's own context (a retry
 * decided on an answer), so that what they start belongs to the call that asked, not to whichever
 * request opened the connection.
 */
export function inContext<A extends unknown[], R>(ctx: Context, fn: (...args: A) => R): (...args: A) => R {
  return context.bind(ctx, fn)
}
