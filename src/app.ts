import { looksLikeCredential } from './domain/credentialShape.js'
import { randomUUID } from 'node:crypto'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'
import accessTrail, { type AccessTrailSink } from './plugins/app/accessTrail.js'
import auth from './plugins/app/auth.js'
import bodies from './plugins/app/bodies.js'
import { clientErrorHandler } from './plugins/app/clientError.js'
import errors, { sendError } from './plugins/app/errors.js'
import { frameworkAnswer } from './plugins/app/frameworkErrors.js'
import metrics from './plugins/app/metrics.js'
import notFound from './plugins/app/notFound.js'
import { lazyChildLogger } from './plugins/app/requestLogger.js'
import services, { type ServiceOverrides } from './plugins/app/services.js'
import shutdown from './plugins/app/shutdown.js'
import limits from './plugins/external/limits.js'
import security from './plugins/external/security.js'
import swagger from './plugins/external/swagger.js'
import dropInRoutes from './routes/dropIn.js'
import healthRoutes from './routes/health.js'
import v1Routes from './routes/v1/index.js'
import type { LazySchemaCompilers } from './schemaCompilers.js'
import { sharedSchemas } from './schemas.js'

export interface BuildOptions {
  /** Where log lines go (tests capture them); stdout by default. */
  logStream?: NodeJS.WritableStream
  overrides?: ServiceOverrides
  /** Compile schemas on first use (server.ts warms them up after listening); eager by default. */
  lazySchemas?: LazySchemaCompilers
  /** Takes the access trail's lines instead of ACCESS_TRAIL's destination (tests capture them). */
  accessTrail?: AccessTrailSink
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * Header values and fields that must never reach a log line. Request headers are logged at
 * `trace` level only (see the `req` serializer), and every credential header is censored there.
 */
export const REDACTED_PATHS = [
  'req.headers["x-api-key"]',
  'req.headers["x-incode-hardware-id"]',
  'req.headers["x-incode-session-token"]',
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  // Node's raw bytes of a request its parser refused (Fastify logs the error at trace level):
  // they hold the request's headers, credentials included.
  'err.rawPacket',
]

interface LoggedRequest {
  method: string
  url: string
  id: string
  headers: Record<string, string | string[] | undefined>
}

export function fastifyOptions(config: Config, options: BuildOptions = {}): FastifyServerOptions {
  return {
    logger: {
      level: config.LOG_LEVEL,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: {
        // The query string is left out: a broken client may put a token in `?id=`. Headers only
        // at trace level, for debugging, with the credentials censored (REDACTED_PATHS).
        req: (req: LoggedRequest) => ({
          method: req.method,
          url: req.url.split('?')[0] ?? req.url,
          reqId: req.id,
          ...(config.LOG_LEVEL === 'trace' ? { headers: { ...req.headers } } : {}),
        }),
      },
      ...(options.logStream ? { stream: options.logStream } : {}),
    },
    // Each request's child logger is made on its first line written (most requests write none).
    childLoggerFactory: lazyChildLogger,
    // A caller's x-request-id is kept only when it is a short, plain token: it is logged and sent
    // to Incode, so anything else is replaced by a fresh id.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) && !looksLikeCredential(given)
        ? given
        : randomUUID()
    },
    bodyLimit: config.BODY_LIMIT_BYTES,
    // Behind a load balancer every caller comes from its address: TRUST_PROXY names the proxies
    // whose X-Forwarded-For is believed, so address-keyed limits see the real caller.
    ...(config.TRUST_PROXY === '' ? {} : { trustProxy: config.TRUST_PROXY }),
    ...(options.lazySchemas ? { schemaController: { compilersFactory: options.lazySchemas.factory } } : {}),
    // Malformed URLs and over-long params are refused by Fastify before routing: answer them
    // through the one error handler's shapes too.
    frameworkErrors: (error, request, reply) => {
      void sendError(request, reply.header('x-request-id', request.id), frameworkAnswer(error, request))
    },
    // Requests Node's HTTP parser refuses (a 100k-character URL): problem+json too.
    clientErrorHandler,
    // Incode's error bodies and ours are small; a slow client must not hold a socket forever.
    requestTimeout: config.REQUEST_DEADLINE_MS + 15_000,
    ajv: {
      customOptions: {
        // Strict schemas: unknown properties are refused, not silently dropped.
        removeAdditional: false,
        // Stop at the first problem: with allErrors, a body of thousands of bad items costs a check
        // and an error object per item (and once answered them all, megabytes of 400).
        allErrors: false,
        // No coercion: `"images": "selfie"` is a client bug Incode refuses, not a one-item list.
        coerceTypes: false,
        useDefaults: true,
      },
    },
  }
}

/** Builds the whole app from a config object; server.ts and the tests call exactly this. */
export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(fastifyOptions(config, options)).withTypeProvider<TypeBoxTypeProvider>()

  for (const schema of sharedSchemas) app.addSchema(schema)

  // Set as the request comes in (errors keep it; frameworkErrors, which runs no hook, sets its
  // own): an onSend hook for it ran a hook chain on every answer.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })

  // First, so that every request is known to it from its first hook on.
  await app.register(shutdown)
  await app.register(errors)
  await app.register(notFound)
  await app.register(bodies)
  await app.register(services, { config, ...(options.overrides ? { overrides: options.overrides } : {}) })
  // Before auth and the limits: refused requests get their access event too.
  await app.register(accessTrail, options.accessTrail ? { sink: options.accessTrail } : {})
  await app.register(metrics)
  // Security headers first, so that every answer carries them, refusals by auth included.
  await app.register(security)
  await app.register(auth)
  await app.register(limits)
  await app.register(swagger)

  await app.register(healthRoutes)
  await app.register(v1Routes, { prefix: '/v1' })
  await app.register(dropInRoutes)

  return app
}
