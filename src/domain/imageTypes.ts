/**
 * The one list of image types the gateway knows. Extend it here and everything else (request
 * validation, OpenAPI enum, size planning, the simulator's seeded data) follows.
 *
 * `confirmed` types come from the vendor SDK enum; the others were seen in real clients.
 * `linkable` is false for cropped images: Incode's link endpoint does not serve them.
 * `estimatedBytes` is the default guess of one image's raw (decoded) size, used to plan
 * base64 fetches before any real size has been observed.
 */
export interface ImageTypeInfo {
  readonly confirmed: boolean
  readonly linkable: boolean
  readonly estimatedBytes: number
}

const KB = 1024
const MB = 1024 * KB

export const IMAGE_TYPE_INFO = {
  selfie: { confirmed: true, linkable: true, estimatedBytes: 400 * KB },
  croppedFace: { confirmed: true, linkable: false, estimatedBytes: 60 * KB },
  croppedIDFace: { confirmed: true, linkable: false, estimatedBytes: 40 * KB },
  croppedSecondIDFace: { confirmed: true, linkable: false, estimatedBytes: 40 * KB },
  document: { confirmed: true, linkable: true, estimatedBytes: 1.5 * MB },
  signature: { confirmed: true, linkable: true, estimatedBytes: 30 * KB },
  fullFrameFrontID: { confirmed: true, linkable: true, estimatedBytes: 3 * MB },
  fullFrameBackID: { confirmed: true, linkable: true, estimatedBytes: 3 * MB },
  croppedFrontID: { confirmed: true, linkable: false, estimatedBytes: 300 * KB },
  croppedBackID: { confirmed: true, linkable: false, estimatedBytes: 300 * KB },
  croppedOriginalFrontID: { confirmed: false, linkable: false, estimatedBytes: 600 * KB },
  croppedOriginalBackID: { confirmed: false, linkable: false, estimatedBytes: 600 * KB },
  addressStatement: { confirmed: false, linkable: true, estimatedBytes: 1 * MB },
  croppedAuthenticationSelfie: { confirmed: false, linkable: false, estimatedBytes: 60 * KB },
} as const satisfies Record<string, ImageTypeInfo>

export type ImageType = keyof typeof IMAGE_TYPE_INFO

export const IMAGE_TYPES = Object.keys(IMAGE_TYPE_INFO) as readonly ImageType[]

const known = new Set<string>(IMAGE_TYPES)

export function isImageType(value: unknown): value is ImageType {
  return typeof value === 'string' && known.has(value)
}

/** Types an ID document's second copy can carry (second-ID flows). */
export const SECOND_ID_IMAGE_TYPES = [
  'fullFrameFrontID',
  'fullFrameBackID',
  'croppedFrontID',
  'croppedBackID',
  'croppedSecondIDFace',
] as const satisfies readonly ImageType[]

/** Incode's 10 MB response cap, beyond which it answers 502 (read as decimal MB: the stricter reading). */
export const INCODE_RESPONSE_CAP_BYTES = 10_000_000

/** Size of the base64 encoding of `raw` bytes. */
export function base64Length(raw: number): number {
  return Math.ceil(raw / 3) * 4
}
