import { type TSchema, Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { Caller, IncodeEndpoint } from '../domain/calls.js'
import { incodeLinksAnswerJson } from '../domain/links.js'
import { IncodeErrorRef, ImageTypeSchema, interviewIdSchema, refTo } from '../schemas.js'
import { incodeImages } from '../services/base64Images.js'
import { forwardConcatenated } from '../services/concatenatedImage.js'
import { lookupLinks } from '../services/linkLookup.js'
import {
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

/** The caller's own Incode token, for the interview `?id=` names (an empty one names none). */
function tokenCaller(request: FastifyRequest, id: string | undefined): Extract<Caller, { kind: 'token' }> {
  return sessionCaller(request, INCODE_TOKEN_HEADER, id === '' ? undefined : id)
}

/**
 * Incode's own paths (and their `/0` forms), answering with Incode's query, headers, body, answer
 * shape and error body, so that existing Incode clients only change their base URL. Splitting
 * and link caching happen behind them.
 */
const dropInRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app
  const images = Type.Array(refTo(ImageTypeSchema), {
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

  // Generic in the body and answer schemas, so that each handler is typed from its own.
  const routeOptions = <B extends TSchema, R extends TSchema>(summary: string, body: B, ok: R) => ({
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

    const base64Routes = [
      { endpoint: 'images', summary: `Fetch images as base64${note}` },
      { endpoint: 'secondIdImages', summary: `Second ID images as base64${note}` },
    ] as const
    for (const { endpoint, summary } of base64Routes) {
      app.post(
        `${prefix}${paths[endpoint]}`,
        routeOptions(summary, Body, FlatImages),
        async (request, reply) => {
          const answer = await incodeImages(request, reply, {
            caller: tokenCaller(request, request.query.id),
            types: request.body.images,
            endpoint,
            zeroPath: zero,
          })
          return noStore(reply)
            .type('application/json')
            .header('content-length', answer.length)
            .send(answer.body)
        },
      )
    }

    app.post(
      `${prefix}${paths.imageLinks}`,
      routeOptions(`Fetch image links with previous attempts${note}`, Body, IncodeLinks),
      async (request, reply) => {
        const resolved = await lookupLinks(app.linkDeps, {
          caller: tokenCaller(request, request.query.id),
          types: request.body.images,
          requestId: request.id,
          zeroPath: zero,
          accessRecord: request.accessRecord,
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
      scope
        .withTypeProvider<TypeBoxTypeProvider>()
        .post(
          `${prefix}${paths.concatenatedImages}`,
          routeOptions(
            `All latest images combined in one${note}`,
            OptionalBody,
            Type.Object({ image: Type.String() }),
          ),
          async (request, reply) => {
            const answer = await forwardConcatenated(
              request,
              reply,
              tokenCaller(request, request.query.id),
              request.body.images,
              zero,
            )
            return noStore(reply).code(answer.status).type(answer.contentType).send(answer.body)
          },
        )
    })
  }
}

export default dropInRoutes
