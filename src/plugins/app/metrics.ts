import type { FastifyInstance } from 'fastify'
import fastifyMetricsModule from 'fastify-metrics'
import fp from 'fastify-plugin'

/** HTTP request metrics (fastify-metrics) on the service's own registry, and GET /metrics. */
export default fp(
  async function metricsPlugin(app: FastifyInstance) {
    const { registry } = app.gatewayMetrics
    // fastify-metrics is CommonJS with its plugin on `default`.
    await app.register(fastifyMetricsModule.default, {
      endpoint: null,
      defaultMetrics: { enabled: false },
      routeMetrics: {
        // The histogram gives the latency quantiles; the summary's t-digest costs ~0.25 ms a request.
        enabled: { histogram: true, summary: false },
        registeredRoutesOnly: true,
        routeBlacklist: ['/metrics', '/healthz', '/readyz'],
        overrides: {
          histogram: { name: 'gateway_http_request_duration_seconds', registers: [registry] },
          summary: { name: 'gateway_http_request_summary_seconds', registers: [registry] },
        },
      },
    })
    app.get(
      '/metrics',
      {
        schema: { tags: ['health'], summary: 'Prometheus metrics', hide: false },
        config: app.config.METRICS_PUBLIC ? {} : { scope: 'metrics:read' as const },
        logLevel: 'warn',
      },
      async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
    )
  },
  { name: 'metrics', dependencies: ['services'] },
)
