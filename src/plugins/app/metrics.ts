import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { Histogram } from 'prom-client'

/** Routes whose requests are not timed: the scrape itself and the probes. */
const UNTIMED_ROUTES = new Set(['/metrics', '/healthz', '/readyz'])
/** Methods that are not timed (as fastify-metrics, which this replaced, left them out). */
const UNTIMED_METHODS = new Set(['HEAD', 'OPTIONS', 'TRACE', 'CONNECT'])

type Observe = (seconds: number) => void

/**
 * HTTP request metrics on the service's own registry, and GET /metrics. The histogram is the one
 * fastify-metrics exported (same name, labels and buckets); it is fed here by one route-level
 * onResponse hook on each timed route, with Fastify's own elapsed time and the label set of each
 * route and status resolved once: fastify-metrics ran two hooks on every request, a timer closure
 * and a label object per answer (~3% of a cached links answer's CPU time).
 */
export default fp(
  function metricsPlugin(app: FastifyInstance) {
    const { registry } = app.gatewayMetrics
    const duration = new Histogram({
      name: 'gateway_http_request_duration_seconds',
      help: 'request duration in seconds',
      labelNames: ['method', 'route', 'status_code'] as const,
      registers: [registry],
    })

    app.addHook('onRoute', (route: RouteOptions) => {
      if (UNTIMED_ROUTES.has(route.url)) return
      const methods = [route.method].flat().filter((method) => !UNTIMED_METHODS.has(method))
      if (methods.length === 0) return
      // By method and status: each label set is resolved on its first answer, then reused.
      const byStatus = new Map<string, Observe>()
      const observer = (method: string, status: number): Observe => {
        const key = `${method} ${String(status)}`
        let observe = byStatus.get(key)
        if (!observe) {
          const child = duration.labels({ method, route: route.url, status_code: status })
          observe = (seconds) => {
            child.observe(seconds)
          }
          byStatus.set(key, observe)
        }
        return observe
      }
      const timed = new Set(methods)
      const onResponse = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
        if (timed.has(request.method)) observer(request.method, reply.statusCode)(reply.elapsedTime / 1000)
        done()
      }
      route.onResponse = [...[route.onResponse ?? []].flat(), onResponse]
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
