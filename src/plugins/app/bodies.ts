import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { BadRequestError } from '../../errors.js'

type Done = (err: Error | null, body?: unknown) => void

/**
 * The one JSON body parser: Fastify's own (secure-json-parse, which refuses `__proto__` keys and
 * `constructor.prototype`, so that no body can pollute a prototype), saying which of the two went
 * wrong: text that is not JSON, or JSON holding a refused key.
 */
export function parseJsonBody(
  app: FastifyInstance,
): (request: FastifyRequest, body: string, done: Done) => void {
  const parse = app.getDefaultJsonParser('error', 'error')
  return (request, body, done) => {
    void parse(request, body, (err, parsed) => {
      if (err && isJson(body)) {
        done(
          new BadRequestError(
            'The body holds a "__proto__" or "constructor.prototype" key; such keys are refused (they could pollute prototypes)',
            'BODY_FORBIDDEN_KEY',
          ),
        )
      } else done(err, parsed)
    })
  }
}

function isJson(text: string): boolean {
  try {
    // JSON.parse makes such keys own properties: parsing here is safe, and only tells the cases apart.
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

/**
 * Request bodies are JSON only. Fastify also parses text/plain, which would reach validation as a
 * string ("body must be object"): refusing it answers 415 UNSUPPORTED_MEDIA_TYPE instead, as for
 * any other media type.
 */
export default fp(
  function bodiesPlugin(app: FastifyInstance) {
    const parseJson = parseJsonBody(app)
    app.removeContentTypeParser(['application/json', 'text/plain'])
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      parseJson(request, typeof body === 'string' ? body : body.toString('utf8'), done)
    })
  },
  { name: 'bodies' },
)
