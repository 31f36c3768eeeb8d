import http, { STATUS_CODES } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'

import { controlAnswer } from './control.js'
import { DEFAULT_SIMULATOR_PATHS, IMAGE_ENDPOINTS, PATH_KEYS, REQUEST_BODY_LIMIT_BYTES } from './defaults.js'
import { IncodeEndpoints } from './endpoints.js'
import { FaultInjector, MALFORMED_BODY, NO_FAULT, type FaultDecision } from './faults.js'
import { fileAnswer } from './files.js'
import { errorAnswer, HttpError, type Answer } from './http.js'
import { header, imagesOf, JSON_TYPE, readBody, type Endpoint, type RequestContext } from './request.js'
import { SimulatorState } from './state.js'
import type {
  FaultConfig,
  LatencyModel,
  SimulatedSession,
  Simulator,
  SimulatorCall,
  SimulatorOptions,
  SimulatorPaths,
} from './types.js'

const IMAGE_ENDPOINT_SET = new Set<string>(IMAGE_ENDPOINTS)
const LATENCY_ENDPOINTS = new Set<Endpoint>([...IMAGE_ENDPOINTS, 'file'])
const MIB = 1024 * 1024
const EMPTY = Buffer.alloc(0)

/** The HTTP server: routing, latency, faults on the wire and the call log; endpoints answer elsewhere. */
class SimulatorServer implements Simulator {
  readonly apiKey: string
  readonly adminEmail: string
  readonly adminPassword: string
  readonly paths: SimulatorPaths

  private readonly server: http.Server
  private readonly host: string
  private readonly port: number
  private readonly now: () => number
  private readonly log: ((line: string) => void) | undefined
  private readonly routes = new Map<string, keyof SimulatorPaths>()
  private readonly state: SimulatorState
  private readonly faults: FaultInjector
  private readonly endpoints: IncodeEndpoints
  private readonly sleepers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>()
  private latency: LatencyModel
  private log_: SimulatorCall[] = []
  private closing: Promise<void> | undefined
  private closed = false

  constructor(options: SimulatorOptions) {
    this.host = options.host ?? '127.0.0.1'
    this.port = options.port ?? 0
    this.state = new SimulatorState(options)
    this.apiKey = this.state.apiKey
    this.adminEmail = this.state.adminEmail
    this.adminPassword = this.state.adminPassword
    this.now = this.state.now
    this.log = options.logger
    this.latency = { ...(options.latency ?? { fixedMs: 0, perMiBMs: 0 }) }
    this.faults = new FaultInjector(options.seed ?? 1, options.faults)
    this.endpoints = new IncodeEndpoints(this.state, this.faults)
    this.paths = { ...DEFAULT_SIMULATOR_PATHS, ...options.paths }
    for (const key of PATH_KEYS) this.routes.set(this.paths[key], key)

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
        this.state.url = `http://${host}:${port}`
        resolve()
      })
    })
  }

  // ---------------------------------------------------------------- public API

  get url(): string {
    return this.state.url
  }

  get calls(): readonly SimulatorCall[] {
    return this.log_
  }

  /** The fault settings in force (for the control API). */
  get faultConfig(): FaultConfig | undefined {
    return this.faults.config
  }

  /** The latency model in force (for the control API). */
  get latencyModel(): LatencyModel {
    return this.latency
  }

  callsTo(endpoint: Endpoint): SimulatorCall[] {
    return this.log_.filter((c) => c.endpoint === endpoint)
  }

  resetCalls(): void {
    this.log_ = []
  }

  setFaults(faults: FaultConfig | undefined): void {
    this.faults.set(faults)
  }

  setLatency(latency: LatencyModel): void {
    this.latency = { fixedMs: latency.fixedMs, perMiBMs: latency.perMiBMs }
  }

  sessionToken(interviewId: string): string {
    return this.state.sessionToken(interviewId)
  }

  adminToken(): string {
    return this.state.adminToken()
  }

  session(interviewId: string): SimulatedSession | undefined {
    return this.state.session(interviewId)
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
        this.guard(ctx, () => fileAnswer(this.state, ctx)),
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
    if (IMAGE_ENDPOINT_SET.has(endpoint)) {
      const images = imagesOf(body)
      if (images) ctx.images = images
    }
    const decision = this.faults.draw(endpoint)
    if (decision.reset) {
      if (decision.extraLatencyMs > 0) await this.sleep(decision.extraLatencyMs)
      this.record(ctx, 0, 0)
      const socket = ctx.req.socket
      if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy()
      else socket.destroy()
      return
    }
    if (decision.error) {
      const status = this.faults.config?.errorStatus ?? 500
      return this.reply(ctx, this.error(ctx, status, 'Simulated upstream failure'), decision)
    }
    const answer = this.guard(ctx, () => {
      if (endpoint === 'start') return this.endpoints.start(ctx, body)
      if (endpoint === 'adminLogin') return this.endpoints.adminLogin(ctx, body)
      return this.endpoints.image(ctx, endpoint, zero, body)
    })
    return this.reply(ctx, answer, decision)
  }

  /** Control endpoints: /__sim/... (see control.ts). */
  private async control(ctx: RequestContext): Promise<void> {
    ctx.endpoint = 'control'
    const raw = await this.readBody(ctx)
    if (raw === undefined) return
    if (raw === 'tooLarge') return this.reply(ctx, this.error(ctx, 413, 'Request body too large'))
    return this.reply(
      ctx,
      this.guard(ctx, () => controlAnswer(this, ctx, raw)),
    )
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

  /** The body, 'tooLarge' past the limit, or undefined (recorded as status 0) if the client went away. */
  private readBody(ctx: RequestContext): Promise<Buffer | 'tooLarge' | undefined> {
    return readBody(ctx.req, () => this.record(ctx, 0, 0))
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
    const traceparent = header(ctx.req, 'traceparent')
    if (traceparent !== undefined) call.traceparent = traceparent
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
}

/** Starts an Incode simulator; resolves once it listens. */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const simulator = new SimulatorServer(options)
  await simulator.listen()
  return simulator
}
