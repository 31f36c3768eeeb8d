import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ImageType } from '../../domain/imageTypes.js'
import { linksAnswerJson } from '../../domain/links.js'
import { AdminNotConfiguredError } from '../../errors.js'
import type { Caller } from '../../domain/calls.js'
import { streamImages } from '../../services/base64Images.js'
import { concatenatedImage } from '../../services/concatenatedImage.js'
import { invalidateLinks, linksAhead, lookupLinks } from '../../services/linkLookup.js'
import type { ReadAhead } from '../../services/sharedLinks.js'
import { isInterviewId } from '../../domain/interviewId.js'
import singleImageRoutes from './singleImage.js'
import { emptyBodyIsEmptyObject, noBodyAccepted, noStore, sendJsonText, sessionCaller } from '../context.js'
import { BODY_OPTIONAL, imagesAnswer, jsonAnswer, linksAnswer, problemAnswers } from '../responses.js'
import {
  CONCATENATED_ANSWER_EXAMPLE,
  IMAGE_ROUTE_ERRORS,
  IMAGES_ANSWER_EXAMPLE,
  imagesBody,
  InterviewParams,
  InvalidatedResponse,
  LINKS_ANSWER_EXAMPLE,
  LINKS_EXAMPLE,
  SECOND_ID_EXAMPLE,
  SecondIdInterviewParams,
  v1Schemas,
} from './schemas.js'

const BY_ID =
  'For partner services: the interview is named in the path, and the service calls Incode with its own admin token.'
const BY_TOKEN =
  "For frontends: the session token names its own session, and is forwarded to Incode as the caller's credential."
const BASE64 =
  "Each image is base64 exactly as Incode sent it. Requests whose images together would exceed Incode's 10 MB answer cap are split into several calls and merged; a single image over the cap is reported under `errors`."

/** The /v1 routes: partner services by interview ID (admin token), frontends by session token. */
declare module 'fastify' {
  interface FastifyRequest {
    /** Fleet mode: the links lookup's Redis read, started before the body was read. */
    linksAhead: ReadAhead | undefined
  }
}

