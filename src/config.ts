import { Type, type Static } from '@sinclair/typebox'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import { Value } from '@sinclair/typebox/value'
import { parseApiKeys } from './auth/apiKeys.js'

/**
 * Every setting the service reads, as one schema. The type is derived from it, validation,
 * defaults and the conversion of strings come from TypeBox's own Value functions (no Ajv
 * compile at start-up), and `.env.example` plus the README table list
 * the same names. Paths of the Incode endpoints are settings because several are unconfirmed.
 */
const Ms = (def: number, description: string) => Type.Integer({ minimum: 1, default: def, description })

export const ConfigSchema = Type.Object({
  HOST: Type.String({
    default: '127.0.0.1',
    description: 'Address to listen on (0.0.0.0 in the container).',
  }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'Port to listen on.' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info', description: 'pino log level.' },
  ),
  ACCESS_TRAIL: Type.String({
    minLength: 1,
    pattern: '^(stdout|stderr|off|/.+)$',
    default: 'stdout',
    description:
      'Where the access trail (one JSON line per image or link request) goes: stdout, stderr, off, ' +
      'or an absolute file path (appended to, reopened on SIGHUP for log rotation).',
  }),

  INCODE_BASE_URL: Type.String({
    pattern: '^https?://',
    description: 'Base URL of the Incode API, e.g. https://demo-api.incodesmile.com. Required.',
  }),
  INCODE_API_KEY: Type.String({ minLength: 1, description: 'Incode client API key (x-api-key). Required.' }),
  INCODE_API_VERSION: Type.String({ default: '1.0', description: 'Sent as the api-version header.' }),
  INCODE_ADMIN_EMAIL: Type.Optional(
    Type.String({ minLength: 1, description: 'Executive log-in e-mail, used to obtain the admin token.' }),
  ),
  INCODE_ADMIN_PASSWORD: Type.Optional(
    Type.String({ minLength: 1, description: 'Executive log-in password.' }),
  ),
  INCODE_ADMIN_TOKEN: Type.Optional(
    Type.String({ minLength: 1, description: 'A fixed admin token, instead of e-mail and password.' }),
  ),

  INCODE_PATH_IMAGES: Type.String({
    default: '/omni/get/images',
    description: 'Fetch images as base64 (confirmed).',
  }),
  INCODE_PATH_IMAGE_LINKS: Type.String({
    default: '/omni/get/images/v2',
    description: 'Fetch image links (unconfirmed).',
  }),
  INCODE_PATH_SECOND_ID_IMAGES: Type.String({
    default: '/omni/get/second-id/images',
    description: 'Second-ID images (unconfirmed).',
  }),
  INCODE_PATH_CONCATENATED_IMAGES: Type.String({
    default: '/omni/get/concatenated-images',
    description: 'Concatenated images (unconfirmed).',
  }),
  INCODE_PATH_START: Type.String({
    default: '/omni/start',
    description: 'Start or re-open a session (confirmed).',
  }),
  INCODE_PATH_ADMIN_LOGIN: Type.String({
    default: '/executive/log-in',
    description: 'Executive (admin) log-in (confirmed).',
  }),

  UPSTREAM_CONNECTIONS: Type.Integer({
    minimum: 1,
    default: 32,
    description: 'Connections in the pool to Incode.',
  }),
  UPSTREAM_KEEP_ALIVE_MS: Ms(30_000, 'Keep idle upstream connections this long.'),
  UPSTREAM_CONNECT_TIMEOUT_MS: Ms(5_000, 'Connect timeout to Incode.'),
  UPSTREAM_HEADERS_TIMEOUT_MS: Ms(30_000, 'Time to wait for Incode response headers.'),
  UPSTREAM_BODY_TIMEOUT_MS: Ms(30_000, 'Longest pause between two pieces of an Incode response body.'),
  REQUEST_DEADLINE_MS: Ms(
    45_000,
    'Total time one incoming request may take: its upstream calls and writing its answer.',
  ),
  WRITE_STALL_MS: Ms(
    10_000,
    'An answer whose caller takes no byte of it for this long is cut, and the memory it held given back.',
  ),
  UPSTREAM_MAX_RESPONSE_BYTES: Type.Integer({
    minimum: 1,
    default: 11_000_000,
    description: 'Refuse an upstream response larger than this (a little above the 10 MB cap).',
  }),

  CHUNK_BUDGET_BYTES: Type.Integer({
    minimum: 100_000,
    default: 8_000_000,
    description: 'Planned size of one base64 upstream answer; kept under the 10 MB cap as a safety margin.',
  }),
  SPLIT_PLAN: Type.Union([Type.Literal('parallel'), Type.Literal('fewest-calls')], {
    default: 'parallel',
    description:
      "How a base64 list too large for one call is split: 'parallel' packs it into as few calls as fit " +
      'under a per-call size that lets them run side by side (its largest image, or its share of ' +
      'FANOUT_CONCURRENCY calls, at most CHUNK_BUDGET_BYTES), so the answer takes about as long as its ' +
      "slowest image; 'fewest-calls' fills every call up to CHUNK_BUDGET_BYTES. A list that fits is one call either way.",
  }),
  ANSWER_MEMORY_BYTES: Type.Integer({
    minimum: 1_000_000,
    default: 64_000_000,
    description:
      'Base64 answer bytes the whole service holds at once; further parts wait for room (bounds memory under load).',
  }),
  ANSWER_MEMORY_PER_CALLER_BYTES: Type.Integer({
    minimum: 1_000_000,
    default: 16_000_000,
    description:
      "One caller's share of ANSWER_MEMORY_BYTES (callers counted as by the rate limit): its further " +
      "answers wait in its own queue, so callers that do not read cannot shut others out. At least one full set's answer.",
  }),
  FANOUT_CONCURRENCY: Type.Integer({
    minimum: 1,
    default: 4,
    description: 'Upstream calls one request may run at once.',
  }),
  MAX_IMAGES_PER_REQUEST: Type.Integer({
    minimum: 1,
    default: 32,
    description: 'Longest `images` list a request may carry (before duplicates are folded).',
  }),

  LINK_CACHE_MAX_ENTRIES: Type.Integer({
    minimum: 1,
    default: 50_000,
    description: 'Link cache entries at most.',
  }),
  LINK_CACHE_MAX_BYTES: Type.Integer({
    minimum: 1024,
    default: 64 * 1024 * 1024,
    description: 'Link cache size at most (bytes).',
  }),
  LINK_CACHE_MARGIN_MS: Ms(300_000, 'Links are dropped this long before they expire.'),
  LINK_CACHE_MISSING_TTL_MS: Ms(
    60_000,
    'How long "this session has no such image" is cached; a DELETE of the session drops it sooner.',
  ),
  ADMIN_TOKEN_REFRESH_MARGIN_MS: Ms(600_000, 'Renew the admin token this long before it expires.'),
  BODY_LIMIT_BYTES: Type.Integer({
    minimum: 1024,
    default: 65_536,
    description: 'Largest request body accepted (bytes).',
  }),

  // ---- who may call ----
  API_KEYS: Type.String({
    default: '[]',
    description:
      'Partner API keys, as JSON: [{"name","scopes":["images:read","links:read","cache:write","metrics:read","docs:read","incode:proxy"],"sha256":"<hex of the key>"}]. Keys themselves are never configured, only their SHA-256.',
  }),
  DROPIN_KEY_REQUIRED: Type.Boolean({
    default: false,
    description:
      "Drop-in Incode paths also require a partner key with scope incode:proxy in the caller's x-api-key.",
  }),
  DOCS_PUBLIC: Type.Boolean({ default: true, description: 'Serve /docs without a key.' }),
  METRICS_PUBLIC: Type.Boolean({
    default: false,
    description: 'Serve /metrics without a key (else scope metrics:read).',
  }),
  CORS_ORIGINS: Type.String({
    default: '',
    description: 'Comma-separated origins of the frontends allowed by CORS; empty allows none.',
  }),

  // ---- limits ----
  RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 600, description: 'Requests per caller per window.' }),
  RATE_LIMIT_WINDOW_MS: Ms(60_000, 'Rate-limit window.'),
  TOKEN_REFUSAL_TTL_MS: Ms(
    60_000,
    'How long a token Incode refused (401/403) is answered from memory, without calling Incode again.',
  ),
  TOKEN_MEMORY_MAX_ENTRIES: Type.Integer({
    minimum: 1,
    default: 10_000,
    description: 'Tokens remembered as refused, and as accepted, by Incode (each list; hashes only).',
  }),
  UPSTREAM_MAX_CONCURRENT: Type.Integer({
    minimum: 1,
    default: 64,
    description: 'Upstream calls in flight at once, service-wide (bulkhead).',
  }),
  UPSTREAM_MAX_QUEUE: Type.Integer({
    minimum: 0,
    default: 256,
    description: 'Upstream calls waiting for the bulkhead; beyond it requests are shed with 503.',
  }),
  UPSTREAM_RATE_PER_SEC: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'Upstream calls per second at most, service-wide (0: no budget).',
  }),
  SHED_EVENT_LOOP_DELAY_MS: Ms(1_000, 'Shed load with 503 when the event loop lags more than this.'),

  // ---- resilience ----
  RETRY_MAX: Type.Integer({ minimum: 0, default: 2, description: 'Retries of one upstream call at most.' }),
  RETRY_BASE_MS: Ms(100, 'First retry delay (doubled each time, with full jitter).'),
  RETRY_MAX_DELAY_MS: Ms(2_000, 'Longest retry delay.'),
  RETRY_BUDGET_RATIO: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.2,
    description: 'Retries allowed as a fraction of recent upstream calls, so that retries cannot snowball.',
  }),
  BREAKER_FAILURE_THRESHOLD: Type.Integer({
    minimum: 1,
    default: 5,
    description: 'Consecutive upstream failures that open the circuit breaker.',
  }),
  BREAKER_RESET_MS: Ms(10_000, 'How long the breaker stays open before a half-open probe.'),
  SHUTDOWN_GRACE_MS: Ms(30_000, 'On SIGTERM, in-flight requests get this long to finish.'),

  TRUST_PROXY: Type.String({
    default: '',
    description:
      'Addresses or CIDR ranges of the load balancers in front (comma-separated), whose X-Forwarded-For names the caller for address-keyed limits. Empty: the socket address is the caller.',
  }),
  REDIS_URL: Type.Optional(
    Type.String({
      pattern: '^rediss?://',
      description:
        'Fleet mode: redis:// or rediss:// URL of the Redis that replicas share (link cache L2, coalescing, invalidation, limits, admin token). Unset: one process, all in memory.',
    }),
  ),
  FLEET_SECRET: Type.Optional(
    Type.String({
      minLength: 32,
      description:
        'Fleet mode: secret (at least 32 characters) from which the key that encrypts values in Redis and the key that hashes key names are derived. Required with REDIS_URL.',
    }),
  ),
  FLEET_OLD_SECRETS: Type.String({
    default: '',
    description:
      'Fleet mode: earlier FLEET_SECRET values, comma-separated, still accepted for reading during a key rotation.',
  }),
  REDIS_KEY_PREFIX: Type.String({
    default: 'igw:',
    description: 'Fleet mode: prefix of every Redis key this service writes.',
  }),
  REDIS_COMMAND_TIMEOUT_MS: Ms(
    100,
    'Fleet mode: a Redis command not answered in this long fails (the service falls back to local state).',
  ),
  REDIS_BREAKER_RESET_MS: Ms(
    5_000,
    'Fleet mode: after Redis failures, how long the service stays on local state before trying Redis again.',
  ),
  FLEET_LOCK_TTL_MS: Ms(
    10_000,
    'Fleet mode: the lock one replica holds while it fetches links the others wait for expires after this long (a crashed holder blocks no one longer).',
  ),
  FLEET_LOCK_POLL_MS: Ms(
    200,
    "Fleet mode: replicas waiting for another replica's links check Redis this often besides the pub/sub notice (within the request deadline).",
  ),
  RATE_LIMIT_SYNC_MS: Ms(
    100,
    "Fleet mode: each replica counts rate limits in memory and, this often, adds its counts to the fleet's in Redis and reads the fleet's totals back (one round trip for all callers). Over RATE_LIMIT_MAX the fleet may admit what the other replicas admit between syncs (README, In a fleet).",
  ),
})

