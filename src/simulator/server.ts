import { randomBytes, timingSafeEqual } from 'node:crypto'
import http, { STATUS_CODES } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'

import {
  IMAGE_TYPE_INFO,
  IMAGE_TYPES,
  INCODE_RESPONSE_CAP_BYTES,
  isImageType,
  type ImageType,
} from '../domain/imageTypes.js'
import { concatenateJpegs } from './concat.js'
import {
  DEFAULT_ADMIN_EMAIL,
  DEFAULT_ADMIN_PASSWORD,
  DEFAULT_ADMIN_TOKEN_TTL_MS,
  DEFAULT_API_KEY,
  DEFAULT_FAULT_ENDPOINTS,
  DEFAULT_LINK_TTL_MS,
  DEFAULT_SESSION_TOKEN_TTL_MS,
  DEFAULT_SIMULATOR_PATHS,
  IMAGE_ENDPOINTS,
  REQUEST_BODY_LIMIT_BYTES,
  REQUEST_DRAIN_LIMIT_BYTES,
  type ImageEndpoint,
} from './defaults.js'
import { errorAnswer, HttpError, isLoopback, jsonAnswer, s3ErrorAnswer, type Answer } from './http.js'
import { LinkSigner } from './links.js'
import { hashString, mulberry32 } from './prng.js'
import { SEEDED_SESSIONS, seededSession } from './sessions.js'
import { isRecord, TokenSigner, type TokenClaims, type TokenKind } from './tokens.js'
import type {
  FaultConfig,
  LatencyModel,
  SimulatedAttempt,
  SimulatedSession,
  Simulator,
  SimulatorCall,
  SimulatorOptions,
  SimulatorPaths,
} from './types.js'

type Endpoint = SimulatorCall['endpoint']
type ImageSet = Partial<Record<ImageType, SimulatedAttempt[]>>

interface RequestContext {
  req: IncomingMessage
  res: ServerResponse
  method: string
  path: string
  query: URLSearchParams
  /** performance.now() at arrival, for Processing-Time. */
  started: number
  /** now() at arrival. */
  at: number
  endpoint: Endpoint
  interviewId?: string
  images?: string[]
  tokenKind?: TokenKind
  recorded: boolean
  /** Set for requests that should leave no trace in the call log (DELETE /__sim/calls). */
  unrecorded?: boolean
}

interface FaultDecision {
  reset: boolean
  error: boolean
  truncate: boolean
  malformed: boolean
  extraLatencyMs: number
  slowBodyMs: number
}

const NO_FAULT: FaultDecision = {
  reset: false,
  error: false,
  truncate: false,
  malformed: false,
  extraLatencyMs: 0,
  slowBodyMs: 0,
}

const IMAGE_ENDPOINT_SET = new Set<string>(IMAGE_ENDPOINTS)
const LATENCY_ENDPOINTS = new Set<Endpoint>([...IMAGE_ENDPOINTS, 'file'])
const PATH_KEYS = Object.keys(DEFAULT_SIMULATOR_PATHS) as Array<keyof SimulatorPaths>
const JSON_TYPE = 'application/json'
const MIB = 1024 * 1024
const MALFORMED_BODY = Buffer.from('{"status":"OK","result": <html><body>upstream hiccup</body></html>')
const EMPTY = Buffer.alloc(0)
const QUOTE = Buffer.from('"')
const NULL_VALUE = Buffer.from('null')
const EMPTY_STRING_VALUE = Buffer.from('""')
const FILE_PATH = /^\/files\/([^/]+)\/([A-Za-z0-9_]+)\/(\d+)\.jpg$/

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  const first = Array.isArray(value) ? value[0] : value
  const trimmed = first?.trim()
  return trimmed ? trimmed : undefined
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

