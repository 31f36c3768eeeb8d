import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { scopeForToken } from '../../cache/linkCache.js'
import { scanFlatJsonObject } from '../../domain/flatJson.js'
import { IMAGE_TYPE_INFO, IMAGE_TYPES, type ImageType } from '../../domain/imageTypes.js'
import { normaliseLinks, type LinkEntry } from '../../domain/links.js'
import { foldTypes } from '../../domain/requestedTypes.js'
import { AppError, UpstreamBadResponseError } from '../../errors.js'
import type { Caller } from '../../upstream/incode.js'
import { callContext, emptyBodyIsEmptyObject, noStore, sessionCaller } from '../context.js'
import { serveImages } from './imagesHandler.js'
import {
  imagesBody,
  InterviewParams,
  InvalidatedResponse,
  problemResponses,
  SessionTokenHeaders,
  v1Schemas,
} from './schemas.js'

const typeOrder = new Map(IMAGE_TYPES.map((t, i) => [t, i]))
const byTypeOrder = (a: ImageType, b: ImageType) => (typeOrder.get(a) ?? 0) - (typeOrder.get(b) ?? 0)

/** The /v1 routes: partner services by interview ID (admin token), frontends by session token. */
const v1Routes: FastifyPluginAsyncTypebox = async (app) => {
  for (const schema of v1Schemas) app.addSchema(schema)
  const Body = imagesBody(app.config.MAX_IMAGES_PER_REQUEST)
  const OptionalBody = imagesBody(app.config.MAX_IMAGES_PER_REQUEST, { optional: true })
  const ImagesRef = Type.Ref('ImagesResponse')
  const LinksRef = Type.Ref('LinksResponse')

  const adminCaller = (interviewId: string): Caller => {
    if (!app.adminTokens) {
      throw new AppError(
        503,
        'ADMIN_NOT_CONFIGURED',
        'Interview-ID routes need Incode admin credentials, which are not configured',
      )
    }
    return { kind: 'admin', interviewId }
  }

  // ---- base64 images ------------------------------------------------------------------------
  app.post(
    '/sessions/:interviewId/images',
    {
      schema: {
        tags: ['images'],
        summary: 'Latest images of a session as base64, split under the 10 MB cap and merged',
        params: InterviewParams,
        body: Body,
        response: { 200: ImagesRef, ...problemResponses },
      },
    },
    (request, reply) =>
      serveImages(request, reply, adminCaller(request.params.interviewId), request.body.images, 'images'),
  )

  app.post(
    '/session/images',
    {
      schema: {
        tags: ['images'],
        summary: "Latest images of the session token's own session as base64",
        headers: SessionTokenHeaders,
        security: [{ sessionToken: [] }],
        body: Body,
        response: { 200: ImagesRef, ...problemResponses },
      },
    },
    (request, reply) => serveImages(request, reply, sessionCaller(request), request.body.images, 'images'),
  )

  app.post(
    '/sessions/:interviewId/second-id/images',
    {
      schema: {
        tags: ['images'],
        summary: "The second ID document's images as base64",
        params: InterviewParams,
        body: Body,
        response: { 200: ImagesRef, ...problemResponses },
      },
    },
    (request, reply) =>
      serveImages(
        request,
        reply,
        adminCaller(request.params.interviewId),
        request.body.images,
        'secondIdImages',
      ),
  )

  // The body is optional: its own scope reads no body, or an empty one, as {}.
  await app.register(async (scope) => {
    emptyBodyIsEmptyObject(scope)
    scope.withTypeProvider<TypeBoxTypeProvider>().post(
      '/sessions/:interviewId/images/concatenated',
      {
        schema: {
          tags: ['images'],
          summary: 'All latest images combined into one JPEG',
          params: InterviewParams,
          body: OptionalBody,
          response: { 200: Type.Ref('ConcatenatedResponse'), ...problemResponses },
        },
      },
      async (request, reply) => {
        const caller = adminCaller(request.params.interviewId)
        const images = request.body.images ? foldTypes(request.body.images) : undefined
        const answer = await app.incode.call(
          'concatenatedImages',
          caller,
          images ? { images } : {},
          callContext(request, reply),
        )
        const image = scanOrBad(answer.body).find((e) => e.key === 'image')
        if (image?.kind !== 'string' || image.raw.length === 0) {
          throw new UpstreamBadResponseError('Incode answered without a concatenated image')
        }
        // The answer is passed on as Incode sent it: no decoding of the base64.
        return noStore(reply)
          .type('application/json')
          .send(Buffer.concat([Buffer.from('{"image":"'), image.raw, Buffer.from('"}')]))
      },
    )
  })

  // ---- links --------------------------------------------------------------------------------
  const serveLinks = async (
    request: FastifyRequest,
    caller: Caller,
    scope: string,
    interviewId: string,
    requested: readonly ImageType[],
  ) => {
    const types = foldTypes(requested)
    // Incode does not link cropped images: they are missing without asking.
    const linkable = types.filter((t) => IMAGE_TYPE_INFO[t].linkable)
    const unlinkable = types.filter((t) => !IMAGE_TYPE_INFO[t].linkable)
    const deadlineAt = Date.now() + app.config.REQUEST_DEADLINE_MS
    const resolved =
      linkable.length === 0
        ? { entries: new Map<ImageType, LinkEntry>(), missing: [], status: 'HIT' as const }
        : await app.linkCache.resolve(scope, interviewId, linkable, async (toLoad) => {
            // A load may serve several coalesced callers, so one caller leaving does not cancel it;
            // the deadline still bounds it.
            const answer = await app.incode.call('imageLinks', caller, { images: toLoad }, { deadlineAt })
            let json: unknown
            try {
              json = JSON.parse(answer.body.toString('utf8'))
            } catch (err) {
              throw new UpstreamBadResponseError(
                'Incode sent links that are not JSON',
                'UPSTREAM_BAD_RESPONSE',
                { cause: err },
              )
            }
            try {
              return normaliseLinks(json, toLoad, Date.now())
            } catch (err) {
              throw new UpstreamBadResponseError(
                'Incode sent links of an unexpected shape',
                'UPSTREAM_BAD_RESPONSE',
                { cause: err },
              )
            }
          })
    request.log.debug({ cache: resolved.status }, 'links resolved')
    return {
      status: resolved.status,
      body: {
        images: Object.fromEntries(resolved.entries),
        missing: [...resolved.missing, ...unlinkable].sort(byTypeOrder),
      },
    }
  }

  app.post(
    '/sessions/:interviewId/image-links',
    {
      schema: {
        tags: ['links'],
        summary: 'Temporary links to every attempt of each image type, cached short of their expiry',
        params: InterviewParams,
        body: Body,
        response: { 200: LinksRef, ...problemResponses },
      },
    },
    async (request, reply) => {
      const { interviewId } = request.params
      const result = await serveLinks(
        request,
        adminCaller(interviewId),
        'admin',
        interviewId,
        request.body.images,
      )
      return noStore(reply).header('x-cache', result.status).send(result.body)
    },
  )

  app.post(
    '/session/image-links',
    {
      schema: {
        tags: ['links'],
        summary: "Temporary links for the session token's own session",
        headers: SessionTokenHeaders,
        security: [{ sessionToken: [] }],
        body: Body,
        response: { 200: LinksRef, ...problemResponses },
      },
    },
    async (request, reply) => {
      const caller = sessionCaller(request)
      const token = caller.kind === 'token' ? caller.token : ''
      const result = await serveLinks(request, caller, scopeForToken(token), '', request.body.images)
      return noStore(reply).header('x-cache', result.status).send(result.body)
    },
  )

  // No body is read; a partner client sending its usual JSON content type with none is fine.
  await app.register(async (scope) => {
    emptyBodyIsEmptyObject(scope)
    scope.withTypeProvider<TypeBoxTypeProvider>().delete(
      '/sessions/:interviewId/image-links',
      {
        schema: {
          tags: ['links'],
          summary: 'Drop the cached links of a session (e.g. after a new capture)',
          params: InterviewParams,
          response: { 200: InvalidatedResponse, 400: problemResponses[400] },
        },
      },
      (request) => ({ dropped: app.linkCache.invalidate(request.params.interviewId) }),
    )
  })
}

function scanOrBad(body: Buffer) {
  try {
    return scanFlatJsonObject(body)
  } catch (err) {
    throw new UpstreamBadResponseError(
      'Incode sent an answer that is not a JSON object',
      'UPSTREAM_BAD_RESPONSE',
      { cause: err },
    )
  }
}

export default v1Routes