const v1Routes: FastifyPluginAsyncTypebox = async (app) => {
  for (const schema of v1Schemas) app.addSchema(schema)
  const Body = imagesBody(app.config.MAX_IMAGES_PER_REQUEST)
  const LinksBody = imagesBody(app.config.MAX_IMAGES_PER_REQUEST, { example: LINKS_EXAMPLE })
  const SecondIdBody = imagesBody(app.config.MAX_IMAGES_PER_REQUEST, { example: SECOND_ID_EXAMPLE })
  const OptionalBody = imagesBody(app.config.MAX_IMAGES_PER_REQUEST, { optional: true })
  const errors = problemAnswers(IMAGE_ROUTE_ERRORS)
  const imagesOk = imagesAnswer(
    'Every requested type, in exactly one of images, missing or errors.',
    Type.Ref('ImagesResponse'),
    IMAGES_ANSWER_EXAMPLE,
  )
  const linksOk = linksAnswer(
    'Links for every requested type that has one; the others are listed as missing.',
    Type.Ref('LinksResponse'),
    LINKS_ANSWER_EXAMPLE,
  )

  app.decorateRequest('linksAhead', undefined)

  const adminCaller = (interviewId: string): Caller => {
    if (!app.adminTokens) throw new AdminNotConfiguredError()
    return { kind: 'admin', interviewId }
  }

  // ---- base64 images ------------------------------------------------------------------------
  // The service resolves once the answer's status is known; the body goes on filling after that.
  const sendImages = (reply: FastifyReply, body: Readable) =>
    noStore(reply).type('application/json').send(body)

  app.post(
    '/sessions/:interviewId/images',
    {
      config: { scope: 'images:read' },
      schema: {
        tags: ['images'],
        operationId: 'getSessionImages',
        summary: 'Latest images of a session as base64, split under the 10 MB cap and merged',
        description: `${BY_ID} ${BASE64}`,
        params: InterviewParams,
        security: [{ apiKey: [] }],
        body: Body,
        response: { 200: imagesOk, ...errors },
      },
    },
    async (request, reply) => {
      const caller = adminCaller(request.params.interviewId)
      const images = { caller, types: request.body.images, endpoint: 'images' } as const
      return sendImages(reply, await streamImages(request, reply, images))
    },
  )

  app.post(
    '/session/images',
    {
      schema: {
        tags: ['images'],
        operationId: 'getOwnSessionImages',
        summary: "Latest images of the session token's own session as base64",
        description: `${BY_TOKEN} ${BASE64}`,
        security: [{ sessionToken: [] }],
        body: Body,
        response: { 200: imagesOk, ...errors },
      },
    },
    async (request, reply) => {
      const images = {
        caller: sessionCaller(request),
        types: request.body.images,
        endpoint: 'images',
      } as const
      return sendImages(reply, await streamImages(request, reply, images))
    },
  )

  app.post(
    '/sessions/:interviewId/second-id/images',
    {
      config: { scope: 'images:read' },
      schema: {
        tags: ['images'],
        operationId: 'getSessionSecondIdImages',
        summary: "The second ID document's images as base64",
        description: `${BY_ID} Images of the second ID document of a two-document session; types it lacks are missing. ${BASE64}`,
        params: SecondIdInterviewParams,
        security: [{ apiKey: [] }],
        body: SecondIdBody,
        response: { 200: imagesOk, ...errors },
      },
    },
    async (request, reply) => {
      const caller = adminCaller(request.params.interviewId)
      const images = { caller, types: request.body.images, endpoint: 'secondIdImages' } as const
      return sendImages(reply, await streamImages(request, reply, images))
    },
  )

  // The body is optional, and documented so (BODY_OPTIONAL): its own scope reads no body, or an
  // empty one, as {}.
  await app.register(async (scope) => {
    emptyBodyIsEmptyObject(scope)
    scope.withTypeProvider<TypeBoxTypeProvider>().post(
      '/sessions/:interviewId/images/concatenated',
      {
        config: { scope: 'images:read' },
        schema: {
          tags: ['images'],
          operationId: 'getSessionConcatenatedImage',
          summary: 'All latest images combined into one JPEG',
          description: `${BY_ID} Incode combines the latest images (every type when the body or its list is left out, else the listed ones) into one JPEG, answered as base64.`,
          params: InterviewParams,
          security: [{ apiKey: [] }],
          body: OptionalBody,
          response: {
            200: imagesAnswer(
              'The combined image.',
              Type.Ref('ConcatenatedResponse'),
              CONCATENATED_ANSWER_EXAMPLE,
            ),
            ...errors,
          },
          [BODY_OPTIONAL]: true,
        },
      },
      async (request, reply) => {
        const caller = adminCaller(request.params.interviewId)
        const answer = await concatenatedImage(request, reply, caller, request.body.images)
        return noStore(reply).type('application/json').send(answer)
      },
    )
  })

  await app.register(singleImageRoutes)

  // ---- links --------------------------------------------------------------------------------
  const serveLinks = async (
    request: FastifyRequest,
    reply: FastifyReply,
    caller: Caller,
    requested: readonly ImageType[],
  ) => {
    // The service derives the cache scope from the caller: a route never picks one.
    const result = await lookupLinks(app.linkDeps, {
      caller,
      types: requested,
      requestId: request.id,
      accessRecord: request.accessRecord,
      ahead: request.linksAhead,
    })
    // Cached entries carry their text already: the answer is put together, not serialised.
    return sendJsonText(
      noStore(reply).header('x-cache', result.status),
      linksAnswerJson(result.entries, result.missing),
    )
  }

  app.post(
    '/sessions/:interviewId/image-links',
    {
      config: { scope: 'links:read' },
      // Fleet mode reads Redis while the body is read and validated (linksAhead), when this
      // replica holds nothing of the interview. Auth and the rate limit have passed by now: the
      // app's preParsing (auth's refusal) and the route's onRequest (the limit) run first.
      preParsing: (request, _reply, payload, done) => {
        const { interviewId } = request.params as Record<string, unknown>
        if (app.adminTokens && typeof interviewId === 'string' && isInterviewId(interviewId))
          request.linksAhead = linksAhead(app.linkDeps, adminCaller(interviewId))
        done(null, payload)
      },
      schema: {
        tags: ['links'],
        operationId: 'getSessionImageLinks',
        summary: 'Temporary links to every attempt of each image type, cached short of their expiry',
        description: `${BY_ID} Links are cached until shortly before they expire (X-Cache says whether the cache answered); cropped types have no links and are listed as missing.`,
        params: InterviewParams,
        security: [{ apiKey: [] }],
        body: LinksBody,
        response: { 200: linksOk, ...errors },
      },
    },
    async (request, reply) =>
      serveLinks(request, reply, adminCaller(request.params.interviewId), request.body.images),
  )

  app.post(
    '/session/image-links',
    {
      schema: {
        tags: ['links'],
        operationId: 'getOwnSessionImageLinks',
        summary: "Temporary links for the session token's own session",
        description: `${BY_TOKEN} Cached per token, as the partner route's links are per interview.`,
        security: [{ sessionToken: [] }],
        body: LinksBody,
        response: { 200: linksOk, ...errors },
      },
    },
    async (request, reply) => serveLinks(request, reply, sessionCaller(request), request.body.images),
  )

  // Takes no body, as documented; a partner client sending its usual JSON content type with an
  // empty one is fine, a body is refused (400 BODY_NOT_ALLOWED).
  await app.register(async (scope) => {
    noBodyAccepted(scope)
    scope.withTypeProvider<TypeBoxTypeProvider>().delete(
      '/sessions/:interviewId/image-links',
      {
        config: { scope: 'cache:write' },
        schema: {
          tags: ['links'],
          operationId: 'invalidateSessionImageLinks',
          summary: "Drop the cached links of a session (e.g. after a new capture), its frontends' included",
          description:
            'Takes no request body. The next links request for the interview, by ID or by any of its session tokens, asks Incode again.',
          params: InterviewParams,
          security: [{ apiKey: [] }],
          response: {
            200: jsonAnswer('How many cached entries were dropped.', InvalidatedResponse, { dropped: 2 }),
            ...problemAnswers([400, 401, 403, 413, 415, 429] as const),
          },
        },
      },
      async (request) => {
        const dropped = await invalidateLinks(app.linkDeps, request.params.interviewId)
        if (request.accessRecord) Object.assign(request.accessRecord, { cache: 'INVALIDATED', dropped })
        return { dropped }
      },
    )
  })
}

export default v1Routes
