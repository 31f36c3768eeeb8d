import { trace } from '@opentelemetry/api'
import t from 'tap'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { startTracing, tracingSettings } from '../../src/tracing/setup.js'
import { build, partnerHeaders } from '../helpers/build.js'
import { warmSeededSessions } from '../routes/fixtures/helpers.js'
import { CALLER_TRACEPARENT, fetchFullSetTraced } from './fixtures.js'

warmSeededSessions()

t.test('which variables switch tracing on', async (t) => {
  t.same(tracingSettings({}).exporters, [], 'nothing set: off')
  t.same(tracingSettings({ OTEL_TRACES_EXPORTER: 'none' }).exporters, [], 'none: off')
  t.same(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp' }).exporters, ['otlp'], 'otlp: on, OTLP')
  t.same(
    tracingSettings({ OTEL_TRACES_EXPORTER: ' OTLP , console' }).exporters,
    ['otlp', 'console'],
    'a list, as the specification writes it',
  )
  t.same(
    tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }).exporters,
    [],
    'OTEL_SDK_DISABLED=true wins',
  )
  t.same(
    tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }).exporters,
    ['otlp'],
    'http/protobuf is the protocol shipped',
  )
  t.throws(
    () => tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' }),
    { name: 'TracingConfigError' },
    'another protocol is refused at start-up, not ignored',
  )
  t.throws(
    () => tracingSettings({ OTEL_TRACES_EXPORTER: 'jaeger' }),
    { name: 'TracingConfigError' },
    'so is an unknown exporter',
  )
  t.equal(
    startTracing({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }),
    undefined,
    'disabled: nothing starts',
  )
})

t.test(
  'tracing off: no span recorded and no traceparent passed on, even when the caller sent one',
  async (t) => {
    t.equal(startTracing({}), undefined, 'off by default')
    const { simulator, url } = await build(t, { listen: true })

    const res = await fetchFullSetTraced(url)
    t.equal(res.status, 200, 'the request is served')
    await res.arrayBuffer()
    const links = await fetch(`${url}/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/image-links`, {
      method: 'POST',
      headers: { ...partnerHeaders(), traceparent: CALLER_TRACEPARENT },
      body: JSON.stringify({ images: ['selfie'] }),
    })
    t.equal(links.status, 200, 'links too')
    await links.arrayBuffer()

    const calls = simulator.calls.filter((call) => call.endpoint !== 'control')
    t.ok(calls.length >= 3, `${calls.length} calls reached the simulator`)
    t.same(
      calls.filter((call) => call.traceparent !== undefined),
      [],
      'none carried a traceparent',
    )
    t.notOk(trace.getTracer('probe').startSpan('probe').isRecording(), 'no tracer provider records anything')
  },
)
