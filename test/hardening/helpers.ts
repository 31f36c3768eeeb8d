import { request as httpRequest, type RequestOptions } from 'node:http'
import { Writable } from 'node:stream'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { SCOPES, sha256Hex, type Scope } from '../../src/auth/apiKeys.js'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { PARTNER_KEY } from '../helpers/build.js'
import type { SimulatedSession, Simulator } from '../../src/simulator/index.js'

/** Parsed JSON as the tests read it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any

export const ALL_SCOPES: Scope[] = [...SCOPES]

/** One API_KEYS entry for `key` (only its hash is configured). */
export function keyEntry(name: string, key: string, scopes: readonly Scope[]) {
  return { name, scopes: [...scopes], sha256: sha256Hex(key) }
}

/** API_KEYS with the harness' full partner key plus `extra` keys. */
export function apiKeys(...extra: Array<ReturnType<typeof keyEntry>>): string {
  return JSON.stringify([keyEntry('test-partner', PARTNER_KEY, ALL_SCOPES), ...extra])
}

/** Settings every hardening app shares: per-caller rate limits out of the way of bulk traffic. */
export const HARDENING_ENV: Record<string, string> = {
  RATE_LIMIT_MAX: '1000000',
}

export function parseJson(text: string): Json {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function contentType(headers: Record<string, unknown>): string {
  const value = headers['content-type']
  return typeof value === 'string' ? value : Array.isArray(value) ? value.join(', ') : ''
}

/** What is wrong with a /v1 error answer (problem+json with a stable code), or undefined. */
export function problemFlaw(res: { statusCode: number; headers: Record<string, unknown>; body: string }) {
  const type = contentType(res.headers)
  if (!type.startsWith('application/problem+json')) return `content-type is '${type}'`
  const body = parseJson(res.body)
  if (typeof body !== 'object' || body === null) return 'body is not a JSON object'
  if (typeof body.code !== 'string' || body.code === '') return 'no code'
  if (body.status !== res.statusCode) return `body status ${String(body.status)} is not ${res.statusCode}`
  if (typeof body.type !== 'string' || typeof body.title !== 'string' || typeof body.detail !== 'string')
    return 'type, title or detail missing'
  return undefined
}

/** What is wrong with a drop-in error answer (Incode's own error body), or undefined. */
export function incodeFlaw(res: { statusCode: number; headers: Record<string, unknown>; body: string }) {
  const type = contentType(res.headers)
  if (!type.startsWith('application/json')) return `content-type is '${type}'`
  const body = parseJson(res.body)
  if (typeof body !== 'object' || body === null) return 'body is not a JSON object'
  if (typeof body.timestamp !== 'number') return 'no numeric timestamp'
  if (typeof body.status !== 'number') return 'no numeric status'
  if (typeof body.error !== 'string' || typeof body.message !== 'string') return 'error or message missing'
  if (typeof body.path !== 'string' || !body.path.startsWith('/')) return 'no path'
  return undefined
}

/** Asserts a /v1 problem+json answer with this status and code. */
export function assertProblem(
  t: Test,
  res: LightMyRequestResponse | { statusCode: number; headers: Record<string, unknown>; body: string },
  status: number,
  code: string,
  what: string,
): void {
  t.equal(res.statusCode, status, `${what}: status ${status}`)
  t.equal(problemFlaw(res), undefined, `${what}: a well-formed problem+json body`)
  t.equal(parseJson(res.body)?.code, code, `${what}: code ${code}`)
}

/** Asserts a drop-in answer with Incode's error body and this status. */
export function assertIncodeError(
  t: Test,
  res: LightMyRequestResponse | { statusCode: number; headers: Record<string, unknown>; body: string },
  status: number,
  path: string,
  what: string,
): void {
  t.equal(res.statusCode, status, `${what}: status ${status}`)
  t.equal(incodeFlaw(res), undefined, `${what}: Incode's error body`)
  const body = parseJson(res.body)
  t.equal(body?.status, status, `${what}: the body's status is ${status}`)
  t.equal(body?.path, path, `${what}: the body names the path`)
}

export function post(
  app: FastifyInstance,
  url: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, headers, payload: JSON.stringify(body) })
}

/** The latest capture of `type` in a simulated image set. */
export function latestBytes(
  images: SimulatedSession['images'] | undefined,
  type: ImageType,
): Buffer | undefined {
  const attempts = images?.[type]
  return attempts?.[attempts.length - 1]?.bytes
}

export function sessionOf(simulator: Simulator, interviewId: string): SimulatedSession {
  const session = simulator.session(interviewId)
  if (!session) throw new Error(`the simulator has no session ${interviewId}`)
  return session
}

/**
 * Which served images differ from the simulator's latest capture of that exact type in that exact
 * session (or second-ID document): a list of `type` names, empty when every image is right.
 */
export function wrongImages(
  images: Record<string, unknown>,
  expected: SimulatedSession['images'] | undefined,
): string[] {
  const wrong: string[] = []
  for (const [type, value] of Object.entries(images)) {
    const want = latestBytes(expected, type as ImageType)
    if (typeof value !== 'string' || !want || !Buffer.from(value, 'base64').equals(want)) wrong.push(type)
  }
  return wrong
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Own property names of Object.prototype (and friends), to detect prototype pollution. */
export function prototypeSnapshot(): string {
  return JSON.stringify([
    Object.getOwnPropertyNames(Object.prototype).sort(),
    Object.getOwnPropertyNames(Array.prototype).sort(),
    Object.getOwnPropertyNames(Function.prototype).sort(),
  ])
}

/** A log destination that keeps every line the app writes, for scanning. */
export class LogCapture extends Writable {
  readonly chunks: string[] = []
  override _write(
    chunk: Buffer | string,
    _encoding: BufferEncoding,
    done: (error?: Error | null) => void,
  ): void {
    this.chunks.push(chunk.toString())
    done()
  }
  get text(): string {
    return this.chunks.join('')
  }
  get lines(): string[] {
    return this.text.split('\n').filter((line) => line.trim() !== '')
  }
}

export interface PacedAnswer {
  status: number
  body: Buffer
  error?: Error
}

/**
 * Reads an answer at a steady, slow pace: `step` more bytes allowed every `everyMs`, the stream
 * paused in between. `onStep` runs at each step with the request's local port (to find the
 * server's side of the connection). Resolves with what arrived, and the error if it was cut.
 */
export function readPaced(
  url: string,
  options: RequestOptions & { body?: string },
  pace: { step: number; everyMs: number; onStep: (localPort: number) => void },
): Promise<PacedAnswer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let allowance = 0
    let got = 0
    const { body, ...requestOptions } = options
    const req = httpRequest(url, { ...requestOptions, agent: false }, (res) => {
      const timer = setInterval(() => {
        pace.onStep(req.socket?.localPort ?? -1)
        allowance += pace.step
        res.resume()
      }, pace.everyMs)
      res.pause()
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        got += chunk.length
        if (got >= allowance) res.pause()
      })
      res.on('end', () => {
        clearInterval(timer)
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) })
      })
      res.on('error', (error) => {
        clearInterval(timer)
        resolve({ status: res.statusCode ?? 0, body: Buffer.alloc(0), error })
      })
    })
    req.on('error', (error) => resolve({ status: 0, body: Buffer.alloc(0), error }))
    req.end(body)
  })
}
