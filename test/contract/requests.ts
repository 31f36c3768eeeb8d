/**
 * Requests built from the document alone: the valid one from its examples and security schemes,
 * the invalid ones from what it declares (credentials, path parameters, bodies). A new operation
 * is called as soon as it is documented; one the document does not say enough about to call is a
 * failure, not a silent skip.
 */
import type { FastifyInstance } from 'fastify'
import { DEMO_INTERVIEW_ID } from '../../src/schemas.js'
import type { Simulator } from '../../src/simulator/index.js'
import { PARTNER_KEY } from '../helpers/build.js'
import { exampleOf, type Answer, type Document, type Operation } from './document.js'

export interface Request {
  method: string
  url: string
  headers: Record<string, string>
  payload?: string
}

export interface Case {
  name: string
  request: Request
  /** The status the case must get. */
  status: number
}

/** A credential the service accepts, per security scheme of the document. */
export function credentials(simulator: Simulator): Record<string, string> {
  return {
    apiKey: PARTNER_KEY,
    sessionToken: simulator.sessionToken(DEMO_INTERVIEW_ID),
    incodeToken: simulator.sessionToken(DEMO_INTERVIEW_ID),
  }
}

/** The headers carrying the operation's first security requirement, or why they cannot be built. */
function securityHeaders(
  document: Document,
  operation: Operation,
  known: Record<string, string>,
  value?: string,
): Record<string, string> | string {
  const requirement = (operation.doc.security ?? document.security ?? [])[0] ?? {}
  const headers: Record<string, string> = {}
  for (const scheme of Object.keys(requirement)) {
    const declared = document.components.securitySchemes[scheme]
    const credential = known[scheme]
    if (declared?.in !== 'header' || typeof declared.name !== 'string' || credential === undefined) {
      return `no credential known for security scheme ${scheme}`
    }
    headers[declared.name.toLowerCase()] = value ?? credential
  }
  return headers
}

/** The documented example request: parameters and body from the examples, a valid credential. */
export function validRequest(
  document: Document,
  operation: Operation,
  known: Record<string, string>,
  pathValues: Record<string, string> = {},
): Request | string {
  let url = operation.path
  const query = new URLSearchParams()
  const headers: Record<string, string> = {}
  for (const parameter of operation.doc.parameters ?? []) {
    const example = pathValues[parameter.name] ?? exampleOf(document, parameter)
    if (example === undefined) {
      if (parameter.required === true) return `no example for the ${parameter.in} parameter ${parameter.name}`
      continue
    }
    const text = typeof example === 'string' ? example : JSON.stringify(example)
    if (parameter.in === 'path') url = url.replace(`{${parameter.name}}`, encodeURIComponent(text))
    else if (parameter.in === 'query') query.set(parameter.name, text)
    else headers[parameter.name.toLowerCase()] = text
  }
  const security = securityHeaders(document, operation, known)
  if (typeof security === 'string') return security
  const request: Request = {
    method: operation.method,
    url: query.size > 0 ? `${url}?${query.toString()}` : url,
    headers: { ...headers, ...security },
  }
  const body = operation.doc.requestBody?.content['application/json']
  if (body) {
    if (body.example === undefined) return 'no example for the request body'
    request.headers['content-type'] = 'application/json'
    request.payload = JSON.stringify(body.example)
  }
  return request
}

/** Requests the document says must be refused, each with the status it documents for them. */
export function invalidCases(
  document: Document,
  operation: Operation,
  valid: Request,
  options: { bodyLimitBytes: number },
): Case[] {
  const cases: Case[] = []
  const security = securityHeaders(document, operation, {}, 'not-a-valid-credential')
  if (typeof security !== 'string' && Object.keys(security).length > 0) {
    const without = { ...valid.headers }
    for (const name of Object.keys(security)) Reflect.deleteProperty(without, name)
    cases.push({ name: 'no credential', request: { ...valid, headers: without }, status: 401 })
    cases.push({
      name: 'an unknown credential',
      request: { ...valid, headers: { ...valid.headers, ...security } },
      status: 401,
    })
  }
  for (const parameter of operation.doc.parameters ?? []) {
    if (parameter.in !== 'path') continue
    const example = String(exampleOf(document, parameter))
    const url = valid.url.replace(`/${encodeURIComponent(example)}`, `/${encodeURIComponent('not valid!')}`)
    cases.push({ name: `an invalid ${parameter.name}`, request: { ...valid, url }, status: 400 })
  }
  const json = { ...valid.headers, 'content-type': 'application/json' }
  if (operation.doc.requestBody?.required === true) {
    const { 'content-type': _type, ...headers } = valid.headers
    cases.push({
      name: 'no body where the document requires one',
      request: { method: valid.method, url: valid.url, headers },
      status: 400,
    })
  }
  if (operation.doc.requestBody) {
    cases.push(
      {
        name: 'a misspelt image type',
        request: { ...valid, headers: json, payload: '{"images":["selfy"]}' },
        status: 400,
      },
      {
        name: 'images as a string, not a list',
        request: { ...valid, headers: json, payload: '{"images":"selfie"}' },
        status: 400,
      },
      {
        name: 'a body that is not JSON',
        request: { ...valid, headers: json, payload: '{"images":' },
        status: 400,
      },
      {
        name: 'a text/plain body',
        request: { ...valid, headers: { ...json, 'content-type': 'text/plain' }, payload: 'selfie' },
        status: 415,
      },
      {
        name: 'a body over the size limit',
        request: {
          ...valid,
          headers: json,
          payload: JSON.stringify({ images: ['selfie'], padding: 'x'.repeat(options.bodyLimitBytes) }),
        },
        status: 413,
      },
    )
  } else if (operation.method !== 'GET') {
    cases.push({
      name: 'a body where the document takes none',
      request: { ...valid, headers: json, payload: '{"images":["selfie"]}' },
      status: 400,
    })
  }
  return cases
}

export async function send(app: FastifyInstance, request: Request): Promise<Answer> {
  const res = await app.inject({
    method: request.method as 'GET',
    url: request.url,
    headers: request.headers,
    ...(request.payload === undefined ? {} : { payload: request.payload }),
  })
  return { status: res.statusCode, headers: res.headers, body: res.body }
}
