import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ScannedEntry } from '../domain/flatJson.js'
import type { ImageType } from '../domain/imageTypes.js'
import { incodeLinksAnswerJson } from '../domain/links.js'
import { foldTypes } from '../domain/requestedTypes.js'
import { IncodeErrorRef, ImageTypeSchema, interviewIdSchema } from '../schemas.js'
import { lookupLinks } from '../services/linkLookup.js'
import { splitFetch } from '../services/splitFetch.js'
import { callerMemory, watchedAnswer } from '../services/writeWatch.js'
import type { Caller, IncodeEndpoint } from '../domain/calls.js'
import {
  callContext,
  emptyBodyIsEmptyObject,
  INCODE_TOKEN_HEADER,
  noStore,
  sendJsonText,
  sessionCaller,
} from './context.js'

// The interview ID in the form the /v1 routes take it; an empty `?id=` counts as none, as on Incode.
const Query = Type.Object({
  id: Type.Optional(
    interviewIdSchema('Interview ID; optional with a session token, required with an admin token.', {
      emptyMeansAbsent: true,
    }),
  ),
})

const Headers = Type.Object({
  'x-incode-hardware-id': Type.Optional(
    Type.String({ description: 'Incode session or admin token (required).' }),
  ),
  'x-api-key': Type.Optional(Type.String({ description: 'Accepted and replaced by the service key.' })),
  'api-version': Type.Optional(Type.String({ examples: ['1.0'] })),
})

const incodeErrors = {
  400: IncodeErrorRef,
  401: IncodeErrorRef,
  403: IncodeErrorRef,
  404: IncodeErrorRef,
  502: IncodeErrorRef,
  503: IncodeErrorRef,
  504: IncodeErrorRef,
}

// Shapes guaranteed by the route schemas (validated before the handlers run).
type DropInQuery = { id?: string }
type DropInBody = { images?: ImageType[] }

function tokenCaller(request: FastifyRequest): Extract<Caller, { kind: 'token' }> {
  const { id } = request.query as DropInQuery
  return sessionCaller(request, INCODE_TOKEN_HEADER, id === '' ? undefined : id)
}

/**
 * Incode's own paths (and their `/0` forms), answering with Incode's query, headers, body, answer
 * shape and error body, so that existing Incode clients only change their base URL. Splitting
 * and link caching happen behind them.
 */
const dropInRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app
  const images = Type.Array(Type.Ref(ImageTypeSchema), {
    minItems: 1,
    maxItems: config.MAX_IMAGES_PER_REQUEST,
  })
  const Body = Type.Object({ images })
  const OptionalBody = Type.Object({ images: Type.Optional(images) })
  const FlatImages = Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()]), {
    description: 'Image type → base64, as Incode answers.',
  })
  const IncodeLinks = Type.Record(
    Type.String(),
    Type.Union([Type.String(), Type.Record(Type.String(), Type.String())]),
    {
      description:
        '`<type>` → latest link and `<type>_prevAttempts` → {capture ms: link}, as Incode answers.',
    },
  )

  const paths: Record<IncodeEndpoint, string> = {
    images: config.INCODE_PATH_IMAGES,
    imageLinks: config.INCODE_PATH_IMAGE_LINKS,
    secondIdImages: config.INCODE_PATH_SECOND_ID_IMAGES,
    concatenatedImages: config.INCODE_PATH_CONCATENATED_IMAGES,
  }

  const routeOptions = (summary: string, body: typeof Body | typeof OptionalBody, ok: unknown) => ({
    config: { dropIn: true },
    schema: {
      tags: ['incode'],
      summary,
      querystring: Query,
      headers: Headers,
      security: [{ incodeToken: [] }],
      body,
      response: { 200: ok, ...incodeErrors },
    },
  })

  for (const zero of [false, true]) {
    const prefix = zero ? '/0' : ''
    const note = zero ? ' (session token alone)' : ''

    const base64 =
      (endpoint: 'images' | 'secondIdImages') => async (request: FastifyRequest, reply: FastifyReply) => {
        const caller = tokenCaller(request)
        const types = foldTypes((request.body as DropInBody).images ?? [])
        const parts: Array<{ entries: ScannedEntry[]; requested: Set<string>; body: Buffer }> = []
        const ctx = callContext(request, reply)
        // Every part is held until the merged answer is sent: reserve the whole answer up front
        // (reserving part by part while holding earlier parts could deadlock under load), and keep
        // it until the socket has taken the answer's last byte (or the answer is cut).
        const release = await callerMemory(request).reserve(app.sizeEstimator.estimateTotal(types), ctx)
        let handedOn = false
        const send = (body: Buffer) => {
          const answer = watchedAnswer(reply, ctx.deadlineAt)
          answer.hold(release)
          handedOn = true
          answer.add(body)
          answer.end()
          return reply.header('content-length', body.length).send(answer)
        }
        try {
          const outcome = await splitFetch({
            incode: app.incode,
            estimator: app.sizeEstimator,
            telemetry: app.telemetry,
            budgetBytes: config.CHUNK_BUDGET_BYTES,
            concurrency: config.FANOUT_CONCURRENCY,
            plan: config.SPLIT_PLAN,
            endpoint,
            caller,
            types,
            ctx,
            failFast: true,
            zeroPath: zero,
            onAnswer: (chunk, entries, body) => {
              parts.push({ entries, requested: new Set(chunk), body })
            },
          })
          noStore(reply).type('application/json')
          const only = parts[0]
          if (parts.length === 1 && outcome.upstreamCalls === 1 && only) {
            // One call answered everything: pass Incode's answer on untouched.
            return send(only.body)
          }
          // Any part failing fails the whole answer (failFast), so here every part succeeded; all of
          // them are held until then, as Incode's status line cannot be known before.
          const pieces: Buffer[] = []
          for (const part of parts) {
            for (const entry of part.entries) {
              if (!part.requested.has(entry.key)) continue
              pieces.push(Buffer.from(`${pieces.length === 0 ? '{' : ','}${JSON.stringify(entry.key)}:`))
              pieces.push(
                entry.kind === 'string'
                  ? Buffer.concat([QUOTE, entry.raw, QUOTE])
                  : entry.kind === 'null'
                    ? NULL
                    : entry.raw,
              )
            }
          }
          pieces.push(Buffer.from(pieces.length === 0 ? '{}' : '}'))
          return send(Buffer.concat(pieces))
        } finally {
          // Nothing will be sent (an error answer is small): the memory is not needed any more.
          if (!handedOn) release()
        }
      }

    app.post(
      `${prefix}${paths.images}`,
      routeOptions(`Fetch images as base64${note}`, Body, FlatImages),
      base64('images'),
    )
    app.post(
      `${prefix}${paths.secondIdImages}`,
      routeOptions(`Second ID images as base64${note}`, Body, FlatImages),
      base64('secondIdImages'),
    )

    app.post(
      `${prefix}${paths.imageLinks}`,
      routeOptions(`Fetch image links with previous attempts${note}`, Body, IncodeLinks),
      async (request: FastifyRequest, reply: FastifyReply) => {
        const resolved = await lookupLinks(app.linkDeps, {
          caller: tokenCaller(request),
          types: (request.body as DropInBody).images ?? [],
          requestId: request.id,
          zeroPath: zero,
        })
        // Cached entries carry their text already: the answer is put together, not serialised.
        return sendJsonText(
          noStore(reply).header('x-cache', resolved.status),
          incodeLinksAnswerJson(resolved.entries),
        )
      },
    )

    // The body is optional, as on Incode: its own scope reads no body, or an empty one, as {}.
    await app.register(async (scope) => {
      emptyBodyIsEmptyObject(scope)
      scope.post(
        `${prefix}${paths.concatenatedImages}`,
        routeOptions(
          `All latest images combined in one${note}`,
          OptionalBody,
          Type.Object({ image: Type.String() }),
        ),
        async (request: FastifyRequest, reply: FastifyReply) => {
          const caller = tokenCaller(request)
          const requested = (request.body as DropInBody).images
          const body = requested ? { images: foldTypes(requested) } : {}
          const answer = await app.incode.forward(
            'concatenatedImages',
            caller,
            body,
            callContext(request, reply),
            {
              zeroPath: zero,
            },
          )
          return noStore(reply)
            .code(answer.status)
            .type(answer.headers['content-type'] ?? 'application/json')
            .send(answer.body)
        },
      )
    })
  }
}

const QUOTE = Buffer.from('"')
const NULL = Buffer.from('null')

export default dropInRoutes
