import { isImageType, type ImageType } from '../domain/imageTypes.js'
import { s3ErrorAnswer, type Answer } from './http.js'
import type { RequestContext } from './request.js'
import type { SimulatorState } from './state.js'

const FILE_PATH = /^\/files\/([^/]+)\/([A-Za-z0-9_]+)\/(\d+)\.jpg$/

/** The presigned-style link to one attempt's JPEG, signed at `signedAt`. */
export function linkFor(
  state: SimulatorState,
  interviewId: string,
  type: ImageType,
  capturedAt: number,
  signedAt: number,
): string {
  const path = `/files/${encodeURIComponent(interviewId)}/${type}/${capturedAt}.jpg`
  return `${state.url}${path}?${state.links.sign(path, signedAt, state.linkTtlMs / 1000)}`
}

/** GET /files/<interviewId>/<type>/<capturedAt>.jpg?X-Amz-...: a presigned link's JPEG. */
export function fileAnswer(state: SimulatorState, ctx: RequestContext): Answer {
  if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
    return {
      ...s3ErrorAnswer(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.'),
      headers: { Allow: 'GET, HEAD' },
    }
  }
  const match = FILE_PATH.exec(ctx.path)
  let interviewId: string | undefined
  if (match) {
    try {
      interviewId = decodeURIComponent(match[1] ?? '')
    } catch {
      interviewId = undefined
    }
  }
  if (interviewId !== undefined) ctx.interviewId = interviewId
  if (match?.[2]) ctx.images = [match[2]]
  const now = state.now()
  const checked = state.links.check(ctx.path, ctx.query, now)
  if (!checked.ok) {
    if (checked.reason === 'expired') {
      return s3ErrorAnswer(403, 'AccessDenied', 'Request has expired', {
        'X-Amz-Expires': ctx.query.get('X-Amz-Expires') ?? '',
        Expires: new Date(checked.expiredAt ?? now).toISOString(),
        ServerTime: new Date(now).toISOString(),
      })
    }
    return s3ErrorAnswer(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided.',
    )
  }
  const type = match?.[2]
  const capturedAt = Number(match?.[3])
  const session = interviewId === undefined ? undefined : state.session(interviewId)
  const attempt =
    session && type && isImageType(type)
      ? session.images[type]?.find((a) => a.capturedAt === capturedAt)
      : undefined
  if (!attempt) return s3ErrorAnswer(404, 'NoSuchKey', 'The specified key does not exist.')
  return {
    status: 200,
    body: attempt.bytes,
    contentType: 'image/jpeg',
    headers: { 'Last-Modified': new Date(attempt.capturedAt).toUTCString() },
  }
}
