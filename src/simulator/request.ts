import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

import { REQUEST_BODY_LIMIT_BYTES, REQUEST_DRAIN_LIMIT_BYTES } from './defaults.js'
import { HttpError } from './http.js'
import { isRecord, type TokenKind } from './tokens.js'
import type { SimulatorCall } from './types.js'

export type Endpoint = SimulatorCall['endpoint']

/** One request on its way through the simulator, with what the call log will say about it. */
export interface RequestContext {
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

export const JSON_TYPE = 'application/json'

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  const first = Array.isArray(value) ? value[0] : value
  const trimmed = first?.trim()
  return trimmed ? trimmed : undefined
}

export function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** A value quoted for an error message, cut to 80 characters. */
export function short(value: unknown): string {
  // undefined (and functions) stringify to undefined, whatever the types say.
  const text = (JSON.stringify(value) as string | undefined) ?? String(value)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

type Parsed = { kind: 'empty' } | { kind: 'json'; value: unknown } | { kind: 'invalid' }

export function parseBody(raw: Buffer): Parsed {
  const text = raw.toString('utf8')
  if (text.trim() === '') return { kind: 'empty' }
  try {
    return { kind: 'json', value: JSON.parse(text) as unknown }
  } catch {
    return { kind: 'invalid' }
  }
}

/** The strings of the body's `images` array, for the call log (undefined when there is none). */
export function imagesOf(raw: Buffer): string[] | undefined {
  if (raw.length === 0 || raw.length > 1_000_000) return undefined
  const parsed = parseBody(raw)
  if (parsed.kind !== 'json' || !isRecord(parsed.value) || !Array.isArray(parsed.value.images))
    return undefined
  return parsed.value.images.filter((v): v is string => typeof v === 'string')
}

/** The body as a JSON object; `empty` decides whether an empty body counts as `{}` or is refused. */
export function bodyObject(parsed: Parsed, emptyAllowed: boolean): Record<string, unknown> {
  if (parsed.kind === 'empty') {
    if (emptyAllowed) return {}
    throw new HttpError(400, 'Required request body is missing')
  }
  if (parsed.kind === 'invalid') throw new HttpError(400, 'Malformed JSON request body')
  if (!isRecord(parsed.value)) throw new HttpError(400, 'Request body must be a JSON object')
  return parsed.value
}

/**
 * The body, 'tooLarge' past the limit (after draining it), or undefined if the client went away
 * (`onGone` runs first then).
 */
export function readBody(req: IncomingMessage, onGone: () => void): Promise<Buffer | 'tooLarge' | undefined> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length'])
    let tooLarge = Number.isFinite(declared) && declared > REQUEST_BODY_LIMIT_BYTES
    let size = 0
    let chunks: Buffer[] = []
    let settled = false
    const finish = (value: Buffer | 'tooLarge' | undefined): void => {
      if (settled) return
      settled = true
      if (value === undefined) onGone()
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
