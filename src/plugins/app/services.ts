import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { TokenVerdicts } from '../../auth/tokenVerdicts.js'
import { LinkCache } from '../../cache/linkCache.js'
import { hasAdminCredentials, type Config } from '../../config.js'
import { SizeEstimator } from '../../domain/sizeEstimator.js'
import { AdminTokenProvider } from '../../upstream/adminToken.js'
import { IncodeClient } from '../../upstream/incode.js'
import { UpstreamPolicy } from '../../upstream/policy.js'
import { retryInterceptors } from '../../upstream/retry.js'
import { Transport } from '../../upstream/transport.js'
import { Readiness } from '../../readiness.js'
import { Metrics } from '../../metrics.js'
import type { LinkLookupDeps } from '../../services/linkLookup.js'
import { ByteBudget } from '../../services/byteBudget.js'
import { Fleet } from '../../fleet/redis.js'
import { FleetAdminTokenStore } from '../../fleet/adminTokenStore.js'
import { fleetUpstreamRateLimiter } from '../../fleet/upstreamBudget.js'
import { LinkStore } from '../../fleet/linkStore.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    adminTokens: AdminTokenProvider | undefined
    incode: IncodeClient
    /** Incode's verdicts on callers' tokens: refusals answered from memory, acceptances for rate limits. */
    tokenVerdicts: TokenVerdicts
    linkCache: LinkCache
    sizeEstimator: SizeEstimator
    /** Bounds the base64 answer bytes held across all requests. */
    answerMemory: ByteBudget
    readiness: Readiness
    /** The service's own Prometheus metrics. */
    gatewayMetrics: Metrics
    /** Fleet mode's shared state in Redis; undefined without REDIS_URL (one process, in memory). */
    fleet: Fleet | undefined
    /** The service's clock (tests inject a fake one). */
    now: () => number
    linkDeps: LinkLookupDeps
  }
}

export interface ServiceOverrides {
  /** Clock for token expiry and link TTLs (tests use a fake one). */
  now?: () => number
}

/** The service's own long-lived objects, created once per app and closed with it. */
export default fp(
  function servicesPlugin(app: FastifyInstance, opts: { config: Config; overrides?: ServiceOverrides }) {
    const { config } = opts
    const now = opts.overrides?.now
    // The cache-stats callback reads the cache lazily, at scrape time.
    const metrics = new Metrics(
      () => app.linkCache.stats(),
      () => ({
        reservedBytes: app.answerMemory.reserved(),
        limitBytes: app.answerMemory.maxBytes,
      }),
    )
    // The upstream line: Incode client and admin token → policy → transport.
    const fleet = config.REDIS_URL === undefined ? undefined : new Fleet({ config, log: app.log, metrics })
    const transport = new Transport(config, { interceptors: retryInterceptors(config.RETRY_MAX) })
    // Fleet mode: the request-rate budget and the admin token are shared by the replicas.
    const sharedRateLimiter =
      fleet && config.UPSTREAM_RATE_PER_SEC > 0
        ? fleetUpstreamRateLimiter(fleet, config.UPSTREAM_RATE_PER_SEC)
        : undefined
    const policy = new UpstreamPolicy(config, { transport, metrics, sharedRateLimiter })
    const adminTokens = hasAdminCredentials(config)
      ? new AdminTokenProvider({
          config,
          policy,
          metrics,
          ...(now ? { now } : {}),
          ...(fleet ? { shared: new FleetAdminTokenStore(fleet, now) } : {}),
        })
      : undefined
    app.decorate('config', config)
    app.decorate('adminTokens', adminTokens)
    const tokenVerdicts = new TokenVerdicts({
      refusalTtlMs: config.TOKEN_REFUSAL_TTL_MS,
      maxEntries: config.TOKEN_MEMORY_MAX_ENTRIES,
      ...(now ? { now } : {}),
    })
    app.decorate('tokenVerdicts', tokenVerdicts)
    app.decorate(
      'incode',
      new IncodeClient({ config, policy, tokenVerdicts, ...(adminTokens ? { adminTokens } : {}) }),
    )
    app.decorate(
      'linkCache',
      new LinkCache({
        maxEntries: config.LINK_CACHE_MAX_ENTRIES,
        maxBytes: config.LINK_CACHE_MAX_BYTES,
        marginMs: config.LINK_CACHE_MARGIN_MS,
        missingTtlMs: config.LINK_CACHE_MISSING_TTL_MS,
        ...(now ? { now } : {}),
      }),
    )
    app.decorate('sizeEstimator', new SizeEstimator())
    app.decorate(
      'answerMemory',
      new ByteBudget(config.ANSWER_MEMORY_BYTES, config.ANSWER_MEMORY_PER_CALLER_BYTES, () =>
        metrics.shed.inc({ reason: 'answer_memory' }),
      ),
    )
    app.decorate('gatewayMetrics', metrics)
    app.decorate('now', now ?? Date.now)
    app.decorate('linkDeps', {
      incode: app.incode,
      linkCache: app.linkCache,
      metrics,
      now: app.now,
      deadlineMs: config.REQUEST_DEADLINE_MS,
    })
    app.decorate('fleet', fleet)
    if (fleet) {
      const linkStore = new LinkStore({
        fleet,
        marginMs: config.LINK_CACHE_MARGIN_MS,
        missingTtlMs: config.LINK_CACHE_MISSING_TTL_MS,
        lockTtlMs: config.FLEET_LOCK_TTL_MS,
        pollMs: config.FLEET_LOCK_POLL_MS,
        metrics,
        ...(now ? { now } : {}),
      })
      app.linkDeps.linkStore = linkStore
      // Not awaited: with Redis down at start the subscriptions wait for it (ioredis resubscribes).
      void linkStore.listen((interviewId) => app.linkCache.invalidate(interviewId))
    }
    app.decorate('readiness', new Readiness({ policy, adminTokens, fleet }))
    app.addHook('onClose', async () => {
      await Promise.all([transport.close(), fleet?.close()])
    })
  },
  { name: 'services' },
)
