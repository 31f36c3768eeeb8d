/**
 * A scanner for one JSON object whose values may be huge strings (Incode's base64 answers).
 *
 * It finds each top-level entry's value without decoding it: strings are located with
 * `Buffer.indexOf` (native memchr) for quotes and backslashes, so an 8 MB base64 value costs
 * one native pass rather than a JavaScript loop per character, and its bytes are returned as a
 * subarray of the body, not a copy.
 *
 * Validation: the structure (objects, arrays, commas, colons, literals, numbers, escape
 * sequences, nesting, trailing bytes) is fully checked and anything else throws FlatJsonError.
 * Keys are decoded with JSON.parse, so they are checked completely. String VALUES are not
 * checked for raw control characters or malformed UTF-8: doing so would cost a per-byte pass
 * over megabytes, and the upstream is a JSON serializer that does not emit either.
 */

export type ScannedEntry =
  | {
      key: string
      kind: 'string'
      /** The bytes between the quotes, still JSON-escaped; a subarray of the body (no copy). */
      raw: Buffer
      /** `raw` contains a backslash, so it must be decoded before use as plain text. */
      escaped: boolean
    }
  | { key: string; kind: 'null' }
  | {
      key: string
      kind: 'other'
      /** The JSON text of a number, boolean, object or array value; a subarray of the body. */
      raw: Buffer
    }

export class FlatJsonError extends Error {
  /** Byte offset in the body where the problem was found. */
  readonly position: number

  constructor(message: string, position: number) {
    super(`${message} at byte ${position}`)
    this.name = 'FlatJsonError'
    this.position = position
  }
}

/** Byte values of JSON's structural characters (shared with the streaming scanner). */
export const QUOTE = 0x22
export const BACKSLASH = 0x5c
export const OPEN_BRACE = 0x7b
export const CLOSE_BRACE = 0x7d
export const OPEN_BRACKET = 0x5b
export const CLOSE_BRACKET = 0x5d
export const COMMA = 0x2c
export const COLON = 0x3a
const MINUS = 0x2d

/** Deeper nesting than this in a value is refused rather than risking the call stack. */
const MAX_DEPTH = 256

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/

const LITERALS = {
  t: Buffer.from('true'),
  f: Buffer.from('false'),
  n: Buffer.from('null'),
} as const

function isWhitespace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09
}

function isHex(byte: number | undefined): boolean {
  return (
    byte !== undefined &&
    ((byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66))
  )
}

function isNumberByte(byte: number | undefined): boolean {
  return (
    byte !== undefined &&
    ((byte >= 0x30 && byte <= 0x39) ||
      byte === 0x2b ||
      byte === MINUS ||
      byte === 0x2e ||
      byte === 0x45 ||
      byte === 0x65)
  )
}

function describe(body: Buffer, position: number): string {
  const byte = body[position]
  if (byte === undefined) return 'unexpected end of input'
  return byte >= 0x20 && byte < 0x7f
    ? `unexpected '${String.fromCharCode(byte)}'`
    : `unexpected byte 0x${byte.toString(16)}`
}

function skipWhitespace(body: Buffer, position: number): number {
  let at = position
  while (isWhitespace(body[at])) at++
  return at
}

function expect(body: Buffer, position: number, byte: number, what: string): void {
  if (body[position] !== byte)
    throw new FlatJsonError(`expected ${what}, ${describe(body, position)}`, position)
}

/**
 * Finds the next quote or backslash at or after a position, remembering the last answer: the
 * scan only moves forward, so each byte of the body is searched at most once per byte kind,
 * by native code, however many strings and escapes there are.
 */
class NextByte {
  readonly #body: Buffer
  readonly #byte: number
  /** The last search started here (Infinity: no search yet) and found this (-1: none after it). */
  #from = Infinity
  #found = -1

  constructor(body: Buffer, byte: number) {
    this.#body = body
    this.#byte = byte
  }

  at(position: number): number {
    if (position < this.#from || (this.#found !== -1 && this.#found < position)) {
      this.#from = position
      this.#found = this.#body.indexOf(this.#byte, position)
    }
    return this.#found
  }
}

interface Scanner {
  body: Buffer
  quotes: NextByte
  backslashes: NextByte
}

/**
 * Scans the string whose opening quote is at `open`; returns the index of its closing quote
 * and whether it contains escapes.
 */
function scanString(scanner: Scanner, open: number): { close: number; escaped: boolean } {
  const { body } = scanner
  let at = open + 1
  let escaped = false
  for (;;) {
    const quote = scanner.quotes.at(at)
    if (quote === -1) throw new FlatJsonError('unterminated string', open)
    const backslash = scanner.backslashes.at(at)
    if (backslash === -1 || backslash > quote) return { close: quote, escaped }
    escaped = true
    const kind = body[backslash + 1]
    if (kind === 0x75 /* u */) {
      for (let i = 2; i < 6; i++) {
        if (!isHex(body[backslash + i])) {
          if (backslash + i >= body.length) throw new FlatJsonError('unterminated string', open)
          throw new FlatJsonError('invalid \\u escape', backslash)
        }
      }
      at = backslash + 6
    } else if (
      kind === QUOTE ||
      kind === BACKSLASH ||
      kind === 0x2f /* / */ ||
      kind === 0x62 /* b */ ||
      kind === 0x66 /* f */ ||
      kind === 0x6e /* n */ ||
      kind === 0x72 /* r */ ||
      kind === 0x74 /* t */
    ) {
      at = backslash + 2
    } else if (kind === undefined) {
      throw new FlatJsonError('unterminated string', open)
    } else {
      throw new FlatJsonError('invalid escape', backslash)
    }
  }
}