export type Config = Static<typeof ConfigSchema>

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`)
    this.name = 'ConfigError'
  }
}

/** One line per problem, in words close to Ajv's (the ones operators have seen so far). */
function describe(error: ValueError): { name: string; line: string } {
  const name = error.path.replace(/^\//, '').split('/')[0] ?? ''
  const schema = error.schema as Record<string, unknown>
  const says = (what: string) => ({ name, line: `${name}: ${what}` })
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return says('is required')
    case ValueErrorType.Union:
    case ValueErrorType.Literal:
      return says('must be one of the allowed values')
    case ValueErrorType.Integer:
      return says('must be integer')
    case ValueErrorType.Number:
      return says('must be number')
    case ValueErrorType.Boolean:
      return says('must be boolean (true or false)')
    case ValueErrorType.StringPattern:
      return says(`must match pattern "${String(schema.pattern)}"`)
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return says(`must be >= ${String(schema.minimum)}`)
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return says(`must be <= ${String(schema.maximum)}`)
    case ValueErrorType.StringMinLength:
      return says(`must NOT have fewer than ${String(schema.minLength)} characters`)
    default:
      return says(error.message.toLowerCase())
  }
}

/** Reads and validates the configuration from `env` (process.env by default). Throws ConfigError. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset", as in most .env tooling; names the schema does not know are dropped.
  const data: Record<string, unknown> = {}
  for (const name of Object.keys(ConfigSchema.properties)) {
    const value = env[name]
    if (value !== undefined && value !== '') data[name] = value
  }
  const converted = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, data))
  if (!Value.Check(ConfigSchema, converted)) {
    // Keep the first problem of each setting: a union reports once per member as well.
    const byName = new Map<string, string>()
    for (const error of Value.Errors(ConfigSchema, converted)) {
      const { name, line } = describe(error)
      if (!byName.has(name)) byName.set(name, line)
    }
    throw new ConfigError([...byName.values()])
  }
  const config = converted
  const problems: string[] = []
  if (config.INCODE_ADMIN_EMAIL !== undefined && config.INCODE_ADMIN_PASSWORD === undefined)
    problems.push('INCODE_ADMIN_PASSWORD: is required when INCODE_ADMIN_EMAIL is set')
  if (config.INCODE_ADMIN_PASSWORD !== undefined && config.INCODE_ADMIN_EMAIL === undefined)
    problems.push('INCODE_ADMIN_EMAIL: is required when INCODE_ADMIN_PASSWORD is set')
  if (config.CHUNK_BUDGET_BYTES >= config.UPSTREAM_MAX_RESPONSE_BYTES)
    problems.push('CHUNK_BUDGET_BYTES: must be below UPSTREAM_MAX_RESPONSE_BYTES')
  if (config.REDIS_URL !== undefined && config.FLEET_SECRET === undefined)
    problems.push('FLEET_SECRET: is required when REDIS_URL is set')
  problems.push(...parseApiKeys(config.API_KEYS).problems)
  if (problems.length > 0) throw new ConfigError(problems)
  return config
}

/** Whether the admin-token routes can work: credentials or a fixed token are configured. */
export function hasAdminCredentials(config: Config): boolean {
  return config.INCODE_ADMIN_TOKEN !== undefined || config.INCODE_ADMIN_EMAIL !== undefined
}
