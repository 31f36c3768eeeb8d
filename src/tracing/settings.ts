/**
 * What the `OTEL_*` variables ask of tracing, read without loading the OpenTelemetry SDK: server.ts
 * checks this first and loads the SDK (src/tracing/setup.ts, a separate chunk of the bundle) only
 * when tracing is on, so a service without tracing does not pay for parsing it at start-up.
 */

/** Exporters OTEL_TRACES_EXPORTER may name. */
const KNOWN_EXPORTERS = new Set(['otlp', 'console', 'none'])
/** The OTLP protocol this service ships an exporter for (the specification's default). */
const OTLP_PROTOCOL = 'http/protobuf'

export class TracingConfigError extends Error {
  override name = 'TracingConfigError'
}

export interface TracingSettings {
  /** The exporters to start; empty when tracing is off. */
  exporters: Array<'otlp' | 'console'>
}

/**
 * What the environment asks for. Tracing is off unless OTEL_TRACES_EXPORTER names an exporter
 * (`otlp`, `console`, comma-separated); `none` or leaving it unset keeps it off (the
 * specification's default would be `otlp`: this service stays quiet until asked), and
 * OTEL_SDK_DISABLED=true turns it off whatever else is set.
 */
export function tracingSettings(env: NodeJS.ProcessEnv): TracingSettings {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return { exporters: [] }
  const named = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '')
  const unknown = named.filter((name) => !KNOWN_EXPORTERS.has(name))
  if (unknown.length > 0) {
    throw new TracingConfigError(
      `OTEL_TRACES_EXPORTER: unknown exporter ${unknown.join(', ')} (otlp, console or none)`,
    )
  }
  const exporters = [...new Set(named)].filter((name) => name === 'otlp' || name === 'console')
  if (exporters.includes('otlp')) {
    const protocol = (
      env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ??
      env.OTEL_EXPORTER_OTLP_PROTOCOL ??
      OTLP_PROTOCOL
    )
      .trim()
      .toLowerCase()
    if (protocol !== OTLP_PROTOCOL) {
      throw new TracingConfigError(
        `OTEL_EXPORTER_OTLP_PROTOCOL: only ${OTLP_PROTOCOL} is supported, not ${protocol}`,
      )
    }
  }
  return { exporters }
}
