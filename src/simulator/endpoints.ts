import { randomBytes } from 'node:crypto'

import { IMAGE_TYPE_INFO, IMAGE_TYPES, isImageType, type ImageType } from '../domain/imageTypes.js'
import { authenticate, interviewFor, requireApiKey } from './auth.js'
import { concatenateJpegs } from './concat.js'
import type { ImageEndpoint } from './defaults.js'
import type { FaultInjector } from './faults.js'
import { linkFor } from './files.js'
import { HttpError, jsonAnswer, type Answer } from './http.js'
import { bodyObject, JSON_TYPE, parseBody, sameString, short, type RequestContext } from './request.js'
import type { SimulatorState } from './state.js'
import type { SimulatedAttempt, SimulatedSession } from './types.js'

type ImageSet = Partial<Record<ImageType, SimulatedAttempt[]>>

const QUOTE = Buffer.from('"')
const NULL_VALUE = Buffer.from('null')
const EMPTY_STRING_VALUE = Buffer.from('""')

/** Incode's endpoints (start, executive log-in, the image endpoints), with the encoded answers they reuse. */
export class IncodeEndpoints {
  private readonly base64Cache = new WeakMap<SimulatedAttempt, Buffer>()
  private readonly concatCache = new Map<string, Buffer>()

  constructor(
    private readonly state: SimulatorState,
    private readonly faults: FaultInjector,
  ) {}

  start(ctx: RequestContext, raw: Buffer): Answer {
    const { state } = this
    requireApiKey(state, ctx)
    const body = bodyObject(parseBody(raw), true)
    const requested = body.interviewId
    if (requested !== undefined && requested !== null && requested !== '') {
      if (typeof requested !== 'string') throw new HttpError(400, 'interviewId must be a string')
      ctx.interviewId = requested
      if (!state.session(requested)) throw new HttpError(404, `Interview ${short(requested)} not found`)
      return jsonAnswer({ token: state.sessionToken(requested), interviewId: requested })
    }
    let interviewId = randomBytes(12).toString('hex')
    while (state.known(interviewId)) interviewId = randomBytes(12).toString('hex')
    state.created.set(interviewId, { interviewId, description: 'Created by start; no captures', images: {} })
    ctx.interviewId = interviewId
    return jsonAnswer({ token: state.sessionToken(interviewId), interviewId })
  }

  adminLogin(ctx: RequestContext, raw: Buffer): Answer {
    const { state } = this
    requireApiKey(state, ctx)
    if (this.faults.config?.loginFailure) throw new HttpError(500, 'Simulated executive log-in failure')
    const body = bodyObject(parseBody(raw), false)
    const { email, password } = body
    if (typeof email !== 'string' || email.trim() === '' || typeof password !== 'string' || password === '') {
      throw new HttpError(400, 'email and password are required')
    }
    const emailOk = sameString(email.trim().toLowerCase(), state.adminEmail.toLowerCase())
    const passwordOk = sameString(password, state.adminPassword)
    if (!emailOk || !passwordOk) throw new HttpError(401, 'Invalid credentials')
    return jsonAnswer({ token: state.adminToken() })
  }

  image(ctx: RequestContext, endpoint: ImageEndpoint, zero: boolean, raw: Buffer): Answer {
    const parsed = parseBody(raw)
    const claims = authenticate(this.state, ctx, zero)
    const interviewId = interviewFor(ctx, claims)
    ctx.interviewId = interviewId
    const session = this.state.session(interviewId)
    if (!session) throw new HttpError(404, `Interview ${short(interviewId)} not found`)
    const concatenated = endpoint === 'concatenatedImages'
    const body = bodyObject(parsed, concatenated)
    const types = requestedTypes(body, concatenated)
    switch (endpoint) {
      case 'images':
        return this.base64Answer(session.images, types ?? [])
      case 'secondIdImages':
        return this.base64Answer(session.secondId ?? {}, types ?? [])
      case 'imageLinks':
        return this.linksAnswer(session, types ?? [])
      case 'concatenatedImages':
        return this.concatenatedAnswer(session, types)
    }
  }

  private base64Of(attempt: SimulatedAttempt): Buffer {
    let b64 = this.base64Cache.get(attempt)
    if (!b64) {
      b64 = Buffer.from(attempt.bytes.toString('base64'), 'latin1')
      this.base64Cache.set(attempt, b64)
    }
    return b64
  }

