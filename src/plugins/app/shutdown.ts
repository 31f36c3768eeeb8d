import type { FastifyInstance, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { AppError } from '../../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Ends what is still in flight when the shutdown grace is over (server.ts calls it): a request
     * not answered yet gets 503 SHUTTING_DOWN with Retry-After, one whose answer is already on its
     * way is cut (its connection destroyed). Returns how many of each.
     */
    endInFlight(): { answered: number; cut: number }
  }
}

/** Retry-After of the answers given at the end of the grace: another instance takes over. */
const RETRY_AFTER_SECONDS = 1

/** Graceful close: connections closed as their answers end, and the grace's last word. */
export default fp(
  function shutdownPlugin(app: FastifyInstance) {
    const inFlight = new Set<FastifyReply>()
    app.addHook('onRequest', (_request, reply, done) => {
      inFlight.add(reply)
      // Emitted once the answer is written, or when the connection goes first (once per answer:
      // `on`, as `once` wraps every listener anew).
      reply.raw.on('close', () => inFlight.delete(reply))
      done()
    })

    // Node closes the connections that are idle when close() begins, but a keep-alive connection
    // whose answer was still streaming then stays open after it, until the client's keep-alive
    // timeout, and holds close() past the shutdown grace. While closing, each connection is closed
    // as soon as its answer has been sent.
    let closing = false
    app.addHook('preClose', (done) => {
      closing = true
      done()
    })
    app.addHook('onResponse', (_request, _reply, done) => {
      if (closing) setImmediate(() => app.server.closeIdleConnections())
      done()
    })

    app.decorate('endInFlight', () => {
      let answered = 0
      let cut = 0
      for (const reply of inFlight) {
        inFlight.delete(reply)
        if (reply.raw.headersSent) {
          // Part of the answer is out: a status can no longer be given, only an incomplete body.
          reply.raw.destroy()
          cut++
        } else {
          // Through the one error handler: problem+json on /v1, Incode's body on drop-in paths.
          void reply.send(
            new AppError(503, 'SHUTTING_DOWN', 'The service is shutting down; retry the request', {
              retryAfterSeconds: RETRY_AFTER_SECONDS,
            }),
          )
          answered++
        }
      }
      return { answered, cut }
    })
  },
  { name: 'shutdown' },
)
