import { INCODE_RESPONSE_CAP_BYTES } from '../domain/imageTypes.js'
import {
  DEFAULT_ADMIN_EMAIL,
  DEFAULT_ADMIN_PASSWORD,
  DEFAULT_ADMIN_TOKEN_TTL_MS,
  DEFAULT_API_KEY,
  DEFAULT_LINK_TTL_MS,
  DEFAULT_SESSION_TOKEN_TTL_MS,
} from './defaults.js'
import { LinkSigner } from './links.js'
import { seededSession } from './sessions.js'
import { syntheticSession } from './synthetic.js'
import { TokenSigner } from './tokens.js'
import type { SimulatedSession, SimulatorOptions } from './types.js'

/** What the simulator knows and signs with, shared by its endpoints: settings, signers and sessions. */
export class SimulatorState {
  /** Set once the server listens; links point here. */
  url = ''
  readonly apiKey: string
  readonly adminEmail: string
  readonly adminPassword: string
  readonly now: () => number
  readonly linkTtlMs: number
  readonly linkSignedAgoMs: number
  readonly capBytes: number
  readonly missingAs: 'omit' | 'null' | 'empty'
  readonly tokens: TokenSigner
  readonly links: LinkSigner
  /** Sessions created by `start`, beside the seeded ones. */
  readonly created = new Map<string, SimulatedSession>()

  private readonly seed: number
  private readonly syntheticInterviews: boolean
  private readonly adminTokenTtlMs: number
  private readonly sessionTokenTtlMs: number

  constructor(options: SimulatorOptions) {
    this.apiKey = options.apiKey ?? DEFAULT_API_KEY
    this.adminEmail = options.adminEmail ?? DEFAULT_ADMIN_EMAIL
    this.adminPassword = options.adminPassword ?? DEFAULT_ADMIN_PASSWORD
    this.seed = options.seed ?? 1
    this.syntheticInterviews = options.syntheticInterviews ?? false
    this.now = options.now ?? Date.now
    this.linkTtlMs = options.linkTtlMs ?? DEFAULT_LINK_TTL_MS
    this.linkSignedAgoMs = options.linkSignedAgoMs ?? 0
    this.adminTokenTtlMs = options.adminTokenTtlMs ?? DEFAULT_ADMIN_TOKEN_TTL_MS
    this.sessionTokenTtlMs = options.sessionTokenTtlMs ?? DEFAULT_SESSION_TOKEN_TTL_MS
    this.capBytes = options.responseCapBytes ?? INCODE_RESPONSE_CAP_BYTES
    this.missingAs = options.missingAs ?? 'null'
    this.tokens = new TokenSigner(this.seed)
    this.links = new LinkSigner(this.seed)
  }

  sessionToken(interviewId: string): string {
    return this.tokens.sign(interviewId, 'session', this.now(), this.sessionTokenTtlMs)
  }

  adminToken(): string {
    return this.tokens.sign('admin', 'admin', this.now(), this.adminTokenTtlMs)
  }

  session(interviewId: string): SimulatedSession | undefined {
    const known = this.created.get(interviewId) ?? seededSession(this.seed, interviewId)
    if (known || !this.syntheticInterviews) return known
    return syntheticSession(this.seed, interviewId)
  }

  /** Whether the interview is seeded or created (synthetic ones excepted: `start` picks free IDs). */
  known(interviewId: string): boolean {
    return this.created.has(interviewId) || seededSession(this.seed, interviewId) !== undefined
  }
}
