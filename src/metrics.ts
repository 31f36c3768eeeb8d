import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** What the link cache reports at scrape time: levels (entries, bytes) and running totals. */
export interface CacheStats {
  entries: number
  bytes: number
  evictions: number
  coalesced: number
}

/** The base64 answer memory (services/byteBudget.ts) at scrape time: bytes reserved, and the bound. */
export interface AnswerMemoryStats {
  reservedBytes: number
  limitBytes: number
}

/**
 * Every metric the service exports on /metrics, on a registry of its own per app (tests build
 * many apps in one process). HTTP request metrics (plugins/app/metrics.ts) are on the same registry.
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
  readonly linkStoreLookups = new Counter({
    name: 'gateway_link_cache_l2_lookups_total',
    help: "Fleet mode: image types looked up in the shared cache (Redis) after missing this replica's, by result: hit, miss, corrupt (unreadable, deleted), unavailable (Redis down or slow), waited (fetched by another replica while this one waited).",
    labelNames: ['result'] as const,
    registers: [this.registry],
  })
  readonly fleetDegraded = new Gauge({
    name: 'gateway_fleet_degraded',
    help: 'Fleet mode: 1 while Redis is unavailable and the replica runs on local state, else 0 (also 0 without Redis).',
    registers: [this.registry],
  })
  readonly fleetRedisFailures = new Counter({
    name: 'gateway_fleet_redis_failures_total',
    help: 'Fleet mode: Redis commands that failed or timed out, and commands skipped while degraded.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })
  readonly cacheEntries: Gauge
  readonly cacheBytes: Gauge
  readonly cacheEvictions: Counter
  readonly coalescedWaits: Counter
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
  readonly adminLoginFailures = new Counter({
    name: 'gateway_admin_token_login_failures_total',
    help: 'Admin log-ins that failed (refused, unanswered, or answered without a token).',
    registers: [this.registry],
  })
  readonly shed = new Counter({
    name: 'gateway_shed_requests_total',
    help: 'Requests refused to protect the service or Incode, by reason (event_loop, rate_limit, bulkhead, upstream_rate, answer_memory).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })

  readonly answerMemoryReserved: Gauge
  readonly answerMemoryLimit: Gauge

  constructor(cacheStats?: () => CacheStats, answerMemory?: () => AnswerMemoryStats) {
    collectDefaultMetrics({ register: this.registry })
    const level = (key: 'entries' | 'bytes') =>
      function (this: Gauge) {
        if (cacheStats) this.set(cacheStats()[key])
      }
    // The cache keeps cumulative totals; a scrape adds what grew since the last one, so these are
    // true counters (rate() and increase() work) without the cache knowing about Prometheus.
    const total = (key: 'evictions' | 'coalesced') => {
      let exported = 0
      return function (this: Counter) {
        if (!cacheStats) return
        const now = cacheStats()[key]
        if (now > exported) this.inc(now - exported)
        exported = Math.max(exported, now)
      }
    }
    this.cacheEntries = new Gauge({
      name: 'gateway_link_cache_entries',
      help: 'Entries in the link cache.',
      registers: [this.registry],
      collect: level('entries'),
    })
    this.cacheBytes = new Gauge({
      name: 'gateway_link_cache_bytes',
      help: 'Bytes held by the link cache.',
      registers: [this.registry],
      collect: level('bytes'),
    })
    this.cacheEvictions = new Counter({
      name: 'gateway_link_cache_evictions_total',
      help: 'Entries evicted by the link cache bounds.',
      registers: [this.registry],
      collect: total('evictions'),
    })
    this.coalescedWaits = new Counter({
      name: 'gateway_link_cache_coalesced_waits_total',
      help: 'Link lookups served by another request’s in-flight upstream call.',
      registers: [this.registry],
      collect: total('coalesced'),
    })
    const memory = (key: keyof AnswerMemoryStats) =>
      function (this: Gauge) {
        if (answerMemory) this.set(answerMemory()[key])
      }
    this.answerMemoryReserved = new Gauge({
      name: 'gateway_answer_memory_reserved_bytes',
      help: 'Base64 answer bytes reserved in the answer memory (ANSWER_MEMORY_BYTES) right now.',
      registers: [this.registry],
      collect: memory('reservedBytes'),
    })
    this.answerMemoryLimit = new Gauge({
      name: 'gateway_answer_memory_limit_bytes',
      help: 'The answer memory bound (ANSWER_MEMORY_BYTES).',
      registers: [this.registry],
      collect: memory('limitBytes'),
    })
  }
}
