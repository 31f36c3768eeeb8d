import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Problem } from '../../schemas.js'

/** What Node's HTTP parser refused, and what the caller should do about it. */
function answerFor(code: string | undefined): { status: number; code: string; detail: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'HEADERS_TOO_LARGE',
        detail:
          'The request line and headers together exceed the 16 KB allowed: shorten the URL or the headers',
      }
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, code: 'REQUEST_TIMEOUT', detail: 'The request was not received in time' }
    default:
      return { status: 400, code: 'BAD_REQUEST', detail: 'The request is not valid HTTP/1.1' }
  }
}

/**
 * Fastify's `clientErrorHandler`: requests Node's HTTP parser refuses before Fastify sees them (a
 * 100k-character URL, malformed HTTP) are answered in problem+json like every other refusal,
 * instead of Node's or Fastify's bare answer. No request id exists yet: a fresh one is made.
 * The error's `rawPacket` holds the request's bytes, credentials included: it is never logged.
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody to answer (https://nodejs.org/api/http.html#event-clienterror).
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const answer = answerFor(err.code)
  this.log.debug({ code: err.code, status: answer.status }, 'request refused by the HTTP parser')
  if (socket.writable) {
    const title = STATUS_CODES[answer.status] ?? 'Bad Request'
    const problem: Problem = {
      type: `urn:problem:${answer.code}`,
      title,
      status: answer.status,
      code: answer.code,
      detail: answer.detail,
      requestId: randomUUID(),
    }
    const body = JSON.stringify(problem)
    socket.write(
      `HTTP/1.1 ${answer.status} ${title}\r\n` +
        'content-type: application/problem+json; charset=utf-8\r\n' +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        'cache-control: no-store\r\n' +
        'x-content-type-options: nosniff\r\n' +
        'connection: close\r\n' +
        '\r\n' +
        body,
    )
  }
  socket.destroy()
}
