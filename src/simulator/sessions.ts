import { IMAGE_TYPE_INFO, IMAGE_TYPES, type ImageType } from '../domain/imageTypes.js'
import { seededJpeg, type PictureKind } from './jpeg.js'
import { hashString, mulberry32 } from './prng.js'
import type { SimulatedAttempt, SimulatedSession } from './types.js'

const KB = 1024

/** Stable interview IDs of the seeded sessions (24 hex chars, like Incode's). */
export const SEEDED_INTERVIEW_IDS = {
  full: '662f1a3b9c4e5d6f7a8b9c01',
  small: '662f1a3b9c4e5d6f7a8b9c02',
  secondId: '662f1a3b9c4e5d6f7a8b9c03',
  empty: '662f1a3b9c4e5d6f7a8b9c04',
} as const

/** One type's captures: approximate sizes in KiB, oldest attempt first. */
type ImagePlan = Partial<Record<ImageType, number[]>>

interface SessionPlan {
  interviewId: string
  description: string
  images: ImagePlan
  secondId?: ImagePlan
}

/** Sizes (KiB, per attempt) of the full session; types missing here (added to the list later) get a default. */
const FULL_SESSION_SIZES: ImagePlan = {
  selfie: [380, 410, 420],
  croppedFace: [60],
  croppedIDFace: [40],
  croppedSecondIDFace: [38],
  document: [1600],
  signature: [28],
  fullFrameFrontID: [2900, 3300, 3400],
  fullFrameBackID: [2800, 3100],
  croppedFrontID: [120],
  croppedBackID: [110],
  croppedOriginalFrontID: [150],
  croppedOriginalBackID: [145],
  addressStatement: [1200],
  croppedAuthenticationSelfie: [55],
}

function fullSessionPlan(): ImagePlan {
  const plan: ImagePlan = {}
  for (const type of IMAGE_TYPES) {
    plan[type] = FULL_SESSION_SIZES[type] ?? [
      Math.min(2048, Math.max(20, Math.round(IMAGE_TYPE_INFO[type].estimatedBytes / KB))),
    ]
  }
  return plan
}

const PLANS: readonly SessionPlan[] = [
  {
    interviewId: SEEDED_INTERVIEW_IDS.full,
    description:
      'Full session: every image type; 3 selfie, 3 front-ID and 2 back-ID attempts; latest images total over 10 MB as base64, so one all-types base64 call answers 502',
    images: fullSessionPlan(),
  },
  {
    interviewId: SEEDED_INTERVIEW_IDS.small,
    description:
      'Small session: selfie, croppedFace, fullFrameFrontID (~1.5 MB) and signature only (other types missing); all under the 10 MB cap',
    images: { selfie: [300], croppedFace: [50], fullFrameFrontID: [1500], signature: [25] },
  },
  {
    interviewId: SEEDED_INTERVIEW_IDS.secondId,
    description:
      'Two-document session: selfie, face, first ID (front/back full frames and crops) plus a second ID document (front/back full frames, crops, second-ID face)',
    images: {
      selfie: [330, 350],
      croppedFace: [55],
      croppedIDFace: [35],
      fullFrameFrontID: [1800],
      fullFrameBackID: [1700],
      croppedFrontID: [100],
      croppedBackID: [95],
    },
    secondId: {
      fullFrameFrontID: [1600],
      fullFrameBackID: [1550],
      croppedFrontID: [90],
      croppedBackID: [85],
      croppedSecondIDFace: [32],
    },
  },
  {
    interviewId: SEEDED_INTERVIEW_IDS.empty,
    description: 'Empty session: created, no captures yet (every type missing)',
    images: {},
  },
]

/** The seeded sessions, full session first. */
export const SEEDED_SESSIONS: ReadonlyArray<{ interviewId: string; description: string }> = PLANS.map(
  ({ interviewId, description }) => ({ interviewId, description }),
)

/** What a type's picture shows. Unknown (future) types are guessed from their name. */
export function pictureKind(type: string): PictureKind {
  if (type.startsWith('fullFrame')) return 'idFrame'
  if (/face|selfie/i.test(type)) return 'face'
  if (/signature/i.test(type)) return 'signature'
  if (/ID$/.test(type)) return 'idCard'
  return 'document'
}

/** First capture time of the seeded sessions (2024-04-20T00:00:00Z), one day apart per session. */
const BASE_CAPTURE_MS = 1_713_571_200_000

function generate(seed: number, plan: SessionPlan, planIndex: number): SimulatedSession {
  const build = (images: ImagePlan, doc: string): Partial<Record<ImageType, SimulatedAttempt[]>> => {
    const out: Partial<Record<ImageType, SimulatedAttempt[]>> = {}
    let typeIndex = 0
    for (const type of IMAGE_TYPES) {
      const sizes = images[type]
      if (!sizes || sizes.length === 0) continue
      const rnd = mulberry32(hashString(`${seed}|${plan.interviewId}|${doc}|${type}|times`))
      let at = BASE_CAPTURE_MS + planIndex * 86_400_000 + (doc === 'second' ? 3_600_000 : 0)
      at += typeIndex++ * 120_000 + Math.floor(rnd() * 20_000)
      out[type] = sizes.map((kb, attempt) => {
        if (attempt > 0) at += 15_000 + Math.floor(rnd() * 20_000)
        const key = hashString(`${seed}|${plan.interviewId}|${doc}|${type}|${attempt}`)
        const target = Math.round(kb * KB * (1 + 0.03 * (key / 0x100000000)))
        return { capturedAt: at, bytes: seededJpeg(pictureKind(type), key, attempt, target) }
      })
    }
    return out
  }
  const session: SimulatedSession = {
    interviewId: plan.interviewId,
    description: plan.description,
    images: build(plan.images, 'first'),
  }
  if (plan.secondId) session.secondId = build(plan.secondId, 'second')
  return session
}

const cache = new Map<string, SimulatedSession>()

/** The seeded session with this ID for this seed, generated on first use and cached (process-wide). */
export function seededSession(seed: number, interviewId: string): SimulatedSession | undefined {
  const planIndex = PLANS.findIndex((p) => p.interviewId === interviewId)
  const plan = PLANS[planIndex]
  if (!plan) return undefined
  const key = `${seed}|${interviewId}`
  let session = cache.get(key)
  if (!session) {
    session = generate(seed, plan, planIndex)
    cache.set(key, session)
  }
  return session
}

export function isSeededInterview(interviewId: string): boolean {
  return PLANS.some((p) => p.interviewId === interviewId)
}
