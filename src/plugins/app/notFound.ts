import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { isDropIn, sendError } from './errors.js'

interface Served {
  method: string
  url: string
  /** The route's URL as a whole-path pattern: `:param` one segment, `*` anything. */
  pattern: RegExp
  dropIn: boolean
}

function pathPattern(url: string): RegExp {
  const parts = url.split(/(:[A-Za-z0-9_]+|\*)/).map((part) => {
    if (part === '*') return '.*'
    if (part.startsWith(':')) return '[^/]+'
    return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  })
  return new RegExp(`^${parts.join('')}$`)
}

/** `/v1/sessions/:interviewId/images` as the README and the OpenAPI document write it. */
function shown(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

/** Caller text echoed in an answer: printable ASCII, bounded. */
function echoed(path: string): string {
  const clean = path.replace(/[^\x21-\x7e]/g, '?')
  return clean.length <= 200 ? clean : `${clean.slice(0, 199)}…`
}

/**
 * Requests no route takes. A path served for other methods answers 405 with `Allow`; any other
 * path 404, listing what is served in its family: the drop-in Incode paths for `/omni/…`,
 * `/0/omni/…` and `/executive/…` (an Incode client pointed here for its image calls also sends
 * its session and log-in calls, which must go to Incode itself), the /v1 routes for `/v1/…`.
 */
export default fp(
  function notFoundPlugin(app: FastifyInstance) {
    const served: Served[] = []
    app.addHook('onRoute', (route) => {
      // OPTIONS is answered on every path (CORS preflight): it is neither listed nor allowed.
      for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
        if (method === 'OPTIONS') continue
        const dropIn = route.config?.dropIn === true
        served.push({ method, url: route.url, pattern: pathPattern(route.url), dropIn })
      }
    })

    let listings: { dropIn: string; v1: string } | undefined
    app.addHook('onReady', (done) => {
      listings = { dropIn: dropInListing(served), v1: v1Listing(served) }
      done()
    })

    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?')[0] ?? request.url
      const allowed = served.filter((r) => r.pattern.test(path)).map((r) => r.method)
      // A path whose own method matched (and was refused otherwise) is not a 405.
      if (allowed.length > 0 && !allowed.includes(request.method)) {
        void reply.header('allow', allowed.join(', '))
        return sendError(request, reply, {
          status: 405,
          code: 'METHOD_NOT_ALLOWED',
          detail: `${request.method} is not allowed on this path; it answers ${allowed.join(', ')}`,
        })
      }
      if (isDropIn(request)) {
        return sendError(request, reply, {
          status: 404,
          code: 'NOT_FOUND',
          detail: listings?.dropIn ?? 'Not Found',
        })
      }
      const noRoute = `No route ${request.method} ${echoed(path)}`
      const detail = /^\/v1(\/|$)/.test(path) && listings ? `${noRoute}. ${listings.v1}` : noRoute
      return sendError(request, reply, { status: 404, code: 'NOT_FOUND', detail })
    })
  },
  { name: 'not-found', dependencies: ['errors'] },
)

function dropInListing(served: Served[]): string {
  const routes = served.filter((r) => r.dropIn && r.method !== 'HEAD').map((r) => `${r.method} ${r.url}`)
  const plain = routes.filter((r) => !r.includes(' /0/'))
  const zeroToo = plain.length > 0 && plain.every((r) => routes.includes(r.replace(' /', ' /0/')))
  const list = zeroToo ? `${plain.join(', ')} (each also under /0)` : routes.join(', ')
  return (
    `Not served by this gateway, which serves only these Incode paths: ${list}. ` +
    'Call Incode directly for every other path (/omni/start, /executive/log-in, …).'
  )
}

function v1Listing(served: Served[]): string {
  const routes = served
    .filter((r) => r.url.startsWith('/v1/') && r.method !== 'HEAD')
    .map((r) => `${r.method} ${shown(r.url)}`)
  return `The /v1 routes are: ${routes.join(', ')} (documented at /docs).`
}
