import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CallContext } from '../domain/calls.js'

/**
 * The upstream context of one incoming request: its total deadline, and a signal that fires when
 * the caller disconnects before the answer is complete, so that its upstream calls are cancelled.
 */
export function callContext(request: FastifyRequest, reply: FastifyReply): CallContext {
  const controller = new AbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort()
  })
  return {
    signal: controller.signal,
    deadlineAt: Date.now() + request.server.config.REQUEST_DEADLINE_MS,
    requestId: request.id,
  }
}
