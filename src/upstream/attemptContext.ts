import { Client, type Dispatcher } from 'undici'
import { activeContext, inContext, recordingSpan, type Context } from '../tracing/spans.js'

/**
 * Keeps each HTTP attempt to Incode in the trace of the call that made it. undici's
 * instrumentation opens an attempt's span, and writes its `traceparent`, in whatever context is
 * active when undici creates the request; that is the caller's only when the pool sends it at
 * once. A request the pool queues is sent later from another request's socket callbacks, and so
 * is every retry: without this, those would be traced, and announced to Incode, as part of
 * whichever request opened or freed the connection. Nothing is kept while no span records.
 */

/**
 * The context each attempt was dispatched in, by its options: the one object the pool passes on
 * to its client unchanged (the handler it wraps anew).
 */
const attemptContexts = new WeakMap<object, Context>()
/** The context of each retrying call's first attempt, by its retry handler (the same every attempt). */
const firstAttemptContexts = new WeakMap<object, Context>()

/** Innermost: remembers the context of every attempt for the client that will send it (TracedClient). */
export const rememberAttemptContext: Dispatcher.DispatcherComposeInterceptor =
  (dispatch) => (opts, handler) => {
    if (recordingSpan() !== undefined) attemptContexts.set(opts, activeContext())
    return dispatch(opts, handler)
  }

/** Just inside the retry interceptor: every retry is dispatched in its first attempt's context. */
export const inFirstAttemptContext: Dispatcher.DispatcherComposeInterceptor =
  (dispatch) => (opts, handler) => {
    const first = firstAttemptContexts.get(handler)
    if (first !== undefined) return inContext(first, dispatch)(opts, handler)
    if (recordingSpan() !== undefined) firstAttemptContexts.set(handler, activeContext())
    return dispatch(opts, handler)
  }

/** The pool's client: creates each request in the context its attempt was dispatched in. */
export class TracedClient extends Client {
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const dispatched = attemptContexts.get(opts)
    if (dispatched === undefined) return super.dispatch(opts, handler)
    return inContext(dispatched, () => super.dispatch(opts, handler))()
  }
}
