import { createHmac, timingSafeEqual } from 'node:crypto'

/** `YYYYMMDDTHHMMSSZ` of a time in ms (UTC, whole seconds). */
export function amzDate(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '')
}

/** Parses `YYYYMMDDTHHMMSSZ` back to ms; undefined when malformed. */
export function parseAmzDate(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text)
  if (!m) return undefined
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number]
  const ms = Date.UTC(y, mo - 1, d, h, mi, s)
  return Number.isFinite(ms) ? ms : undefined
}

export type LinkCheck = { ok: true } | { ok: false; reason: 'signature' | 'expired'; expiredAt?: number }

/** S3-presigned-style links: the signature is an HMAC over path, signing date and lifetime. */
export class LinkSigner {
  private readonly secret: Buffer

  constructor(seed: number) {
    this.secret = createHmac('sha256', 'incode-simulator/links').update(String(seed)).digest()
  }

  /** The query string (without `?`) that presigns `path`, signed at `signedAtMs` for `expiresSeconds`. */
  sign(path: string, signedAtMs: number, expiresSeconds: number): string {
    const date = amzDate(signedAtMs)
    const expires = String(Math.max(1, Math.floor(expiresSeconds)))
    return (
      `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=${date}&X-Amz-Expires=${expires}` +
      `&X-Amz-SignedHeaders=host&X-Amz-Signature=${this.mac(path, date, expires)}`
    )
  }

  check(path: string, query: URLSearchParams, nowMs: number): LinkCheck {
    const date = query.get('X-Amz-Date')
    const expires = query.get('X-Amz-Expires')
    const signature = query.get('X-Amz-Signature')
    if (!date || !expires || !signature || !/^\d{1,9}$/.test(expires))
      return { ok: false, reason: 'signature' }
    const expected = Buffer.from(this.mac(path, date, expires), 'hex')
    const given = Buffer.from(/^[0-9a-f]*$/i.test(signature) ? signature : '', 'hex')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return { ok: false, reason: 'signature' }
    }
    const signedAt = parseAmzDate(date)
    if (signedAt === undefined) return { ok: false, reason: 'signature' }
    const expiresAt = signedAt + Number(expires) * 1000
    if (nowMs > expiresAt) return { ok: false, reason: 'expired', expiredAt: expiresAt }
    return { ok: true }
  }

  private mac(path: string, date: string, expires: string): string {
    return createHmac('sha256', this.secret).update(`${path}\n${date}\n${expires}`).digest('hex')
  }
}
