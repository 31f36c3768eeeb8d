import { Type } from '@sinclair/typebox'
import { ImageTypeSchema, interviewIdSchema, ProblemRef, refTo } from '../../schemas.js'

const ImageTypeRef = refTo(ImageTypeSchema)

export function imagesBody(maxItems: number, options: { optional?: boolean } = {}) {
  const images = Type.Array(ImageTypeRef, {
    minItems: 1,
    maxItems,
    description: 'Image types to fetch; duplicates are folded.',
  })
  return Type.Object(
    { images: options.optional ? Type.Optional(images) : images },
    { additionalProperties: false, examples: [{ images: ['selfie', 'fullFrameFrontID', 'croppedFace'] }] },
  )
}

export const InterviewParams = Type.Object({
  interviewId: interviewIdSchema('Incode interview (session) ID.'),
})

export const SessionTokenHeaders = Type.Object({
  'x-incode-session-token': Type.Optional(
    Type.String({ description: "The frontend's Incode session token (required; 401 without it)." }),
  ),
})

const TypeFailure = Type.Object({
  status: Type.Integer({ examples: [502] }),
  code: Type.String({ examples: ['IMAGE_TOO_LARGE'] }),
  message: Type.String(),
})

export const ImagesResponse = Type.Object(
  {
    images: Type.Record(Type.String(), Type.String({ contentEncoding: 'base64' }), {
      description: 'Image type → base64 JPEG (no data: prefix), byte-identical to what Incode sent.',
    }),
    missing: Type.Array(ImageTypeRef, { description: 'Requested types the session has no image for.' }),
    errors: Type.Record(Type.String(), TypeFailure, {
      description:
        'Requested types that could not be fetched, with why. Every requested type is in exactly one of images, missing, errors.',
    }),
  },
  { $id: 'ImagesResponse' },
)

const LinkAttempt = Type.Object({
  capturedAt: Type.String({ format: 'date-time' }),
  url: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
})

export const LinkEntrySchema = Type.Object(
  {
    url: Type.String({ description: 'Temporary link to the latest image.' }),
    expiresAt: Type.String({ format: 'date-time', description: "The latest link's own expiry." }),
    attempts: Type.Array(LinkAttempt, { description: 'Every capture attempt, newest first.' }),
  },
  { $id: 'LinkEntry' },
)

export const LinksResponse = Type.Object(
  {
    images: Type.Record(Type.String(), refTo(LinkEntrySchema)),
    missing: Type.Array(ImageTypeRef, {
      description: 'Requested types with no link (no capture, or cropped types, which Incode does not link).',
    }),
  },
  { $id: 'LinksResponse' },
)

export const ConcatenatedResponse = Type.Object(
  { image: Type.String({ contentEncoding: 'base64', description: 'One JPEG combining the latest images.' }) },
  { $id: 'ConcatenatedResponse' },
)

export const InvalidatedResponse = Type.Object({
  dropped: Type.Integer({ description: 'Cached entries dropped.' }),
})

export const v1Schemas = [LinkEntrySchema, ImagesResponse, LinksResponse, ConcatenatedResponse]

/** Error answers every /v1 image route can give, all problem+json. */
export const problemResponses = {
  400: ProblemRef,
  401: ProblemRef,
  403: ProblemRef,
  404: ProblemRef,
  499: ProblemRef,
  502: ProblemRef,
  503: ProblemRef,
  504: ProblemRef,
}
