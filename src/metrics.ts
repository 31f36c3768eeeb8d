import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * Every metric the service exports on /metrics, on a registry of its own per app (tests build
 * many apps in one process). HTTP request metrics come from fastify-metrics on the same registry.
 */
export class Metrics {
  readonly registry = new Registry()

  readonly upstreamCalls = new Counter({
    name: 'gateway_upstream_calls_total',
    help: 'Calls to Incode, by endpoint and outcome (HTTP status, or an error code).',
    labelNames: ['endpoint', 'status'] as const,
    registers: [this.registry],
  })
  readonly upstreamLatency = new Histogram({
    name: 'gateway_upstream_call_seconds',
    help: 'Duration of calls to Incode, by endpoint.',
    labelNames: ['endpoint'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  })
  readonly upstreamRetries = new Counter({
    name: 'gateway_upstream_retries_total',
    help: 'Retried upstream calls, by reason; and retries refused by the retry budget.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })
  readonly callsPerRequest = new Histogram({
    name: 'gateway_upstream_calls_per_request',
    help: 'Upstream calls made for one base64 request (fan-out plus bisections).',
    buckets: [1, 2, 3, 4, 6, 8, 12, 16],
    registers: [this.registry],
  })
  readonly splits = new Counter({
    name: 'gateway_split_requests_total',
    help: 'Base64 requests planned into more than one upstream call.',
    registers: [this.registry],
  })
  readonly bisections = new Counter({
    name: 'gateway_bisections_total',
    help: 'Upstream calls split in two after Incode answered 502 (too large).',
    registers: [this.registry],
  })
  readonly cacheLookups = new Counter({
    name: 'gateway_link_cache_requests_total',
    help: 'Link requests by cache outcome (HIT, MISS, PARTIAL, HIT_WHILE_BREAKER_OPEN).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })
  readonly cacheEntries: Gauge
  readonly cacheBytes: Gauge
  readonly cacheEvictions: Gauge
  readonly coalescedWaits: Gauge
  readonly breakerState = new Gauge({
    name: 'gateway_upstream_breaker_state',
    help: 'Circuit breaker per Incode endpoint: 0 closed, 1 half-open, 2 open.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  })
  readonly adminTokenRefreshes = new Counter({
    name: 'gateway_admin_token_logins_total',
    help: 'Admin log-ins made (first log-in, renewals, refreshes after a 401).',
    registers: [this.registry],
  })
  readonly shed = new Counter({
    name: 'gateway_shed_requests_total',
    help: 'Requests refused to protect the service or Incode, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })

  constructor(cacheStats?: () => { entries: number; bytes: number; evictions: number; coalesced: number }) {
    collectDefaultMetrics({ register: this.registry })
    const read = (key: 'entries' | 'bytes' | 'evictions' | 'coalesced') =>
      function (this: Gauge) {
        if (cacheStats) this.set(cacheStats()[key])
      }
    this.cacheEntries = new Gauge({
      name: 'gateway_link_cache_entries',
      help: 'Entries in the link cache.',
      registers: [this.registry],
      collect: read('entries'),
    })
    this.cacheBytes = new Gauge({
      name: 'gateway_link_cache_bytes',
      help: 'Bytes held by the link cache.',
      registers: [this.registry],
      collect: read('bytes'),
    })
    this.cacheEvictions = new Gauge({
      name: 'gateway_link_cache_evictions',
      help: 'Entries evicted by the link cache bounds since start.',
      registers: [this.registry],
      collect: read('evictions'),
    })
    this.coalescedWaits = new Gauge({
      name: 'gateway_link_cache_coalesced_waits',
      help: 'Link lookups served by another request’s in-flight upstream call, since start.',
      registers: [this.registry],
      collect: read('coalesced'),
    })
  }
}
