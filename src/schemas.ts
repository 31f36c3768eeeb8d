import { Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox'
import { IMAGE_TYPES, type ImageType } from './domain/imageTypes.js'
import {
  INTERVIEW_ID_MAX_LENGTH,
  INTERVIEW_ID_OR_EMPTY_PATTERN,
  INTERVIEW_ID_PATTERN,
} from './domain/interviewId.js'

/**
 * Shared schemas, registered once by `$id` (see app.ts) and referenced with `refTo`, so the
 * OpenAPI document names them instead of inlining copies.
 */

/** A `$ref` to a schema registered by `$id`, typed as that schema (TypeBox's Ref takes only the id). */
export function refTo<T extends TSchema>(schema: T): TUnsafe<Static<T>> {
  if (schema.$id === undefined) throw new Error('refTo: the schema has no $id to refer to')
  return Type.Unsafe<Static<T>>(Type.Ref(schema.$id))
}

// A plain enum (not a union of literals) so that a wrong value yields one error naming the allowed values.
export const ImageTypeSchema = Type.Unsafe<ImageType>({
  $id: 'ImageType',
  type: 'string',
  enum: [...IMAGE_TYPES],
  description: 'An Incode image type.',
  examples: ['selfie'],
})

/**
 * The interview ID of the examples: the demo's "small" seeded session (src/simulator/sessions.ts),
 * so that Swagger UI's prefilled requests work against `npm run demo` as they stand.
 */
export const DEMO_INTERVIEW_ID = '662f1a3b9c4e5d6f7a8b9c02'
/** The demo's two-document seeded session: the second-ID examples' (the small one has no second ID). */
export const SECOND_ID_DEMO_INTERVIEW_ID = '662f1a3b9c4e5d6f7a8b9c03'

/**
 * An Incode interview ID wherever a request names one (a /v1 path parameter, a drop-in `?id=`):
 * one form everywhere (see domain/interviewId.ts), so whitespace or other variants of one ID are
 * refused, never cached under other keys. `emptyMeansAbsent`: an empty value is let through, for
 * the caller to read as "not given". `example: false` where a prefilled ID would be wrong (a
 * session token names its own session).
 */
export function interviewIdSchema(
  description: string,
  options: { emptyMeansAbsent?: boolean; example?: boolean | string } = {},
) {
  const empty = options.emptyMeansAbsent === true
  return Type.String({
    minLength: empty ? 0 : 1,
    maxLength: INTERVIEW_ID_MAX_LENGTH,
    pattern: empty ? INTERVIEW_ID_OR_EMPTY_PATTERN : INTERVIEW_ID_PATTERN,
    description,
    ...(options.example === false
      ? {}
      : { examples: [typeof options.example === 'string' ? options.example : DEMO_INTERVIEW_ID] }),
  })
}

export const ProblemSchema = Type.Object(
  {
    type: Type.String({
      description: 'A URI naming the problem type.',
      examples: ['urn:problem:VALIDATION_FAILED'],
    }),
    title: Type.String({ examples: ['Bad Request'] }),
    status: Type.Integer({ examples: [400] }),
    code: Type.String({
      description: 'Stable, machine-readable error code.',
      examples: ['VALIDATION_FAILED'],
    }),
    detail: Type.String({ examples: ['body/images/0 must be one of: selfie, croppedFace, …'] }),
    requestId: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(Type.Object({ path: Type.String(), message: Type.String() }), {
        description: 'One entry per invalid field, for validation failures.',
      }),
    ),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details (application/problem+json).' },
)
export type Problem = Static<typeof ProblemSchema>

export const IncodeErrorSchema = Type.Object(
  {
    timestamp: Type.Integer({ examples: [1713571344335] }),
    status: Type.Integer({
      description: 'HTTP status, or a custom Incode code such as 4005.',
      examples: [401],
    }),
    error: Type.String({ examples: ['Unauthorized'] }),
    message: Type.String({ examples: ['Invalid token'] }),
    path: Type.String({ examples: ['/omni/get/images'] }),
  },
  { $id: 'IncodeError', description: "Incode's own error body, as answered on the drop-in Incode paths." },
)
export type IncodeErrorBody = Static<typeof IncodeErrorSchema>

export const sharedSchemas = [ImageTypeSchema, ProblemSchema, IncodeErrorSchema]

export const ProblemRef = refTo(ProblemSchema)
export const IncodeErrorRef = refTo(IncodeErrorSchema)
