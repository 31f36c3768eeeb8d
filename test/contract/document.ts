/**
 * The OpenAPI document as a contract a test can hold answers to: its operations, one by one, and
 * a check of an answer (status, media type, headers, body) against what the document says, with
 * Ajv on the document's own JSON Schemas (OpenAPI 3.1 is JSON Schema 2020-12).
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import type { Test } from 'tap'

// ajv-formats is CommonJS: its function is the default export's default under NodeNext.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default

export type Json = Record<string, unknown>

export interface Parameter {
  name: string
  in: 'path' | 'query' | 'header'
  required?: boolean
  example?: unknown
  schema?: Json
}

export interface MediaDoc {
  schema?: Json
  example?: unknown
}

export interface ResponseDoc {
  description: string
  headers?: Record<string, { schema?: Json; description?: string }>
  content?: Record<string, MediaDoc>
}

export interface OperationDoc {
  operationId?: string
  description?: string
  parameters?: Parameter[]
  requestBody?: { required?: boolean; content: Record<string, MediaDoc> }
  security?: Record<string, string[]>[]
  responses: Record<string, ResponseDoc>
}

export interface Document {
  paths: Record<string, Record<string, OperationDoc>>
  components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json> }
  security?: Record<string, string[]>[]
}

export interface Operation {
  method: string
  path: string
  /** operationId, or `METHOD path` when the document lacks one (the test then fails). */
  id: string
  doc: OperationDoc
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options'])

/** Every operation of the document, in its order. */
export function operationsOf(document: Document): Operation[] {
  const out: Operation[] = []
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, doc] of Object.entries(item)) {
      if (!METHODS.has(method)) continue
      out.push({ method: method.toUpperCase(), path, id: doc.operationId ?? `${method} ${path}`, doc })
    }
  }
  return out
}

/** A parameter's example value: its own, its schema's, or its schema's first allowed value. */
export function exampleOf(document: Document, parameter: Parameter): unknown {
  if (parameter.example !== undefined) return parameter.example
  const schema = resolve(document, parameter.schema)
  const examples = schema?.examples
  if (Array.isArray(examples) && examples.length > 0) return examples[0]
  const values = schema?.enum
  return Array.isArray(values) ? values[0] : undefined
}

function resolve(document: Document, schema: Json | undefined): Json | undefined {
  const ref = schema?.$ref
  if (typeof ref !== 'string') return schema
  const name = ref.replace('#/components/schemas/', '')
  return document.components.schemas[name]
}

export interface Answer {
  status: number
  headers: Record<string, string | string[] | number | undefined>
  body: string
}

/** Checks answers against the document; validators are compiled once per schema. */
export class ContractChecker {
  readonly #ajv = new Ajv2020({ strict: false, allErrors: true })
  readonly #validators = new Map<string, ValidateFunction>()

  constructor(readonly document: Document) {
    addFormats(this.#ajv)
  }

  #validator(key: string, schema: Json): ValidateFunction {
    let validate = this.#validators.get(key)
    if (!validate) {
      // The document's components travel with each schema, so that its `#/components/…` refs resolve.
      validate = this.#ajv.compile({ ...schema, components: this.document.components })
      this.#validators.set(key, validate)
    }
    return validate
  }

  /** Asserts that `answer` is one the document lists for `operation`, in every part. */
  check(t: Test, operation: Operation, answer: Answer, what: string): void {
    const label = `${operation.id}, ${what}`
    const response = operation.doc.responses[String(answer.status)] ?? operation.doc.responses.default
    if (!response) {
      t.fail(`${label}: status ${answer.status} is documented (body: ${answer.body.slice(0, 200)})`)
      return
    }
    t.ok(answer.headers['x-request-id'], `${label}: X-Request-Id sent`)
    this.#checkHeaders(t, response, answer, label)
    if (!response.content) {
      t.equal(answer.body, '', `${label}: ${answer.status} has no body, as documented`)
      return
    }
    const contentType = String(answer.headers['content-type'] ?? '')
    const mediaType = contentType.split(';')[0]?.trim() ?? ''
    const media = response.content[mediaType]
    t.ok(
      media,
      `${label}: ${answer.status} content type ${mediaType} is documented (${Object.keys(response.content).join(', ')})`,
    )
    if (!media?.schema || !/json$/.test(mediaType)) return
    let body: unknown
    try {
      body = JSON.parse(answer.body)
    } catch {
      t.fail(`${label}: ${answer.status} body is JSON`)
      return
    }
    const validate = this.#validator(`${operation.id} ${answer.status} ${mediaType}`, media.schema)
    const valid = validate(body)
    t.ok(
      valid,
      `${label}: ${answer.status} body matches the documented schema${valid ? '' : `: ${this.#ajv.errorsText(validate.errors)}`}`,
    )
  }

  /** Asserts that a documented example is valid against the schema it illustrates. */
  checkExample(t: Test, where: string, media: MediaDoc): void {
    if (!media.schema) return
    const validate = this.#validator(`example ${where}`, media.schema)
    const valid = validate(media.example)
    t.ok(
      valid,
      `${where}: the example matches its schema${valid ? '' : `: ${this.#ajv.errorsText(validate.errors)}`}`,
    )
  }

  /**
   * Documented headers: on a success every one is sent (Retry-After only where it says so); on an
   * error, those sent match their schema.
   */
  #checkHeaders(t: Test, response: ResponseDoc, answer: Answer, label: string): void {
    for (const [name, header] of Object.entries(response.headers ?? {})) {
      const value = answer.headers[name.toLowerCase()]
      if (value === undefined) {
        if (answer.status < 300) t.fail(`${label}: documented header ${name} is sent`)
        continue
      }
      const schema = header.schema ?? {}
      const text = String(value)
      const typed = schema.type === 'integer' ? (/^-?\d+$/.test(text) ? Number(text) : text) : text
      const validate = this.#validator(`header ${JSON.stringify(schema)}`, schema)
      t.ok(validate(typed), `${label}: header ${name}: ${text} matches its documented schema`)
    }
  }
}
