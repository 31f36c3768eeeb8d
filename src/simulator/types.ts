import type { ImageType } from '../domain/imageTypes.js'

/** Where the simulator answers each Incode endpoint. Every image endpoint also answers under `/0` + path. */
export interface SimulatorPaths {
  images: string
  imageLinks: string
  secondIdImages: string
  concatenatedImages: string
  start: string
  adminLogin: string
}

export interface FaultConfig {
  /** Probability 0..1 per matching call of answering `errorStatus` with Incode's error body. */
  errorRate?: number
  /** Status used by `errorRate` (default 500). */
  errorStatus?: number
  /** Probability 0..1 per matching call of destroying the socket without answering. */
  resetRate?: number
  /** Probability 0..1 per matching call of sending headers + half the body, then destroying the socket. */
  truncateRate?: number
  /** Probability 0..1 per matching call of answering 200 with a body that is not valid JSON. */
  malformedRate?: number
  /** Added before answering every matching call. */
  extraLatencyMs?: number
  /** Trickle the body out in pieces over this many ms. */
  slowBodyMs?: number
  /** Admin log-in answers 500. */
  loginFailure?: boolean
  /** Which endpoints the faults apply to (default: images, imageLinks, secondIdImages, concatenatedImages). */
  endpoints?: Array<keyof SimulatorPaths>
}

/** delay = fixedMs + perMiBMs * responseBytes / 2^20; applies to image endpoints and link files. */
export interface LatencyModel {
  fixedMs: number
  perMiBMs: number
}

export interface SimulatorOptions {
  /** Default '127.0.0.1'. */
  host?: string
  /** Default 0 (ephemeral). */
  port?: number
  /** Default 'sim-api-key'. */
  apiKey?: string
  /** Default 'admin@example.com'. */
  adminEmail?: string
  /** Default 'sim-admin-password'. */
  adminPassword?: string
  /** Seed of the image data, token secret and fault PRNG. Default 1. */
  seed?: number
  /** Lifetime of image links. Default 3_600_000. */
  linkTtlMs?: number
  /** How long before being handed out a link was signed. Default 0. */
  linkSignedAgoMs?: number
  /** Default 24 h. */
  adminTokenTtlMs?: number
  /** Default 90 days. */
  sessionTokenTtlMs?: number
  /** An answer whose body would exceed it is answered 502 instead. Default INCODE_RESPONSE_CAP_BYTES. */
  responseCapBytes?: number
  /** How a requested type the session lacks appears in base64 answers. Default 'null'. */
  missingAs?: 'omit' | 'null' | 'empty'
  latency?: LatencyModel
  faults?: FaultConfig
  paths?: Partial<SimulatorPaths>
  /** Clock (ms) for token and link expiry. Default Date.now. */
  now?: () => number
  /** Optional, default silent. */
  logger?: (line: string) => void
  /** Any well-formed unknown interview ID answers as a small synthetic session (load models). Default false. */
  syntheticInterviews?: boolean
}

export interface SimulatorCall {
  endpoint: keyof SimulatorPaths | 'file' | 'control' | 'unknown'
  method: string
  path: string
  interviewId?: string
  images?: string[]
  tokenKind?: 'session' | 'admin'
  /** HTTP status answered; 0 when the socket was reset (or the client went away) without an answer. */
  status: number
  /** Body bytes sent (for a truncated answer: the bytes actually sent). */
  responseBytes: number
  /** `now()` when the request arrived. */
  at: number
  /** The W3C `traceparent` header the call arrived with, when it had one (tracing tests read it). */
  traceparent?: string
}

/** One capture: a JPEG. */
export interface SimulatedAttempt {
  capturedAt: number
  bytes: Buffer
}

export interface SimulatedSession {
  interviewId: string
  description: string
  /** Oldest first; latest = last. */
  images: Partial<Record<ImageType, SimulatedAttempt[]>>
  secondId?: Partial<Record<ImageType, SimulatedAttempt[]>>
}

export interface Simulator {
  /** E.g. 'http://127.0.0.1:40123'. */
  readonly url: string
  readonly apiKey: string
  readonly adminEmail: string
  readonly adminPassword: string
  readonly paths: SimulatorPaths
  readonly calls: readonly SimulatorCall[]
  callsTo(endpoint: SimulatorCall['endpoint']): SimulatorCall[]
  resetCalls(): void
  setFaults(faults: FaultConfig | undefined): void
  setLatency(latency: LatencyModel): void
  /** A valid session token for a seeded (or created) session. */
  sessionToken(interviewId: string): string
  /** A valid admin token. */
  adminToken(): string
  /** Seeded data, for tests to compare bytes. */
  session(interviewId: string): SimulatedSession | undefined
  /** Closes the server and any keep-alive sockets. */
  close(): Promise<void>
}
