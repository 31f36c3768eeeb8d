import { createHmac, timingSafeEqual } from 'node:crypto'

export type TokenKind = 'session' | 'admin'

export interface TokenClaims {
  sub: string
  kind: TokenKind
  /** Seconds. */
  iat: number
  /** Seconds. */
  exp: number
}

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')

/** HS256 JWTs with a secret derived from the simulator's seed. */
export class TokenSigner {
  private readonly secret: Buffer

  constructor(seed: number) {
    this.secret = createHmac('sha256', 'incode-simulator/jwt').update(String(seed)).digest()
  }

  sign(sub: string, kind: TokenKind, nowMs: number, ttlMs: number): string {
    const iat = Math.floor(nowMs / 1000)
    const exp = Math.floor((nowMs + ttlMs) / 1000)
    const claims: TokenClaims = { sub, kind, iat, exp }
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url')
    return `${HEADER}.${payload}.${this.mac(`${HEADER}.${payload}`).toString('base64url')}`
  }

  /** The claims of a well-formed, correctly signed, unexpired token; otherwise undefined. */
  verify(token: string, nowMs: number): TokenClaims | undefined {
    const result = this.check(token, nowMs)
    return result.ok ? result.claims : undefined
  }

  check(
    token: string,
    nowMs: number,
  ): { ok: true; claims: TokenClaims } | { ok: false; reason: 'invalid' | 'expired' } {
    const invalid = { ok: false, reason: 'invalid' } as const
    const parts = token.trim().split('.')
    if (parts.length !== 3) return invalid
    const [header, payload, signature] = parts as [string, string, string]
    const expected = this.mac(`${header}.${payload}`)
    const given = Buffer.from(signature, 'base64url')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return invalid
    let claims: unknown
    try {
      const head = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as unknown
      if (!isRecord(head) || head.alg !== 'HS256') return invalid
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    } catch {
      return invalid
    }
    if (!isRecord(claims)) return invalid
    const { sub, kind, iat, exp } = claims
    if (typeof sub !== 'string' || (kind !== 'session' && kind !== 'admin')) return invalid
    if (typeof iat !== 'number' || typeof exp !== 'number') return invalid
    if (exp * 1000 <= nowMs) return { ok: false, reason: 'expired' }
    return { ok: true, claims: { sub, kind, iat, exp } }
  }

  private mac(data: string): Buffer {
    return createHmac('sha256', this.secret).update(data).digest()
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