function short(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

type Parsed = { kind: 'empty' } | { kind: 'json'; value: unknown } | { kind: 'invalid' }

function parseBody(raw: Buffer): Parsed {
  const text = raw.toString('utf8')
  if (text.trim() === '') return { kind: 'empty' }
  try {
    return { kind: 'json', value: JSON.parse(text) as unknown }
  } catch {
    return { kind: 'invalid' }
  }
}

/** The strings of the body's `images` array, for the call log (undefined when there is none). */
function imagesOf(raw: Buffer): string[] | undefined {
  if (raw.length === 0 || raw.length > 1_000_000) return undefined
  const parsed = parseBody(raw)
  if (parsed.kind !== 'json' || !isRecord(parsed.value) || !Array.isArray(parsed.value.images))
    return undefined
  return parsed.value.images.filter((v): v is string => typeof v === 'string')
}

/** The body as a JSON object; `empty` decides whether an empty body counts as `{}` or is refused. */
function bodyObject(parsed: Parsed, emptyAllowed: boolean): Record<string, unknown> {
  if (parsed.kind === 'empty') {
    if (emptyAllowed) return {}
    throw new HttpError(400, 'Required request body is missing')
  }
  if (parsed.kind === 'invalid') throw new HttpError(400, 'Malformed JSON request body')
  if (!isRecord(parsed.value)) throw new HttpError(400, 'Request body must be a JSON object')
  return parsed.value
}

function checkRate(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) return `${name} must be a number from 0 to 1`
  return undefined
}

function checkMs(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !(value >= 0 && value <= 600_000))
    return `${name} must be a number of ms (0..600000)`
  return undefined
}

/** Validates a FaultConfig from JSON; returns an error message or the config. */
export function parseFaultConfig(value: unknown): FaultConfig | string {
  if (!isRecord(value)) return 'faults must be a JSON object'
  const known = new Set([
    'errorRate',
    'errorStatus',
    'resetRate',
    'truncateRate',
    'malformedRate',
    'extraLatencyMs',
    'slowBodyMs',
    'loginFailure',
    'endpoints',
  ])
  for (const key of Object.keys(value)) if (!known.has(key)) return `unknown fault setting: ${key}`
  const problem =
    checkRate(value.errorRate, 'errorRate') ??
    checkRate(value.resetRate, 'resetRate') ??
    checkRate(value.truncateRate, 'truncateRate') ??
    checkRate(value.malformedRate, 'malformedRate') ??
    checkMs(value.extraLatencyMs, 'extraLatencyMs') ??
    checkMs(value.slowBodyMs, 'slowBodyMs')
  if (problem) return problem
  const { errorStatus, loginFailure, endpoints } = value
  if (
    errorStatus !== undefined &&
    (typeof errorStatus !== 'number' ||
      !Number.isInteger(errorStatus) ||
      !((errorStatus >= 100 && errorStatus <= 599) || (errorStatus >= 1000 && errorStatus <= 5999)))
  ) {
    return 'errorStatus must be an HTTP status (100..599) or an Incode custom code (1000..5999)'
  }
  if (loginFailure !== undefined && typeof loginFailure !== 'boolean') return 'loginFailure must be a boolean'
  if (endpoints !== undefined) {
    if (!Array.isArray(endpoints)) return 'endpoints must be an array'
    for (const e of endpoints) {
      if (typeof e !== 'string' || !(PATH_KEYS as string[]).includes(e)) {
        return `unknown endpoint ${short(e)}; known: ${PATH_KEYS.join(', ')}`
      }
    }
  }
  return value
}

/** Validates a LatencyModel from JSON (missing fields are 0); returns an error message or the model. */
export function parseLatency(value: unknown): LatencyModel | string {
  if (!isRecord(value)) return 'latency must be a JSON object'
  const fixedMs = value.fixedMs ?? 0
  const perMiBMs = value.perMiBMs ?? 0
  if (typeof fixedMs !== 'number' || !(fixedMs >= 0 && fixedMs <= 600_000)) return 'fixedMs must be 0..600000'
  if (typeof perMiBMs !== 'number' || !(perMiBMs >= 0 && perMiBMs <= 600_000))
    return 'perMiBMs must be 0..600000'
  return { fixedMs, perMiBMs }
}

class SimulatorServer implements Simulator {
  url = ''
  readonly apiKey: string
  readonly adminEmail: string
  readonly adminPassword: string
  readonly paths: SimulatorPaths

