import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import pino from 'pino'
import { presentedToken } from '../../auth/callerKey.js'
import {
  accessEventLine,
  buildAccessEvent,
  newAccessRecord,
  type AccessRecord,
} from '../../domain/accessEvent.js'
import { readTokenClaims } from '../../domain/tokenClaims.js'
import { headerValue, INCODE_TOKEN_HEADER, SESSION_TOKEN_HEADER } from '../../routes/context.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route touches images or links: each request gets an access event. Routes tagged
     * `images`, `links` or `incode` get it unless they set it to false.
     */
    accessTrail?: boolean
  }
  interface FastifyRequest {
    /** What the services served, for the access event (set on access-trail routes only). */
    accessRecord: AccessRecord | undefined
  }
}

/** Where the trail's lines go: a pino destination, or a test's in-memory capture. */
export interface AccessTrailSink {
  write(line: string): unknown
}

export interface AccessTrailOptions {
  /** Takes the lines instead of ACCESS_TRAIL's destination (tests capture them in memory). */
  sink?: AccessTrailSink
}

const TRAILED_TAGS = new Set(['images', 'links', 'incode'])
/** Characters of the token's SHA-256 the trail keeps: enough to tell callers apart, 64 bits. */
const TOKEN_HASH_CHARS = 16
/** An error code the trail keeps; anything else (a library's free text) is left out. */
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/

type Destination = ReturnType<typeof pino.destination>

/**
 * ACCESS_TRAIL's destination: stdout, stderr, or a file (appended to, reopened on SIGHUP).
 * Written synchronously, as pino writes the operational log: the lines come batched, one write per
 * turn of the event loop (batchedSink), and one write(2) costs less than an asynchronous write's
 * trip through the thread pool (which was ~8% of a cached links answer's CPU time).
 */
function openDestination(target: string): Destination | undefined {
  if (target === 'off') return undefined
  if (target === 'stdout') return pino.destination({ dest: 1, sync: true })
  if (target === 'stderr') return pino.destination({ dest: 2, sync: true })
  return pino.destination({ dest: target, sync: true, mkdir: true })
}

/** Who made the request, as the trail names it: never a key or a token, at most a hash. */
function callerOf(request: FastifyRequest): string {
  const partner = request.partner ?? request.authRefusal?.partner
  if (partner) return `partner:${partner.name}`
  const token = presentedToken(request, request.server.tokenVerdicts)
  return token ? `token:${token.hash.slice(0, TOKEN_HASH_CHARS)}` : 'none'
}

/** Interview IDs the request names, best first: the path's, the drop-in `?id=`, the token's claim. */
function interviewIdsOf(request: FastifyRequest): unknown[] {
  const params = request.params as { interviewId?: unknown } | undefined
  const query = request.query as { id?: unknown } | undefined
  const ids: unknown[] = [params?.interviewId, query?.id]
  if (!ids.some((id) => typeof id === 'string' && id !== '')) {
    const header = request.routeOptions.config.dropIn === true ? INCODE_TOKEN_HEADER : SESSION_TOKEN_HEADER
    const token = headerValue(request, header)
    if (token !== undefined) ids.push(readTokenClaims(token).interviewId)
  }
  return ids
}

/** The types asked for: the body's `images`, or the single-image routes' path `type`. */
function askedImagesOf(request: FastifyRequest): unknown {
  const body = request.body as { images?: unknown } | null | undefined
  if (typeof body === 'object' && body !== null) return body.images
  const type = (request.params as { type?: unknown } | undefined)?.type
  return type === undefined ? undefined : [type]
}

/** Bytes the connection has taken so far, where there is a real one (not under app.inject). */
function bytesOf(socket: Socket | null | undefined): number | undefined {
  const written: unknown = socket?.bytesWritten
  return typeof written === 'number' ? written : undefined
}

