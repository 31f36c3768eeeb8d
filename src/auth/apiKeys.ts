import { hash, timingSafeEqual } from 'node:crypto'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

export const SCOPES = [
  'images:read',
  'links:read',
  'cache:write',
  'metrics:read',
  'docs:read',
  'incode:proxy',
] as const
export type Scope = (typeof SCOPES)[number]

const ApiKeyEntry = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    scopes: Type.Array(Type.Union(SCOPES.map((s) => Type.Literal(s))), { minItems: 1 }),
    sha256: Type.String({ pattern: '^[0-9a-fA-F]{64}$' }),
  },
  { additionalProperties: false },
)
const ApiKeyList = Type.Array(ApiKeyEntry)
export type ApiKeyEntry = Static<typeof ApiKeyEntry>

export interface Partner {
  name: string
  scopes: ReadonlySet<Scope>
}

/** Parses API_KEYS; returns the problems (one line each) instead of throwing, for config validation. */
export function parseApiKeys(json: string): { keys: ApiKeyEntry[]; problems: string[] } {
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    return { keys: [], problems: ['API_KEYS: must be a JSON array'] }
  }
  if (!Value.Check(ApiKeyList, value)) {
    const first = Value.Errors(ApiKeyList, value).First()
    return { keys: [], problems: [`API_KEYS${first?.path ?? ''}: ${first?.message ?? 'is invalid'}`] }
  }
  return { keys: value, problems: [] }
}

/** SHA-256 of `value` as hex: how keys are configured, and how tokens are kept out of keys and logs. */
export function sha256Hex(value: string): string {
  return hash('sha256', value, 'hex')
}

/**
 * Holds only the keys' SHA-256 digests. A presented key is hashed and compared with every
 * configured digest in constant time, without stopping at a match, so the time taken tells
 * nothing about which key (or how much of one) matched.
 */
export class ApiKeyRing {
  readonly #entries: Array<{ digest: Buffer; partner: Partner }>

  constructor(keys: readonly ApiKeyEntry[]) {
    this.#entries = keys.map((k) => ({
      digest: Buffer.from(k.sha256.toLowerCase(), 'hex'),
      partner: { name: k.name, scopes: new Set(k.scopes) },
    }))
  }

  get size(): number {
    return this.#entries.length
  }

  verify(presented: string): Partner | undefined {
    const digest = hash('sha256', presented, 'buffer')
    let found: Partner | undefined
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry.partner
    }
    return found
  }
}