function skipLiteral(body: Buffer, position: number): number {
  const first = body[position]
  const literal =
    first === 0x74 ? LITERALS.t : first === 0x66 ? LITERALS.f : first === 0x6e ? LITERALS.n : undefined
  if (!literal) throw new FlatJsonError(`expected a value, ${describe(body, position)}`, position)
  for (let i = 0; i < literal.length; i++) {
    if (body[position + i] !== literal[i]) {
      throw new FlatJsonError(`invalid literal, ${describe(body, position + i)}`, position + i)
    }
  }
  return position + literal.length
}

function skipNumber(body: Buffer, position: number): number {
  let end = position
  while (isNumberByte(body[end])) end++
  if (!NUMBER.test(body.toString('latin1', position, end))) {
    throw new FlatJsonError('invalid number', position)
  }
  return end
}

/** Returns the index just past the JSON value starting at `position` (no leading whitespace). */
function skipValue(scanner: Scanner, position: number, depth: number): number {
  const { body } = scanner
  const byte = body[position]
  if (byte === QUOTE) return scanString(scanner, position).close + 1
  if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
    if (depth > MAX_DEPTH) throw new FlatJsonError('nesting too deep', position)
    return byte === OPEN_BRACE ? skipObject(scanner, position, depth) : skipArray(scanner, position, depth)
  }
  if (byte === MINUS || (byte !== undefined && byte >= 0x30 && byte <= 0x39))
    return skipNumber(body, position)
  return skipLiteral(body, position)
}

function skipObject(scanner: Scanner, open: number, depth: number): number {
  const { body } = scanner
  let at = skipWhitespace(body, open + 1)
  if (body[at] === CLOSE_BRACE) return at + 1
  for (;;) {
    expect(body, at, QUOTE, 'a key')
    at = skipWhitespace(body, scanString(scanner, at).close + 1)
    expect(body, at, COLON, "':'")
    at = skipWhitespace(body, skipValue(scanner, skipWhitespace(body, at + 1), depth + 1))
    if (body[at] === CLOSE_BRACE) return at + 1
    expect(body, at, COMMA, "',' or '}'")
    at = skipWhitespace(body, at + 1)
  }
}

function skipArray(scanner: Scanner, open: number, depth: number): number {
  const { body } = scanner
  let at = skipWhitespace(body, open + 1)
  if (body[at] === CLOSE_BRACKET) return at + 1
  for (;;) {
    at = skipWhitespace(body, skipValue(scanner, at, depth + 1))
    if (body[at] === CLOSE_BRACKET) return at + 1
    expect(body, at, COMMA, "',' or ']'")
    at = skipWhitespace(body, at + 1)
  }
}

function decodeKey(body: Buffer, open: number, close: number): string {
  try {
    return JSON.parse(body.toString('utf8', open, close + 1)) as string
  } catch (error) {
    throw new FlatJsonError(`invalid key (${(error as Error).message})`, open)
  }
}

/**
 * Lists the entries of the JSON object in `body`, in document order (duplicate keys included:
 * a consumer that wants "last wins" takes the last). Throws FlatJsonError unless the whole
 * body is exactly one JSON object, optionally surrounded by whitespace.
 */
export function scanFlatJsonObject(body: Buffer): ScannedEntry[] {
  const scanner: Scanner = {
    body,
    quotes: new NextByte(body, QUOTE),
    backslashes: new NextByte(body, BACKSLASH),
  }
  const entries: ScannedEntry[] = []
  let at = skipWhitespace(body, 0)
  if (body[at] !== OPEN_BRACE) {
    throw new FlatJsonError(
      body[at] === undefined ? 'empty input' : `expected a JSON object, ${describe(body, at)}`,
      at,
    )
  }
  at = skipWhitespace(body, at + 1)
  if (body[at] === CLOSE_BRACE) {
    at++
  } else {
    for (;;) {
      expect(body, at, QUOTE, 'a key')
      const keyString = scanString(scanner, at)
      const key = decodeKey(body, at, keyString.close)
      at = skipWhitespace(body, keyString.close + 1)
      expect(body, at, COLON, "':'")
      at = skipWhitespace(body, at + 1)

      const first = body[at]
      if (first === QUOTE) {
        const { close, escaped } = scanString(scanner, at)
        entries.push({ key, kind: 'string', raw: body.subarray(at + 1, close), escaped })
        at = close + 1
      } else if (first === LITERALS.n[0]) {
        at = skipLiteral(body, at)
        entries.push({ key, kind: 'null' })
      } else {
        const end = skipValue(scanner, at, 1)
        entries.push({ key, kind: 'other', raw: body.subarray(at, end) })
        at = end
      }

      at = skipWhitespace(body, at)
      if (body[at] === CLOSE_BRACE) {
        at++
        break
      }
      expect(body, at, COMMA, "',' or '}'")
      at = skipWhitespace(body, at + 1)
    }
  }
  at = skipWhitespace(body, at)
  if (at !== body.length) throw new FlatJsonError(`trailing data after the object, ${describe(body, at)}`, at)
  return entries
}
