import type { ScannedEntry } from './flatJson.js'
import { IMAGE_TYPES } from './imageTypes.js'
import type { ImageType } from './imageTypes.js'
import { foldTypes } from './requestedTypes.js'

export interface ChunkImage {
  type: ImageType
  /** The value as JSON text, quotes included, ready to be written out as is. */
  json: Buffer
}

export interface ClassifiedChunk {
  images: ChunkImage[]
  missing: ImageType[]
}

export interface ImageError {
  status: number
  code: string
  message: string
}

export interface MergedImagesResult {
  missing: ImageType[]
  errors: Partial<Record<ImageType, ImageError>>
}

const QUOTE = 0x22

/**
 * The string value with its surrounding quotes. `raw` normally is a subarray of the upstream
 * body lying between two quotes, so a wider view of the same memory is enough (no copy);
 * otherwise (a Buffer built some other way) the quotes are added by copying.
 */
function withQuotes(raw: Buffer): Buffer {
  const start = raw.byteOffset - 1
  const end = raw.byteOffset + raw.length
  if (start >= 0 && end < raw.buffer.byteLength) {
    const wider = Buffer.from(raw.buffer, start, raw.length + 2)
    if (wider[0] === QUOTE && wider[wider.length - 1] === QUOTE) return wider
  }
  return Buffer.concat([Buffer.from('"'), raw, Buffer.from('"')])
}

/**
 * Sorts one upstream answer's entries into images and missing types, for the types that chunk
 * asked for. Absent, `null`, `""` and non-string values all count as missing (Incode leaves the
 * "no image" answer undocumented). Keys that were not requested (unknown fields, other types,
 * `_prevAttempts`) are ignored, so an image is never returned under a type nobody asked for.
 * With duplicate keys, the last one wins, as with JSON.parse.
 *
 * Escaped strings are decoded and re-encoded so the output is canonical JSON (e.g. `\/` in
 * base64 becomes `/`); unescaped ones are passed through as a view of the upstream bytes.
 * Throws SyntaxError if an escaped value is not valid JSON string content.
 */
export function classifyChunk(requested: readonly ImageType[], entries: ScannedEntry[]): ClassifiedChunk {
  const byKey = new Map<string, ScannedEntry>()
  for (const entry of entries) byKey.set(entry.key, entry)

  const images: ChunkImage[] = []
  const missing: ImageType[] = []
  for (const type of foldTypes(requested)) {
    const entry = byKey.get(type)
    if (entry?.kind !== 'string' || entry.raw.length === 0) {
      missing.push(type)
    } else if (!entry.escaped) {
      images.push({ type, json: withQuotes(entry.raw) })
    } else {
      // Non-empty escaped text always decodes to a non-empty string.
      const decoded = JSON.parse(`"${entry.raw.toString('utf8')}"`) as string
      images.push({ type, json: Buffer.from(JSON.stringify(decoded)) })
    }
  }
  return { images, missing }
}

const typeOrder = new Map<ImageType, number>(IMAGE_TYPES.map((type, index) => [type, index]))

function inTypeOrder(types: Iterable<ImageType>): ImageType[] {
  return [...new Set(types)].sort((a, b) => (typeOrder.get(a) ?? 0) - (typeOrder.get(b) ?? 0))
}

/**
 * Streams the gateway's merged answer
 * `{"images":{type: base64, ...},"missing":[type, ...],"errors":{type: {status,code,message}}}`
 * as chunks arrive, so no more than one chunk's images need to be held at a time and the
 * base64 is never parsed or re-stringified.
 *
 * Images appear in the order they were added; `missing` and `errors` in IMAGE_TYPES order.
 * Misuse throws before anything is written for that call: adding a type twice, a type both
 * delivered and listed as missing or failed, a type both missing and failed, any call after
 * finish.
 */
export class MergedImagesWriter {
  readonly #write: (chunk: Buffer | string) => void
  readonly #added = new Set<ImageType>()
  #started = false
  #finished = false
  /** The image being written in pieces, if any. */
  #open: ImageType | undefined

  constructor(write: (chunk: Buffer | string) => void) {
    this.#write = write
  }

  addImage(type: ImageType, json: Buffer): void {
    this.#key(type, 'addImage')
    this.#write(json)
  }

  /**
   * Begins an image whose value is written in pieces as it arrives (`imageBytes`: JSON string
   * content, without quotes) and ended by `closeImage`; nothing else may be written meanwhile.
   */
  openImage(type: ImageType): void {
    this.#key(type, 'openImage')
    this.#write('"')
    this.#open = type
  }

  imageBytes(bytes: Buffer): void {
    if (this.#open === undefined) throw new Error('MergedImagesWriter: imageBytes without openImage')
    this.#write(bytes)
  }

  closeImage(): void {
    if (this.#open === undefined) throw new Error('MergedImagesWriter: closeImage without openImage')
    this.#open = undefined
    this.#write('"')
  }

  /** Writes the separator and `type`'s key, after the checks common to both ways of adding an image. */
  #key(type: ImageType, method: string): void {
    if (this.#finished) throw new Error(`MergedImagesWriter: ${method}(${type}) after finish`)
    if (this.#open !== undefined)
      throw new Error(`MergedImagesWriter: ${method}(${type}) while ${this.#open} is open`)
    if (this.#added.has(type)) throw new Error(`MergedImagesWriter: image ${type} added twice`)
    const separator = this.#added.size === 0 ? '' : ','
    this.#added.add(type)
    this.#start()
    this.#write(`${separator}${JSON.stringify(type)}:`)
  }

  finish(result: MergedImagesResult): void {
    if (this.#finished) throw new Error('MergedImagesWriter: finish called twice')
    if (this.#open !== undefined) throw new Error(`MergedImagesWriter: finish while ${this.#open} is open`)
    const missing = inTypeOrder(result.missing)
    const failed = inTypeOrder(
      (Object.keys(result.errors) as ImageType[]).filter((type) => result.errors[type] !== undefined),
    )
    for (const type of [...missing, ...failed]) {
      if (this.#added.has(type)) {
        throw new Error(`MergedImagesWriter: ${type} was delivered but is also listed as missing or failed`)
      }
    }
    const missingSet = new Set(missing)
    const both = failed.find((type) => missingSet.has(type))
    if (both) throw new Error(`MergedImagesWriter: ${both} is listed both as missing and as failed`)

    const errors: Record<string, ImageError> = {}
    for (const type of failed) {
      const error = result.errors[type]
      if (error) errors[type] = { status: error.status, code: error.code, message: error.message }
    }
    this.#finished = true
    this.#start()
    this.#write(`},"missing":${JSON.stringify(missing)},"errors":${JSON.stringify(errors)}}`)
  }

  #start(): void {
    if (this.#started) return
    this.#started = true
    this.#write('{"images":{')
  }
}