  private readonly server: http.Server
  private readonly host: string
  private readonly port: number
  private readonly seed: number
  private readonly now: () => number
  private readonly log: ((line: string) => void) | undefined
  private readonly linkTtlMs: number
  private readonly linkSignedAgoMs: number
  private readonly adminTokenTtlMs: number
  private readonly sessionTokenTtlMs: number
  private readonly capBytes: number
  private readonly missingAs: 'omit' | 'null' | 'empty'
  private readonly routes = new Map<string, keyof SimulatorPaths>()
  private readonly tokens: TokenSigner
  private readonly links: LinkSigner
  private readonly created = new Map<string, SimulatedSession>()
  private readonly base64Cache = new WeakMap<SimulatedAttempt, Buffer>()
  private readonly concatCache = new Map<string, Buffer>()
  private readonly sleepers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>()
  private latency: LatencyModel
  private faults: FaultConfig | undefined
  private faultRandom: () => number
  private log_: SimulatorCall[] = []
  private closing: Promise<void> | undefined
  private closed = false

  constructor(options: SimulatorOptions) {
    this.host = options.host ?? '127.0.0.1'
    this.port = options.port ?? 0
    this.apiKey = options.apiKey ?? DEFAULT_API_KEY
    this.adminEmail = options.adminEmail ?? DEFAULT_ADMIN_EMAIL
    this.adminPassword = options.adminPassword ?? DEFAULT_ADMIN_PASSWORD
    this.seed = options.seed ?? 1
    this.now = options.now ?? Date.now
    this.log = options.logger
    this.linkTtlMs = options.linkTtlMs ?? DEFAULT_LINK_TTL_MS
    this.linkSignedAgoMs = options.linkSignedAgoMs ?? 0
    this.adminTokenTtlMs = options.adminTokenTtlMs ?? DEFAULT_ADMIN_TOKEN_TTL_MS
    this.sessionTokenTtlMs = options.sessionTokenTtlMs ?? DEFAULT_SESSION_TOKEN_TTL_MS
    this.capBytes = options.responseCapBytes ?? INCODE_RESPONSE_CAP_BYTES
    this.missingAs = options.missingAs ?? 'null'
    this.latency = { ...(options.latency ?? { fixedMs: 0, perMiBMs: 0 }) }
    this.faults = options.faults ? { ...options.faults } : undefined
    this.faultRandom = mulberry32(hashString(`faults|${this.seed}`))
    this.paths = { ...DEFAULT_SIMULATOR_PATHS, ...options.paths }
    for (const key of PATH_KEYS) this.routes.set(this.paths[key], key)
    this.tokens = new TokenSigner(this.seed)
    this.links = new LinkSigner(this.seed)

    this.server = http.createServer((req, res) => this.handle(req, res))
    this.server.keepAliveTimeout = 30_000
    this.server.headersTimeout = 35_000
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy()
        return
      }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400
      const body = errorAnswer(status, 'Malformed HTTP request', '', this.now()).body
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Bad Request'}\r\nContent-Type: ${JSON_TYPE}\r\n` +
          `Content-Length: ${body.length}\r\nProcessing-Time: 0\r\nConnection: close\r\n\r\n${body.toString()}`,
      )
    })
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err)
      this.server.once('error', onError)
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', onError)
        const { port } = this.server.address() as AddressInfo
        const host = this.host.includes(':') ? `[${this.host}]` : this.host
        this.url = `http://${host}:${port}`
        resolve()
      })
    })
  }

  // ---------------------------------------------------------------- public API

  get calls(): readonly SimulatorCall[] {
    return this.log_
  }

  callsTo(endpoint: Endpoint): SimulatorCall[] {
    return this.log_.filter((c) => c.endpoint === endpoint)
  }

  resetCalls(): void {
    this.log_ = []
  }

  setFaults(faults: FaultConfig | undefined): void {
    this.faults = faults ? { ...faults } : undefined
    this.faultRandom = mulberry32(hashString(`faults|${this.seed}`))
  }

  setLatency(latency: LatencyModel): void {
    this.latency = { fixedMs: latency.fixedMs, perMiBMs: latency.perMiBMs }
  }

  sessionToken(interviewId: string): string {
    return this.tokens.sign(interviewId, 'session', this.now(), this.sessionTokenTtlMs)
  }

  adminToken(): string {
    return this.tokens.sign('admin', 'admin', this.now(), this.adminTokenTtlMs)
  }

  session(interviewId: string): SimulatedSession | undefined {
    return this.created.get(interviewId) ?? seededSession(this.seed, interviewId)
  }

  close(): Promise<void> {
    if (this.closing) return this.closing
    this.closed = true
    for (const sleeper of this.sleepers) {
      clearTimeout(sleeper.timer)
      sleeper.resolve()
    }
    this.sleepers.clear()
    this.closing = new Promise<void>((resolve) => {
      if (!this.server.listening) {
        resolve()
        return
      }
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
    return this.closing
  }

  // ---------------------------------------------------------------- plumbing

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const raw = req.url ?? '/'
    const q = raw.indexOf('?')
    const ctx: RequestContext = {
      req,
      res,
      method: (req.method ?? 'GET').toUpperCase(),
      path: q === -1 ? raw : raw.slice(0, q),
      query: new URLSearchParams(q === -1 ? '' : raw.slice(q + 1)),
      started: performance.now(),
      at: this.now(),
      endpoint: 'unknown',
      recorded: false,
    }
    req.on('error', () => undefined)
    res.on('error', () => undefined)
    this.dispatch(ctx).catch((err: unknown) => {
      this.log?.(`simulator: internal error on ${ctx.method} ${ctx.path}: ${String(err)}`)
      if (!res.headersSent && !res.destroyed) {
        const answer = errorAnswer(500, 'Internal simulator error', ctx.path, this.now())
        this.record(ctx, answer.status, answer.body.length)
        res.writeHead(answer.status, { 'Content-Type': JSON_TYPE, 'Processing-Time': '0' })
        res.end(answer.body)
      } else {
        this.record(ctx, 0, 0)
        res.destroy()
      }
    })
  }

  private async dispatch(ctx: RequestContext): Promise<void> {
    const { path } = ctx
    if (path === '/__sim' || path.startsWith('/__sim/')) return this.control(ctx)
    if (path.startsWith('/files/')) {
      ctx.endpoint = 'file'
      const body = await this.readBody(ctx)
      if (body === undefined) return
      return this.reply(
        ctx,
        this.guard(ctx, () => this.file(ctx)),
      )
    }
    let route = path
    let zero = false
    if (route === '/0' || route.startsWith('/0/')) {
      zero = true
      route = route.slice(2)
    }
    if (route.length > 1 && route.endsWith('/')) route = route.slice(0, -1)
    const endpoint = this.routes.get(route)
    if (!endpoint || (zero && !IMAGE_ENDPOINT_SET.has(endpoint))) {
      const body = await this.readBody(ctx)
      if (body === undefined) return
      return this.reply(ctx, this.error(ctx, 404, `No endpoint ${ctx.method} ${path}`))
    }
    ctx.endpoint = endpoint
    const body = await this.readBody(ctx)
    if (body === undefined) return
    if (ctx.method !== 'POST') {
      return this.reply(ctx, {
        ...this.error(ctx, 405, `Request method '${ctx.method}' is not supported`),
        headers: { Allow: 'POST' },
      })
    }
    if (body === 'tooLarge') {
      return this.reply(ctx, this.error(ctx, 413, `Request body exceeds ${REQUEST_BODY_LIMIT_BYTES} bytes`))
    }
    if (IMAGE_ENDPOINT_SET.has(endpoint)) ctx.images = imagesOf(body)
    const decision = this.drawFaults(endpoint)
    if (decision.reset) {
      if (decision.extraLatencyMs > 0) await this.sleep(decision.extraLatencyMs)
      this.record(ctx, 0, 0)
      const socket = ctx.req.socket
      if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy()
      else socket.destroy()
      return
    }
    if (decision.error) {
      const status = this.faults?.errorStatus ?? 500
      return this.reply(ctx, this.error(ctx, status, 'Simulated upstream failure'), decision)
    }
    const answer = this.guard(ctx, () => {
      if (endpoint === 'start') return this.start(ctx, body)
      if (endpoint === 'adminLogin') return this.adminLogin(ctx, body)
      return this.imageEndpoint(ctx, endpoint, zero, body)
    })
    return this.reply(ctx, answer, decision)
  }

  /** Runs a handler, turning an HttpError into Incode's error answer. */
  private guard(ctx: RequestContext, fn: () => Answer): Answer {
    try {
      return fn()
    } catch (err) {
      if (err instanceof HttpError) {
        const answer = this.error(ctx, err.status, err.message)
        return Object.keys(err.headers).length > 0 ? { ...answer, headers: err.headers } : answer
      }
      throw err
    }
  }

  private error(ctx: RequestContext, status: number, message: string): Answer {
    return errorAnswer(status, message, ctx.path, this.now())
  }

  /** The body, 'tooLarge' past the limit (after draining it), or undefined if the client went away. */
  private readBody(ctx: RequestContext): Promise<Buffer | 'tooLarge' | undefined> {
    const { req } = ctx
    return new Promise((resolve) => {
      const declared = Number(req.headers['content-length'])
      let tooLarge = Number.isFinite(declared) && declared > REQUEST_BODY_LIMIT_BYTES
      let size = 0
      let chunks: Buffer[] = []
      let settled = false
      const finish = (value: Buffer | 'tooLarge' | undefined): void => {
        if (settled) return
        settled = true
        if (value === undefined) this.record(ctx, 0, 0)
        resolve(value)
      }
      req.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > REQUEST_BODY_LIMIT_BYTES) {
          tooLarge = true
          chunks = []
        }
        if (!tooLarge) chunks.push(chunk)
        if (size > REQUEST_DRAIN_LIMIT_BYTES) {
          req.socket.destroy()
          finish(undefined)
        }
      })
      req.on('end', () => finish(tooLarge ? 'tooLarge' : Buffer.concat(chunks, size)))
      req.on('error', () => finish(undefined))
      req.on('close', () =>
        finish(req.complete ? (tooLarge ? 'tooLarge' : Buffer.concat(chunks, size)) : undefined),
      )
    })
  }

  private sleep(ms: number): Promise<void> {
    if (this.closed || ms <= 0) return Promise.resolve()
    return new Promise((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          this.sleepers.delete(sleeper)
          resolve()
        }, ms),
        resolve,
      }
      this.sleepers.add(sleeper)
    })
  }

  private drawFaults(endpoint: keyof SimulatorPaths): FaultDecision {
    const f = this.faults
    if (!f) return NO_FAULT
    const applies = f.endpoints ?? DEFAULT_FAULT_ENDPOINTS
    if (!applies.includes(endpoint)) return NO_FAULT
    // always draw all four, so one call consumes the same amount of randomness whatever the rates
    const r = [this.faultRandom(), this.faultRandom(), this.faultRandom(), this.faultRandom()] as const
    return {
      reset: r[0] < (f.resetRate ?? 0),
      error: r[1] < (f.errorRate ?? 0),
      truncate: r[2] < (f.truncateRate ?? 0),
      malformed: r[3] < (f.malformedRate ?? 0),
      extraLatencyMs: Math.max(0, f.extraLatencyMs ?? 0),
      slowBodyMs: Math.max(0, f.slowBodyMs ?? 0),
    }
  }

  private record(ctx: RequestContext, status: number, responseBytes: number): void {
    if (ctx.recorded) return
    ctx.recorded = true
    if (ctx.unrecorded) return
    const call: SimulatorCall = {
      endpoint: ctx.endpoint,
      method: ctx.method,
      path: ctx.path,
      status,
      responseBytes,
      at: ctx.at,
    }
    if (ctx.interviewId !== undefined) call.interviewId = ctx.interviewId
    if (ctx.images !== undefined) call.images = ctx.images
    if (ctx.tokenKind !== undefined) call.tokenKind = ctx.tokenKind
    this.log_.push(call)
    if (this.log) {
      const ms = Math.round(performance.now() - ctx.started)
      this.log(`${ctx.method} ${ctx.path} ${status} ${responseBytes}B ${ms}ms`)
    }
  }

  /** Applies latency and faults to an answer, records the call and writes it. */
  private async reply(
    ctx: RequestContext,
    answer: Answer,
    decision: FaultDecision = NO_FAULT,
  ): Promise<void> {
    let { status, body, contentType } = answer
    if (decision.malformed && !decision.error) {
      status = 200
      body = MALFORMED_BODY
      contentType = JSON_TYPE
    }
    let delay = decision.extraLatencyMs
    if (LATENCY_ENDPOINTS.has(ctx.endpoint)) {
      delay += this.latency.fixedMs + (this.latency.perMiBMs * body.length) / MIB
    }
    if (delay > 0) await this.sleep(delay)
    const { res } = ctx
    if (this.closed || res.destroyed || ctx.req.socket.destroyed) {
      this.record(ctx, 0, 0)
      return
    }
    const head = ctx.method === 'HEAD'
    const truncate = decision.truncate && !head && body.length >= 2
    const payload = head ? EMPTY : truncate ? body.subarray(0, Math.floor(body.length / 2)) : body
    this.record(ctx, status, payload.length)
    res.writeHead(status, {
      'Content-Type': contentType,
      'Content-Length': String(body.length),
      'Processing-Time': String(Math.round(performance.now() - ctx.started)),
      ...answer.headers,
    })
    let last: Buffer | undefined = payload
    if (decision.slowBodyMs > 0 && payload.length > 1)
      last = await this.trickle(ctx, payload, decision.slowBodyMs)
    if (last === undefined) return
    if (truncate) {
      const socket = ctx.req.socket
      res.write(last, () => socket.destroy())
    } else {
      res.end(last)
    }
  }

  /** Writes all but the last piece of `payload`, pausing between pieces; returns the last piece. */
  private async trickle(ctx: RequestContext, payload: Buffer, totalMs: number): Promise<Buffer | undefined> {
    const pieces = Math.min(10, payload.length)
    const size = Math.ceil(payload.length / pieces)
    const pause = totalMs / Math.max(1, Math.ceil(payload.length / size) - 1)
    let at = 0
    while (at + size < payload.length) {
      ctx.res.write(payload.subarray(at, at + size))
      at += size
      await this.sleep(pause)
      if (this.closed || ctx.res.destroyed) return undefined
    }
    return payload.subarray(at)
  }

  // ---------------------------------------------------------------- authentication

  private requireApiKey(ctx: RequestContext): void {
    const key = header(ctx.req, 'x-api-key')
    if (!key) throw new HttpError(403, 'Missing API key: send it in the x-api-key header')
    if (!sameString(key, this.apiKey)) throw new HttpError(403, 'Invalid API key')
  }

  private authenticate(ctx: RequestContext, zero: boolean): TokenClaims {
    if (!zero) this.requireApiKey(ctx)
    const token = header(ctx.req, 'x-incode-hardware-id')
    if (!token) throw new HttpError(401, 'Missing token: send it in the X-Incode-Hardware-Id header')
    const checked = this.tokens.check(token, this.now())
    if (!checked.ok) {
      throw new HttpError(401, checked.reason === 'expired' ? 'Token has expired' : 'Invalid token')
    }
    ctx.tokenKind = checked.claims.kind
    if (zero && checked.claims.kind !== 'session') {
      throw new HttpError(401, 'Endpoints under /0 take a session token; an executive token is not accepted')
    }
    return checked.claims
  }

  /** The interview a call is about: from `?id=` (required for admin tokens) or the session token. */
  private interviewFor(ctx: RequestContext, claims: TokenClaims): string {
    const id = ctx.query.get('id')?.trim() || undefined
    if (claims.kind === 'admin') {
      if (!id)
        throw new HttpError(400, 'Query parameter id (the interview ID) is required with an executive token')
      return id
    }
    if (id !== undefined && id !== claims.sub) {
      throw new HttpError(403, `The token does not grant access to interview ${short(id)}`)
    }
    return claims.sub
  }

  // ---------------------------------------------------------------- endpoints

  private start(ctx: RequestContext, raw: Buffer): Answer {
    this.requireApiKey(ctx)
    const body = bodyObject(parseBody(raw), true)
    const requested = body.interviewId
    if (requested !== undefined && requested !== null && requested !== '') {
      if (typeof requested !== 'string') throw new HttpError(400, 'interviewId must be a string')
      ctx.interviewId = requested
      if (!this.session(requested)) throw new HttpError(404, `Interview ${short(requested)} not found`)
      return jsonAnswer({ token: this.sessionToken(requested), interviewId: requested })
    }
    let interviewId = randomBytes(12).toString('hex')
    while (this.session(interviewId)) interviewId = randomBytes(12).toString('hex')
    this.created.set(interviewId, { interviewId, description: 'Created by start; no captures', images: {} })
    ctx.interviewId = interviewId
    return jsonAnswer({ token: this.sessionToken(interviewId), interviewId })
  }

  private adminLogin(ctx: RequestContext, raw: Buffer): Answer {
    this.requireApiKey(ctx)
    if (this.faults?.loginFailure) throw new HttpError(500, 'Simulated executive log-in failure')
    const body = bodyObject(parseBody(raw), false)
    const { email, password } = body
    if (typeof email !== 'string' || email.trim() === '' || typeof password !== 'string' || password === '') {
      throw new HttpError(400, 'email and password are required')
    }
    const emailOk = sameString(email.trim().toLowerCase(), this.adminEmail.toLowerCase())
    const passwordOk = sameString(password, this.adminPassword)
    if (!emailOk || !passwordOk) throw new HttpError(401, 'Invalid credentials')
    return jsonAnswer({ token: this.adminToken() })
  }

  private imageEndpoint(ctx: RequestContext, endpoint: ImageEndpoint, zero: boolean, raw: Buffer): Answer {
    const parsed = parseBody(raw)
    const claims = this.authenticate(ctx, zero)
    const interviewId = this.interviewFor(ctx, claims)
    ctx.interviewId = interviewId
    const session = this.session(interviewId)
    if (!session) throw new HttpError(404, `Interview ${short(interviewId)} not found`)
    const concatenated = endpoint === 'concatenatedImages'
    const body = bodyObject(parsed, concatenated)
    const types = this.requestedTypes(body, concatenated)
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

  /** The deduplicated image types of the body; undefined when optional and absent. */
  private requestedTypes(body: Record<string, unknown>, optional: boolean): ImageType[] | undefined {
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

  private base64Of(attempt: SimulatedAttempt): Buffer {
    let b64 = this.base64Cache.get(attempt)
    if (!b64) {
      b64 = Buffer.from(attempt.bytes.toString('base64'), 'latin1')
      this.base64Cache.set(attempt, b64)
    }
    return b64
  }

  private capCheck(size: number): void {
    if (size > this.capBytes) {
      throw new HttpError(
        502,
        `Response of ${size} bytes exceeds the ${this.capBytes} bytes limit; request fewer images per call`,
      )
    }
  }

  /** `{type: base64}` of the latest attempt of each type, built by concatenating cached buffers. */
  private base64Answer(images: ImageSet, types: readonly ImageType[]): Answer {
    const pieces: Buffer[] = [Buffer.from('{')]
    let first = true
    for (const type of types) {
      const attempts = images[type]
      const latest = attempts?.[attempts.length - 1]
      if (!latest && this.missingAs === 'omit') continue
      pieces.push(Buffer.from(`${first ? '' : ','}${JSON.stringify(type)}:`))
      if (latest) pieces.push(QUOTE, this.base64Of(latest), QUOTE)
      else pieces.push(this.missingAs === 'null' ? NULL_VALUE : EMPTY_STRING_VALUE)
      first = false
    }
    pieces.push(Buffer.from('}'))
    const size = pieces.reduce((n, p) => n + p.length, 0)
    this.capCheck(size)
    return { status: 200, body: Buffer.concat(pieces, size), contentType: JSON_TYPE }
  }

  private linkFor(interviewId: string, type: ImageType, capturedAt: number, signedAt: number): string {
    const path = `/files/${encodeURIComponent(interviewId)}/${type}/${capturedAt}.jpg`
    return `${this.url}${path}?${this.links.sign(path, signedAt, this.linkTtlMs / 1000)}`
  }

  private linksAnswer(session: SimulatedSession, types: readonly ImageType[]): Answer {
    const signedAt = this.now() - this.linkSignedAgoMs
    const out: Record<string, unknown> = {}
    for (const type of types) {
      if (!IMAGE_TYPE_INFO[type].linkable) continue
      const attempts = session.images[type]
      if (!attempts || attempts.length === 0) continue
      const urls = attempts.map((a) => this.linkFor(session.interviewId, type, a.capturedAt, signedAt))
      out[type] = urls[urls.length - 1]
      out[`${type}_prevAttempts`] = Object.fromEntries(
        attempts.map((a, i) => [String(a.capturedAt), urls[i]]),
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

  /** GET /files/<interviewId>/<type>/<capturedAt>.jpg?X-Amz-...: a presigned link's JPEG. */
  private file(ctx: RequestContext): Answer {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      return {
        ...s3ErrorAnswer(
          405,
          'MethodNotAllowed',
          'The specified method is not allowed against this resource.',
        ),
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
    const now = this.now()
    const checked = this.links.check(ctx.path, ctx.query, now)
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
    const session = interviewId === undefined ? undefined : this.session(interviewId)
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

  // ---------------------------------------------------------------- control endpoints

  private async control(ctx: RequestContext): Promise<void> {
    ctx.endpoint = 'control'
    const raw = await this.readBody(ctx)
    if (raw === undefined) return
    if (raw === 'tooLarge') return this.reply(ctx, this.error(ctx, 413, 'Request body too large'))
    if (!isLoopback(ctx.req.socket.remoteAddress)) {
      return this.reply(ctx, this.error(ctx, 403, 'Control endpoints answer loopback clients only'))
    }
    const methods: Record<string, string[]> = {
      '/__sim/calls': ['GET', 'DELETE'],
      '/__sim/faults': ['GET', 'PUT'],
      '/__sim/latency': ['GET', 'PUT'],
      '/__sim/sessions': ['GET'],
    }
    const allowed = methods[ctx.path]
    if (!allowed) return this.reply(ctx, this.error(ctx, 404, `No control endpoint ${ctx.path}`))
    if (!allowed.includes(ctx.method)) {
      return this.reply(ctx, {
        ...this.error(ctx, 405, `Request method '${ctx.method}' is not supported`),
        headers: { Allow: allowed.join(', ') },
      })
    }
    const answer = this.guard(ctx, () => {
      switch (`${ctx.method} ${ctx.path}`) {
        case 'GET /__sim/calls': {
          const endpoint = ctx.query.get('endpoint')
          return jsonAnswer(endpoint ? this.log_.filter((c) => c.endpoint === endpoint) : this.log_)
        }
        case 'DELETE /__sim/calls': {
          const cleared = this.log_.length
          this.resetCalls()
          ctx.unrecorded = true
          return jsonAnswer({ cleared })
        }
        case 'GET /__sim/faults':
          return jsonAnswer(this.faults ?? {})
        case 'PUT /__sim/faults': {
          const faults = parseFaultConfig(bodyObject(parseBody(raw), true))
          if (typeof faults === 'string') throw new HttpError(400, faults)
          this.setFaults(Object.keys(faults).length > 0 ? faults : undefined)
          return jsonAnswer(this.faults ?? {})
        }
        case 'GET /__sim/latency':
          return jsonAnswer(this.latency)
        case 'PUT /__sim/latency': {
          const latency = parseLatency(bodyObject(parseBody(raw), true))
          if (typeof latency === 'string') throw new HttpError(400, latency)
          this.setLatency(latency)
          return jsonAnswer(this.latency)
        }
        default:
          return jsonAnswer(
            SEEDED_SESSIONS.map(({ interviewId, description }) => ({
              interviewId,
              description,
              sessionToken: this.sessionToken(interviewId),
            })),
          )
      }
    })
    return this.reply(ctx, answer)
  }
}

/** Starts an Incode simulator; resolves once it listens. */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const simulator = new SimulatorServer(options)
  await simulator.listen()
  return simulator
}
