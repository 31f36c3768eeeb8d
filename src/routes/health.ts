import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { sendJsonText } from './context.js'
import { probeAnswer, problemAnswer } from './responses.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A health probe: answered even while load is shed (plugins/external/limits.ts). */
    probe?: boolean
  }
}

const Status = Type.Object({ status: Type.String({ examples: ['ok'] }) })
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not-ready')]),
  checks: Type.Record(
    Type.String(),
    Type.Object({ ok: Type.Boolean(), detail: Type.Optional(Type.String()) }),
  ),
})

/**
 * Cheap, unauthenticated probes for orchestrators and the container HEALTHCHECK. They answer
 * JSON text they build themselves: the schemas document them, but the first probe then does not
 * wait for a serializer to compile (schemas compile on first use, see schemaCompilers.ts).
 */
const OK = JSON.stringify({ status: 'ok' })

const healthRoutes: FastifyPluginAsync = async (app) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        operationId: 'getLiveness',
        summary: 'Liveness: the process is up',
        description: 'Answers while the process runs; for orchestrators. No credential.',
        security: [],
        response: { 200: probeAnswer('The process is up.', Status, { status: 'ok' }) },
      },
      logLevel: 'warn',
      config: { probe: true },
    },
    (_request, reply) => sendJsonText(reply, OK),
  )

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        operationId: 'getReadiness',
        summary: 'Readiness: config loaded, Incode reachable, admin token obtainable when configured',
        description: 'Each check says whether it passed; the instance is ready when all did. No credential.',
        security: [],
        response: {
          200: probeAnswer('Ready: every check passed.', Readiness, {
            status: 'ready',
            checks: { config: { ok: true }, upstream: { ok: true }, imageEndpoints: { ok: true } },
          }),
          503: probeAnswer('Not ready: a check failed (its detail says why).', Readiness, {
            status: 'not-ready',
            checks: { config: { ok: true }, upstream: { ok: false, detail: 'Incode is unreachable' } },
          }),
          500: problemAnswer('The checks themselves failed unexpectedly.', { rateLimited: false }),
        },
      },
      logLevel: 'warn',
      config: { probe: true },
    },
    async (_request, reply) => {
      const checks = await app.readiness.check()
      const ok = Object.values(checks).every((c) => c.ok)
      return sendJsonText(
        reply.code(ok ? 200 : 503),
        JSON.stringify({ status: ok ? 'ready' : 'not-ready', checks }),
      )
    },
  )
}

export default healthRoutes
