import { FastifyOtelInstrumentation } from '@fastify/otel'
import { context, propagation, trace, type Attributes } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { UndiciInstrumentation, type UndiciRequest } from '@opentelemetry/instrumentation-undici'
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-node'
import { tracingSettings } from './settings.js'

/**
 * OpenTelemetry tracing, switched on by the standard `OTEL_*` variables and nothing else: the
 * SDK's tracer provider, the OTLP exporter (which reads OTEL_EXPORTER_OTLP_* itself), and two
 * instrumentations that need no module patching, so they work in the bundle too: Fastify's own
 * (@fastify/otel: one span per request, continuing the caller's `traceparent`) and undici's (one
 * span per HTTP attempt to Incode, with `traceparent` passed on). Only server.ts and tests call
 * this; the rest of the code creates its spans through @opentelemetry/api (src/tracing/spans.ts),
 * which is a no-op while no provider is registered.
 */

export const SERVICE_NAME = 'incode-image-gateway'

export { TracingConfigError, tracingSettings, type TracingSettings } from './settings.js'

export interface TracingOptions {
  /** Span processors used beside the exporters the environment names (tests: an in-memory one). */
  spanProcessors?: SpanProcessor[]
}

/** Tracing while it runs; `shutdown` flushes the last spans and unregisters everything. */
export interface Tracing {
  provider: NodeTracerProvider
  shutdown(): Promise<void>
}

/**
 * The path of an undici request without its query: the `?id=` Incode is called with comes from
 * the caller and is not recorded (a broken client may put a token there).
 */
function withoutQuery(request: UndiciRequest): Attributes {
  const path = request.path.split('?')[0] ?? ''
  return { 'url.full': `${request.origin}${path}`, 'url.path': path, 'url.query': undefined }
}

/**
 * Starts tracing when the environment asks for it (see tracingSettings) or span processors are
 * given; undefined when it stays off. Call it before the app is built: @fastify/otel instruments
 * each Fastify instance as it is created.
 */
export function startTracing(env: NodeJS.ProcessEnv, options: TracingOptions = {}): Tracing | undefined {
  const { exporters } = tracingSettings(env)
  const extra = options.spanProcessors ?? []
  if (exporters.length === 0 && extra.length === 0) return undefined

  const spanProcessors: SpanProcessor[] = [...extra]
  // The OTLP exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS and _TIMEOUT itself;
  // the batch processor OTEL_BSP_*; the provider OTEL_TRACES_SAMPLER(_ARG).
  if (exporters.includes('otlp')) spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter()))
  if (exporters.includes('console')) spanProcessors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()))

  const provider = new NodeTracerProvider({
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name.
    resource: resourceFromAttributes({ 'service.name': SERVICE_NAME }).merge(
      detectResources({ detectors: [envDetector] }),
    ),
    spanProcessors,
  })
  // Global tracer provider, AsyncLocalStorage context manager, W3C trace-context propagator.
  provider.register()

  const instrumentations = [
    new FastifyOtelInstrumentation({
      registerOnInitialization: true,
      // One span per request and one for its handler (which carries the request's context into
      // the services); spans for every hook would cost more than they tell.
      instrumentHooks: false,
      requestHook: (span, request) => {
        span.setAttribute('url.path', request.url.split('?')[0] ?? '')
      },
    }),
    new UndiciInstrumentation({
      // Only the service's own calls, made inside a span of a request or an upstream call.
      requireParentforSpans: true,
      startSpanHook: withoutQuery,
    }),
  ]

  return {
    provider,
    async shutdown() {
      for (const instrumentation of instrumentations) instrumentation.disable()
      await provider.shutdown()
      trace.disable()
      context.disable()
      propagation.disable()
    },
  }
}
