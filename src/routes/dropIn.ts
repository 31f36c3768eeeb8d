import { type TSchema, Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { Caller, IncodeEndpoint } from '../domain/calls.js'
import { incodeLinksAnswerJson } from '../domain/links.js'
import { ImageTypeSchema, interviewIdSchema, refTo } from '../schemas.js'
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
import { BODY_OPTIONAL, imagesAnswer, incodeErrorAnswers, linksAnswer } from './responses.js'
import { IMAGES_EXAMPLE, LINKS_EXAMPLE, SECOND_ID_EXAMPLE } from './v1/schemas.js'

// The interview ID in the form the /v1 routes take it; an empty `?id=` counts as none, as on Incode.
const queryOf = (description: string) =>
  Type.Object({
    id: Type.Optional(interviewIdSchema(description, { emptyMeansAbsent: true, example: false })),
  })
const Query = queryOf(
  'Interview ID: optional with a session token (it names its own session), required with an admin token.',
)
// The /0 paths take a session token alone and refuse admin tokens (as Incode does).
const ZeroQuery = queryOf(
  'Interview ID: optional; the session token names its own session (admin tokens are refused on /0 paths).',
)

// The credential (X-Incode-Hardware-Id) is the incodeToken security scheme, not a parameter.
const Headers = Type.Object({
  'x-api-key': Type.Optional(
    Type.String({ description: "An Incode client's own API key: accepted, and replaced by the service's." }),
  ),
  'api-version': Type.Optional(Type.String({ examples: ['1.0'] })),
})

// Incode's own errors pass through (its 429 and 500 included); the service's are in Incode's shape.
const incodeErrors = incodeErrorAnswers([400, 401, 403, 404, 413, 415, 429, 500, 502, 503, 504] as const)

const DROP_IN =
  "Answers exactly as Incode's path of the same name does (query, headers, body, answer and error shapes), so that an Incode client only changes its base URL."

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
  const Body = Type.Object({ images }, { examples: [IMAGES_EXAMPLE] })
  const LinksBody = Type.Object({ images }, { examples: [LINKS_EXAMPLE] })
  const SecondIdBody = Type.Object({ images }, { examples: [SECOND_ID_EXAMPLE] })
  const OptionalBody = Type.Object({ images: Type.Optional(images) }, { examples: [{}] })
  const FlatImages = imagesAnswer(
    'Image type → base64, as Incode answers.',
    Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()]), {
      description: 'Image type → base64 (null for a type without an image), as Incode answers.',
    }),
    { selfie: '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBD', fullFrameFrontID: '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBD' },
  )
  const IncodeLinks = linksAnswer(
    'Links as Incode answers them.',
    Type.Record(Type.String(), Type.Union([Type.String(), Type.Record(Type.String(), Type.String())]), {
      description:
        '`<type>` → latest link and `<type>_prevAttempts` → {capture ms: link}, as Incode answers; links are for a browser to open.',
    }),
    {
      selfie: 'https://incode-demo.s3.amazonaws.com/selfie.jpg?X-Amz-Expires=900&X-Amz-Signature=…',
      selfie_prevAttempts: {
        '1767268800000': 'https://incode-demo.s3.amazonaws.com/selfie-1.jpg?X-Amz-Expires=900',
      },
    },
  )
  const Concatenated = imagesAnswer(
    'The combined image, as Incode answers it.',
    Type.Object({ image: Type.String({ contentEncoding: 'base64', contentMediaType: 'image/jpeg' }) }),
    { image: '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBD' },
  )

  const paths: Record<IncodeEndpoint, string> = {
    images: config.INCODE_PATH_IMAGES,
    imageLinks: config.INCODE_PATH_IMAGE_LINKS,
    secondIdImages: config.INCODE_PATH_SECOND_ID_IMAGES,
    concatenatedImages: config.INCODE_PATH_CONCATENATED_IMAGES,
  }

  // Generic in the body schema, so that each handler is typed from its own.
  const routeOptions = <B extends TSchema>(
    operation: {
      operationId: string
      summary: string
      description: string
      zero: boolean
      bodyOptional?: boolean
    },
    body: B,
    ok: ReturnType<typeof imagesAnswer>,
  ) => ({
    config: { dropIn: true },
    schema: {
      tags: ['incode'],
      operationId: operation.operationId,
      summary: operation.summary,
      description: operation.description,
      querystring: operation.zero ? ZeroQuery : Query,
      headers: Headers,
      security: [{ incodeToken: [] }],
      body,
      response: { 200: ok, ...incodeErrors },
      // The document says what the service does: this body may be left out (see swagger.ts).
      ...(operation.bodyOptional === true ? { [BODY_OPTIONAL]: true } : {}),
    },
  })

  for (const zero of [false, true]) {
    const prefix = zero ? '/0' : ''
    const note = zero ? ' (session token alone)' : ''
    const suffix = zero ? 'Zero' : ''
    const how = zero
      ? `${DROP_IN} The /0 form takes a session token alone (no API key) and refuses admin tokens.`
      : `${DROP_IN} Takes the caller's session token, or an admin token with \`?id=\`.`

    const base64Routes = [
      { endpoint: 'images', summary: `Fetch images as base64${note}`, operationId: 'incodeGetImages' },
      {
        endpoint: 'secondIdImages',
        summary: `Second ID images as base64${note}`,
        operationId: 'incodeGetSecondIdImages',
      },
    ] as const
    for (const { endpoint, summary, operationId } of base64Routes) {
      app.post(
        `${prefix}${paths[endpoint]}`,
        routeOptions(
          {
            operationId: `${operationId}${suffix}`,
            summary,
            description: `${how} Requests over Incode's 10 MB answer cap are split and merged behind it.`,
            zero,
          },
          endpoint === 'secondIdImages' ? SecondIdBody : Body,
          FlatImages,
        ),
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
      routeOptions(
        {
          operationId: `incodeGetImageLinks${suffix}`,
          summary: `Fetch image links with previous attempts${note}`,
          description: `${how} Links are cached until shortly before they expire (X-Cache).`,
          zero,
        },
        LinksBody,
        IncodeLinks,
      ),
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
      scope.withTypeProvider<TypeBoxTypeProvider>().post(
        `${prefix}${paths.concatenatedImages}`,
        routeOptions(
          {
            operationId: `incodeGetConcatenatedImages${suffix}`,
            summary: `All latest images combined in one${note}`,
            description: `${how} The body is optional, as on Incode: none, or \`{}\`, combines every type.`,
            zero,
            bodyOptional: true,
          },
          OptionalBody,
          Concatenated,
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
