import { Type, type TSchema } from '@sinclair/typebox'
import { IMAGE_TYPES, IMAGE_TYPE_INFO, type ImageType } from '../../domain/imageTypes.js'
import { ImageTypeSchema, interviewIdSchema, refTo, SECOND_ID_DEMO_INTERVIEW_ID } from '../../schemas.js'

const ImageTypeRef = refTo(ImageTypeSchema)

/** Types Incode links (cropped ones it does not): the only keys a links answer can hold. */
const LINKABLE_TYPES = IMAGE_TYPES.filter((type) => IMAGE_TYPE_INFO[type].linkable)

/** An object keyed by image types, so that generated clients know the keys (`images.selfy` fails). */
function byImageType<T extends TSchema>(types: readonly ImageType[], value: T, description: string) {
  const properties: Record<string, TSchema> = {}
  for (const type of types) properties[type] = Type.Optional(value)
  return Type.Unsafe<Partial<Record<ImageType, T['static']>>>(
    Type.Object(properties, { additionalProperties: false, description }),
  )
}

/** Request examples that work against the demo's seeded sessions as they stand. */
export const IMAGES_EXAMPLE = { images: ['selfie', 'fullFrameFrontID', 'croppedFace'] }
export const LINKS_EXAMPLE = { images: ['selfie', 'fullFrameFrontID'] }
/** The second ID document's types that the demo's two-document session holds. */
export const SECOND_ID_EXAMPLE = { images: ['fullFrameFrontID', 'fullFrameBackID', 'croppedSecondIDFace'] }

export function imagesBody(
  maxItems: number,
  options: { optional?: boolean; example?: { images: string[] } } = {},
) {
  const images = Type.Array(ImageTypeRef, {
    minItems: 1,
    maxItems,
    description: options.optional
      ? 'Image types to combine, duplicates folded; all of them when left out.'
      : 'Image types to fetch; duplicates are folded.',
  })
  return Type.Object(
    { images: options.optional ? Type.Optional(images) : images },
    { additionalProperties: false, examples: [options.example ?? IMAGES_EXAMPLE] },
  )
}

export const InterviewParams = Type.Object({
  interviewId: interviewIdSchema('Incode interview (session) ID.'),
})

/** The same, its example the demo's two-document session (for the second-ID route). */
export const SecondIdInterviewParams = Type.Object({
  interviewId: interviewIdSchema('Incode interview (session) ID.', { example: SECOND_ID_DEMO_INTERVIEW_ID }),
})

const TypeFailure = Type.Object({
  status: Type.Integer({ examples: [502] }),
  code: Type.String({ examples: ['IMAGE_TOO_LARGE'] }),
  message: Type.String(),
})

export const ImagesResponse = Type.Object(
  {
    images: byImageType(
      IMAGE_TYPES,
      Type.String({ contentEncoding: 'base64', contentMediaType: 'image/jpeg' }),
      'Image type → base64 JPEG (no data: prefix), byte-identical to what Incode sent.',
    ),
    missing: Type.Array(ImageTypeRef, { description: 'Requested types the session has no image for.' }),
    errors: byImageType(
      IMAGE_TYPES,
      TypeFailure,
      'Requested types that could not be fetched, with why. Every requested type is in exactly one of images, missing, errors.',
    ),
  },
  { $id: 'ImagesResponse' },
)

const LinkAttempt = Type.Object({
  capturedAt: Type.String({ format: 'date-time' }),
  url: Type.String({ description: "Temporary link to this attempt's image, for a browser to open." }),
  expiresAt: Type.String({ format: 'date-time' }),
})

export const LinkEntrySchema = Type.Object(
  {
    url: Type.String({
      description:
        'Temporary link to the latest image, for a browser (an <img> or a new tab) to open as it is until expiresAt; no credential is needed.',
    }),
    expiresAt: Type.String({ format: 'date-time', description: "The latest link's own expiry." }),
    attempts: Type.Array(LinkAttempt, { description: 'Every capture attempt, newest first.' }),
  },
  { $id: 'LinkEntry' },
)

export const LinksResponse = Type.Object(
  {
    images: byImageType(
      LINKABLE_TYPES,
      refTo(LinkEntrySchema),
      'Image type → its links (only types Incode links: no cropped ones).',
    ),
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

/** The first bytes of a JPEG, as base64 (an example: a real image is some hundred KB). */
const JPEG_BASE64 = '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBD'

/** Answer examples, in the shape the demo's small session gives. */
export const IMAGES_ANSWER_EXAMPLE = {
  images: { selfie: JPEG_BASE64, fullFrameFrontID: JPEG_BASE64, croppedFace: JPEG_BASE64 },
  missing: [],
  errors: {},
}
export const LINKS_ANSWER_EXAMPLE = {
  images: {
    selfie: {
      url: 'https://incode-demo.s3.amazonaws.com/selfie.jpg?X-Amz-Expires=900&X-Amz-Signature=…',
      expiresAt: '2026-01-01T12:15:00.000Z',
      attempts: [
        {
          capturedAt: '2026-01-01T12:00:00.000Z',
          url: 'https://incode-demo.s3.amazonaws.com/selfie.jpg?X-Amz-Expires=900&X-Amz-Signature=…',
          expiresAt: '2026-01-01T12:15:00.000Z',
        },
      ],
    },
  },
  missing: [],
}
export const CONCATENATED_ANSWER_EXAMPLE = { image: JPEG_BASE64 }

/** Error answers every /v1 image route can give. */
export const IMAGE_ROUTE_ERRORS = [400, 401, 403, 404, 413, 415, 429, 502, 503, 504] as const
