import { STATUS_CODES } from 'node:http'

/** An Incode-style error to answer with; thrown inside request handling. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

export interface Answer {
  status: number
  body: Buffer
  contentType: string
  headers?: Record<string, string>
}

/** A status Node can put on the wire: Incode's custom codes (e.g. 4005) go out as their HTTP class. */
export function wireStatus(status: number): number {
  if (Number.isInteger(status) && status >= 100 && status <= 599) return status
  if (Number.isInteger(status) && status >= 1000 && status <= 5999) return Math.floor(status / 10)
  return 500
}

/** Incode's error body: `{"timestamp","status","error","message","path"}`. */
export function errorAnswer(status: number, message: string, path: string, timestamp: number): Answer {
  const http = wireStatus(status)
  const body = {
    timestamp,
    status,
    error: STATUS_CODES[http] ?? 'Error',
    message,
    path,
  }
  return { status: http, body: Buffer.from(JSON.stringify(body)), contentType: 'application/json' }
}

export function jsonAnswer(value: unknown, status = 200): Answer {
  return { status, body: Buffer.from(JSON.stringify(value)), contentType: 'application/json' }
}

function xmlEscape(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** An S3-style XML error, as object stores answer presigned-URL failures. */
export function s3ErrorAnswer(
  status: number,
  code: string,
  message: string,
  extra: Record<string, string> = {},
): Answer {
  const fields = Object.entries(extra)
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
    .join('')
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${xmlEscape(message)}</Message>${fields}</Error>`
  return { status, body: Buffer.from(body), contentType: 'application/xml' }
}

/** True for requests that come from this machine. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
}
