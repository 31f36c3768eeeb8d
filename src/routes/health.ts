import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'
import { ProblemRef } from '../schemas.js'
import { sendJsonText } from './context.js'

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
        summary: 'Liveness: the process is up',
        response: { 200: Status },
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
        summary: 'Readiness: config loaded, Incode reachable, admin token obtainable when configured',
        response: { 200: Readiness, 503: Readiness, 500: ProblemRef },
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
