import type { ImageType } from '../domain/imageTypes.js'
import { seededJpeg } from './jpeg.js'
import { hashString, mulberry32 } from './prng.js'
import { pictureKind } from './sessions.js'
import type { SimulatedAttempt, SimulatedSession } from './types.js'

/**
 * Synthetic interviews (the `syntheticInterviews` option): any well-formed interview ID that is not
 * seeded answers as a small session, so that load models can ask for many (thousands of) distinct
 * interviews. Deterministic: the same seed and ID give the same capture times and pictures. Nothing
 * is kept: the session is rebuilt on each lookup, and a picture's bytes are only made when read.
 */
const WELL_FORMED = /^[0-9a-f]{24}$/

/** Types of a synthetic session and the size (bytes) of their pictures: kept small on purpose. */
const PLAN: ReadonlyArray<[ImageType, number]> = [
  ['selfie', 3000],
  ['croppedFace', 1500],
  ['fullFrameFrontID', 4000],
  ['signature', 1000],
]

/** Capture times start here (2024-05-01T00:00:00Z), spread over about a year by the ID's hash. */
const BASE_CAPTURE_MS = 1_714_521_600_000

export function isWellFormedInterviewId(interviewId: string): boolean {
  return WELL_FORMED.test(interviewId)
}

export function syntheticSession(seed: number, interviewId: string): SimulatedSession | undefined {
  if (!isWellFormedInterviewId(interviewId)) return undefined
  const rnd = mulberry32(hashString(`${seed}|synthetic|${interviewId}`))
  let at = BASE_CAPTURE_MS + Math.floor(rnd() * 365 * 86_400_000)
  const images: Partial<Record<ImageType, SimulatedAttempt[]>> = {}
  for (const [type, size] of PLAN) {
    const count = type === 'selfie' ? 1 + Math.floor(rnd() * 2) : 1
    images[type] = Array.from({ length: count }, (_, attempt) => {
      at += 15_000 + Math.floor(rnd() * 20_000)
      const key = hashString(`${seed}|synthetic|${interviewId}|${type}|${attempt}`)
      return lazyAttempt(at, () => seededJpeg(pictureKind(type), key, attempt, size))
    })
  }
  return { interviewId, description: 'Synthetic interview (syntheticInterviews option)', images }
}

function lazyAttempt(capturedAt: number, make: () => Buffer): SimulatedAttempt {
  let bytes: Buffer | undefined
  return {
    capturedAt,
    get bytes() {
      bytes ??= make()
      return bytes
    },
  }
}