  private capCheck(size: number): void {
    const { capBytes } = this.state
    if (size > capBytes) {
      throw new HttpError(
        502,
        `Response of ${size} bytes exceeds the ${capBytes} bytes limit; request fewer images per call`,
      )
    }
  }

  /** `{type: base64}` of the latest attempt of each type, built by concatenating cached buffers. */
  private base64Answer(images: ImageSet, types: readonly ImageType[]): Answer {
    const { missingAs } = this.state
    const pieces: Buffer[] = [Buffer.from('{')]
    let first = true
    for (const type of types) {
      const attempts = images[type]
      const latest = attempts?.[attempts.length - 1]
      if (!latest && missingAs === 'omit') continue
      pieces.push(Buffer.from(`${first ? '' : ','}${JSON.stringify(type)}:`))
      if (latest) pieces.push(QUOTE, this.base64Of(latest), QUOTE)
      else pieces.push(missingAs === 'null' ? NULL_VALUE : EMPTY_STRING_VALUE)
      first = false
    }
    pieces.push(Buffer.from('}'))
    const size = pieces.reduce((n, p) => n + p.length, 0)
    this.capCheck(size)
    return { status: 200, body: Buffer.concat(pieces, size), contentType: JSON_TYPE }
  }

  private linksAnswer(session: SimulatedSession, types: readonly ImageType[]): Answer {
    const signedAt = this.state.now() - this.state.linkSignedAgoMs
    const out: Record<string, unknown> = {}
    for (const type of types) {
      if (!IMAGE_TYPE_INFO[type].linkable) continue
      const attempts = session.images[type]
      if (!attempts || attempts.length === 0) continue
      // Newest first, as in Incode's guide: the first key is the latest capture, with the link of `type`.
      // (Capture times in ms are past 2^32, so they are not array indices and keep this order in JSON.)
      const newestFirst = [...attempts].sort((a, b) => b.capturedAt - a.capturedAt)
      const urls = newestFirst.map((a) =>
        linkFor(this.state, session.interviewId, type, a.capturedAt, signedAt),
      )
      out[type] = urls[0]
      out[`${type}_prevAttempts`] = Object.fromEntries(
        newestFirst.map((a, i) => [String(a.capturedAt), urls[i]]),
      )
    }
    const answer = jsonAnswer(out)
    this.capCheck(answer.body.length)
    return answer
  }

  private concatenatedAnswer(session: SimulatedSession, types: readonly ImageType[] | undefined): Answer {
    const present = (types ?? IMAGE_TYPES).filter((t) => (session.images[t]?.length ?? 0) > 0)
    if (present.length === 0) {
      throw new HttpError(
        404,
        types ? 'None of the requested images exist in this interview' : 'The interview has no images',
      )
    }
    const key = `${session.interviewId}|${present.join(',')}`
    let b64 = this.concatCache.get(key)
    if (!b64) {
      const parts = present.map((t) => {
        const attempts = session.images[t] ?? []
        return (attempts[attempts.length - 1] as SimulatedAttempt).bytes
      })
      b64 = Buffer.from(concatenateJpegs(parts).toString('base64'), 'latin1')
      this.concatCache.set(key, b64)
    }
    const pieces = [Buffer.from('{"image":"'), b64, Buffer.from('"}')]
    const size = pieces.reduce((n, p) => n + p.length, 0)
    this.capCheck(size)
    return { status: 200, body: Buffer.concat(pieces, size), contentType: JSON_TYPE }
  }
}

/** The deduplicated image types of the body; undefined when optional and absent. */
function requestedTypes(body: Record<string, unknown>, optional: boolean): ImageType[] | undefined {
  const images = body.images
  if (images === undefined || images === null) {
    if (optional) return undefined
    throw new HttpError(400, 'images is required: a non-empty array of image types')
  }
  if (!Array.isArray(images)) throw new HttpError(400, 'images must be an array of image types')
  if (images.length === 0) throw new HttpError(400, 'images must not be empty')
  const types: ImageType[] = []
  for (const value of images) {
    if (typeof value !== 'string') {
      throw new HttpError(400, `Invalid image type ${short(value)}: image types are strings`)
    }
    if (!isImageType(value)) {
      throw new HttpError(400, `Unknown image type ${short(value)}; known types: ${IMAGE_TYPES.join(', ')}`)
    }
    if (!types.includes(value)) types.push(value)
  }
  return types
}