/** Written once per request, when its answer ends: finished, cut, or left by the caller. */
function traceRequest(request: FastifyRequest, reply: FastifyReply, sink: AccessTrailSink): void {
  const record = newAccessRecord()
  request.accessRecord = record
  const startedAtMs = Date.now()
  const { socket } = request.raw
  const bytesBefore = bytesOf(socket)
  // 'finish': the whole answer was handed to the connection (writableFinished says the same on a
  // real socket, not under app.inject).
  let finished = false
  // `on`, not `once`: each is emitted once per answer, and `once` wraps every listener anew.
  reply.raw.on('finish', () => {
    finished = true
  })
  reply.raw.on('close', () => {
    const { raw } = reply
    finished ||= raw.writableFinished
    const bytesAfter = bytesOf(socket)
    const length = Number(raw.getHeader('content-length'))
    const bytes =
      bytesBefore !== undefined && bytesAfter !== undefined
        ? bytesAfter - bytesBefore
        : finished && Number.isFinite(length)
          ? length
          : undefined
    const event = buildAccessEvent({
      endedAtMs: Date.now(),
      startedAtMs,
      requestId: request.id,
      traceparent: request.headers.traceparent,
      method: request.method,
      routeUrl: request.routeOptions.url ?? '',
      caller: callerOf(request),
      ip: request.ip,
      interviewIds: interviewIdsOf(request),
      askedImages: askedImagesOf(request),
      record,
      status: raw.statusCode,
      finished,
      headersSent: raw.headersSent,
      bytes,
    })
    sink.write(accessEventLine(event))
  })
}

/**
 * The destination's lines, written together once per turn of the event loop: under load many
 * answers end in one turn, and each write to the destination has a cost of its own (a buffer
 * append, and a write call on the thread pool). A line waits at most until the loop's next check
 * phase; `flush` hands over what is pending at once (on close).
 */
export function batchedSink(destination: AccessTrailSink): AccessTrailSink & { flush(): void } {
  let pending = ''
  let scheduled = false
  const flush = (): void => {
    scheduled = false
    if (pending === '') return
    const lines = pending
    pending = ''
    destination.write(lines)
  }
  return {
    write(line: string) {
      pending += line
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
      return true
    },
    flush,
  }
}

/**
 * The access trail: one JSON line per request on a route that touches images or links (see
 * `accessTrail` above), refusals (401/403/429, shedding's 503) and callers who leave half-way
 * included, to ACCESS_TRAIL's own destination, apart from the operational log. Registered before
 * auth and the limits, so that its onRequest hook runs before any of them can refuse.
 */
export default fp(
  function accessTrailPlugin(app: FastifyInstance, opts: AccessTrailOptions) {
    app.decorateRequest('accessRecord', undefined)
    app.addHook('onRoute', (route) => {
      if (route.config?.accessTrail !== undefined) return
      const tags = (route.schema as { tags?: readonly string[] } | undefined)?.tags ?? []
      if (tags.some((tag) => TRAILED_TAGS.has(tag))) route.config = { ...route.config, accessTrail: true }
    })

    const destination = opts.sink ? undefined : openDestination(app.config.ACCESS_TRAIL)
    const batched = destination ? batchedSink(destination) : undefined
    const sink = opts.sink ?? batched
    // Off: no hook at all, nothing on the hot path.
    if (!sink) return

    app.addHook('onRequest', (request, reply, done) => {
      if (request.routeOptions.config.accessTrail === true) traceRequest(request, reply, sink)
      done()
    })
    app.addHook('onError', (request, _reply, error, done) => {
      const { code } = error as { code?: unknown }
      if (request.accessRecord && typeof code === 'string' && CODE.test(code))
        request.accessRecord.code = code
      done()
    })

    if (!destination || !batched) return
    const isFile = app.config.ACCESS_TRAIL !== 'stdout' && app.config.ACCESS_TRAIL !== 'stderr'
    if (!isFile) {
      // The last lines out before the process ends; stdout and stderr stay open.
      app.addHook('onClose', (_app, done) => {
        batched.flush()
        destination.flush()
        done()
      })
      return
    }
    // Operators' logrotate renames the file, then sends SIGHUP: the next lines go to a new file.
    const reopen = () => {
      destination.reopen()
    }
    process.on('SIGHUP', reopen)
    app.addHook('onClose', async () => {
      process.off('SIGHUP', reopen)
      batched.flush()
      await new Promise<void>((resolve) => {
        destination.once('close', () => {
          resolve()
        })
        destination.end()
      })
    })
  },
  { name: 'accessTrail', dependencies: ['services'] },
)
