import {
  BACKSLASH,
  CLOSE_BRACE,
  CLOSE_BRACKET,
  COLON,
  COMMA,
  FlatJsonError,
  OPEN_BRACE,
  OPEN_BRACKET,
  QUOTE,
  type ScannedEntry,
  scanFlatJsonObject,
} from './flatJson.js'

/**
 * The streaming form of scanFlatJsonObject: the same JSON object (Incode's base64 answer), fed
 * in pieces as they arrive from the socket. It finds each top-level entry's boundaries in the
 * byte stream and hands a string value on while it is still arriving, as views of the pieces it
 * was given (no copy, never decoded), so a consumer can forward an image before its last byte is
 * in. Only what is small is held: a key until its closing quote, a non-string value (number,
 * literal, object, array) until its end.
 *
 * It accepts and refuses exactly what scanFlatJsonObject does, whatever the split points (the
 * property test checks it against the whole-body scanner): the same structural checks, escape
 * sequences in string values checked as they pass, keys decoded with JSON.parse, non-string
 * values checked by the whole-body scanner itself once complete. A refusal throws FlatJsonError
 * (positions count bytes from the start of the stream; messages may differ from the whole-body
 * scanner's). After a throw the scanner is spent.
 */
export type FlatJsonEvent =
  /** A string value begins, under this (decoded) key. */
  | { type: 'string-start'; key: string }
  /** Bytes of that string value, between its quotes, still JSON-escaped: a view of a piece pushed. */
  | { type: 'string-data'; key: string; bytes: Buffer }
  /** The string value ended; `escaped`: it held a backslash, so it must be decoded before use as text. */
  | { type: 'string-end'; key: string; escaped: boolean }
  /** A null or non-string value, whole. */
  | { type: 'value'; entry: Exclude<ScannedEntry, { kind: 'string' }> }

const enum State {
  BeforeObject,
  AfterOpen,
  BeforeKey,
  Key,
  AfterKey,
  BeforeValue,
  StringValue,
  OtherValue,
  AfterValue,
  Done,
}

/** Escape state inside a string: none, just after a backslash, or this many \u hex digits still due. */
const NO_ESCAPE = -1
const AFTER_BACKSLASH = -2

const SIMPLE_ESCAPES = new Set([QUOTE, BACKSLASH, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74])

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09
}

function isHex(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
}

/** Bytes a number or literal is made of: where a scalar value at the top level ends. */
function isScalarByte(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) ||
    (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a) ||
    byte === 0x2b ||
    byte === 0x2d ||
    byte === 0x2e
  )
}

function describe(byte: number): string {
  return byte >= 0x20 && byte < 0x7f
    ? `unexpected '${String.fromCharCode(byte)}'`
    : `unexpected byte 0x${byte.toString(16)}`
}

const VALUE_PREFIX = Buffer.from('{"":')
const VALUE_SUFFIX = Buffer.from('}')

/**
 * The next occurrence of a byte in the current piece, remembered: positions only move forward,
 * so each byte of a piece is searched at most once per byte kind, however many strings and
 * escapes it holds.
 */
class NextByte {
  readonly #byte: number
  #piece: Buffer | undefined
  #from = 0
  #found = -1

  constructor(byte: number) {
    this.#byte = byte
  }

  at(piece: Buffer, position: number): number {
    if (piece !== this.#piece || position < this.#from || (this.#found !== -1 && this.#found < position)) {
      this.#piece = piece
      this.#from = position
      this.#found = piece.indexOf(this.#byte, position)
    }
    return this.#found
  }
}

export class FlatJsonStream {
  readonly #quotes = new NextByte(QUOTE)
  readonly #backslashes = new NextByte(BACKSLASH)
  #state = State.BeforeObject
  /** Bytes of the stream before the current piece. */
  #offset = 0
  #failed = false
  #ended = false
  /** Key bytes so far (quotes included), and the decoded key of the entry being read. */
  #keyParts: Buffer[] = []
  #key = ''
  /** Escape state of the string being read (key or value), and whether the value held one. */
  #escape = NO_ESCAPE
  #escaped = false
  /** A non-string value being read: its pieces, its start, bracket depth, and string state within it. */
  #otherParts: Buffer[] = []
  #otherStart = 0
  #depth = 0
  #inString = false

  /** Scans one more piece of the stream; returns what it completed or began, in stream order. */
  push(piece: Buffer): FlatJsonEvent[] {
    if (this.#failed) throw new Error('FlatJsonStream: push after a refusal')
    if (this.#ended) throw new Error('FlatJsonStream: push after end')
    const events: FlatJsonEvent[] = []
    try {
      this.#scan(piece, events)
    } catch (err) {
      this.#failed = true
      throw err
    }
    this.#offset += piece.length
    return events
  }

  /** The stream is over: throws unless it held exactly one complete object (and whitespace). */
  end(): void {
    if (this.#failed) throw new Error('FlatJsonStream: end after a refusal')
    this.#ended = true
    // A value still open here (even a complete-looking scalar) leaves the object unterminated.
    if (this.#state !== State.Done) {
      this.#failed = true
      throw new FlatJsonError(
        this.#state === State.BeforeObject && this.#offset === 0 ? 'empty input' : 'unexpected end of input',
        this.#offset,
      )
    }
  }

  #fail(message: string, at: number): never {
    throw new FlatJsonError(message, this.#offset + at)
  }

  #scan(piece: Buffer, events: FlatJsonEvent[]): void {
    let at = 0
    const n = piece.length
    while (at < n) {
      switch (this.#state) {
        case State.BeforeObject:
        case State.AfterOpen:
        case State.BeforeKey:
        case State.AfterKey:
        case State.BeforeValue:
        case State.AfterValue:
        case State.Done: {
          const byte = piece[at] as number
          if (isWhitespace(byte)) {
            at++
            continue
          }
          at = this.#structural(piece, at, byte, events)
          continue
        }
        case State.Key:
          at = this.#keyBytes(piece, at)
          continue
        case State.StringValue:
          at = this.#valueBytes(piece, at, events)
          continue
        case State.OtherValue:
          at = this.#otherBytes(piece, at, events)
          continue
      }
    }
  }

  /** One non-whitespace byte outside strings and values; returns the next position. */
  #structural(piece: Buffer, at: number, byte: number, events: FlatJsonEvent[]): number {
    switch (this.#state) {
      case State.BeforeObject:
        if (byte !== OPEN_BRACE) this.#fail(`expected a JSON object, ${describe(byte)}`, at)
        this.#state = State.AfterOpen
        return at + 1
      case State.AfterOpen:
        if (byte === CLOSE_BRACE) {
          this.#state = State.Done
          return at + 1
        }
        return this.#startKey(at, byte)
      case State.BeforeKey:
        return this.#startKey(at, byte)
      case State.AfterKey:
        if (byte !== COLON) this.#fail(`expected ':', ${describe(byte)}`, at)
        this.#state = State.BeforeValue
        return at + 1
      case State.BeforeValue:
        if (byte === QUOTE) {
          this.#state = State.StringValue
          this.#escape = NO_ESCAPE
          this.#escaped = false
          events.push({ type: 'string-start', key: this.#key })
          return at + 1
        }
        this.#state = State.OtherValue
        this.#otherParts = []
        this.#otherStart = this.#offset + at
        this.#depth = 0
        this.#inString = false
        this.#escape = NO_ESCAPE
        return at
      case State.AfterValue:
        if (byte === CLOSE_BRACE) {
          this.#state = State.Done
          return at + 1
        }
        if (byte !== COMMA) this.#fail(`expected ',' or '}', ${describe(byte)}`, at)
        this.#state = State.BeforeKey
        return at + 1
      default:
        return this.#fail(`trailing data after the object, ${describe(byte)}`, at)
    }
  }

  #startKey(at: number, byte: number): number {
    if (byte !== QUOTE) this.#fail(`expected a key, ${describe(byte)}`, at)
    this.#state = State.Key
    this.#keyParts = []
    this.#escape = NO_ESCAPE
    return at
  }

  /**
   * Walks string bytes from `from` (the opening quote behind), checking escapes; returns the
   * index of the closing quote in `piece`, or -1 when the piece ends inside the string.
   */
  #stringEnd(piece: Buffer, from: number): number {
    let at = from
    const n = piece.length
    while (at < n) {
      if (this.#escape === NO_ESCAPE) {
        // The fast path: native searches for the next quote and backslash.
        const quote = this.#quotes.at(piece, at)
        const backslash = this.#backslashes.at(piece, at)
        if (backslash === -1 || (quote !== -1 && quote < backslash)) return quote
        this.#escaped = true
        this.#escape = AFTER_BACKSLASH
        at = backslash + 1
      } else if (this.#escape === AFTER_BACKSLASH) {
        const kind = piece[at] as number
        if (kind === 0x75 /* u */) this.#escape = 4
        else if (SIMPLE_ESCAPES.has(kind)) this.#escape = NO_ESCAPE
        else this.#fail('invalid escape', at - 1)
        at++
      } else {
        if (!isHex(piece[at] as number)) this.#fail('invalid \\u escape', at)
        this.#escape--
        if (this.#escape === 0) this.#escape = NO_ESCAPE
        at++
      }
    }
    return -1
  }

  #keyBytes(piece: Buffer, at: number): number {
    // The key's opening quote is at `at` when the key starts in this piece.
    const startsHere = this.#keyParts.length === 0
    const from = startsHere ? at + 1 : at
    const close = this.#stringEnd(piece, from)
    if (close === -1) {
      this.#keyParts.push(piece.subarray(at))
      return piece.length
    }
    this.#keyParts.push(piece.subarray(at, close + 1))
    const text = Buffer.concat(this.#keyParts).toString('utf8')
    this.#keyParts = []
    try {
      this.#key = JSON.parse(text) as string
    } catch (error) {
      this.#fail(`invalid key (${(error as Error).message})`, close)
    }
    this.#state = State.AfterKey
    return close + 1
  }

  #valueBytes(piece: Buffer, at: number, events: FlatJsonEvent[]): number {
    const close = this.#stringEnd(piece, at)
    const end = close === -1 ? piece.length : close
    if (end > at) events.push({ type: 'string-data', key: this.#key, bytes: piece.subarray(at, end) })
    if (close === -1) return piece.length
    events.push({ type: 'string-end', key: this.#key, escaped: this.#escaped })
    this.#state = State.AfterValue
    return close + 1
  }

  /** A non-string value: held until it ends, then judged by the whole-body scanner. */
  #otherBytes(piece: Buffer, at: number, events: FlatJsonEvent[]): number {
    let i = at
    const n = piece.length
    let ended = false
    while (i < n) {
      const byte = piece[i] as number
      if (this.#inString) {
        if (this.#escape === AFTER_BACKSLASH) this.#escape = NO_ESCAPE
        else if (byte === BACKSLASH) this.#escape = AFTER_BACKSLASH
        else if (byte === QUOTE) this.#inString = false
        i++
        continue
      }
      if (this.#depth === 0 && !isScalarByte(byte) && byte !== OPEN_BRACE && byte !== OPEN_BRACKET) {
        // A scalar ends before this byte; so does an empty value (a refusal, below).
        ended = true
        break
      }
      if (byte === OPEN_BRACE || byte === OPEN_BRACKET) this.#depth++
      else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) this.#depth--
      else if (byte === QUOTE) this.#inString = true
      i++
      if (this.#depth === 0 && (byte === CLOSE_BRACE || byte === CLOSE_BRACKET)) {
        ended = true
        break
      }
      if (this.#depth < 0) {
        ended = true
        break
      }
    }
    if (i > at) this.#otherParts.push(piece.subarray(at, i))
    if (!ended) return n
    const raw = Buffer.concat(this.#otherParts)
    this.#otherParts = []
    events.push({ type: 'value', entry: this.#judgeOther(raw) })
    this.#state = State.AfterValue
    return i
  }

  #judgeOther(raw: Buffer): Exclude<ScannedEntry, { kind: 'string' }> {
    let entries: ScannedEntry[]
    try {
      entries = scanFlatJsonObject(Buffer.concat([VALUE_PREFIX, raw, VALUE_SUFFIX]))
    } catch (err) {
      const position = err instanceof FlatJsonError ? err.position - VALUE_PREFIX.length : 0
      const message = err instanceof Error ? err.message.replace(/ at byte \d+$/, '') : 'invalid value'
      throw new FlatJsonError(message, this.#otherStart + Math.max(0, position))
    }
    const entry = entries[0]
    if (entries.length !== 1 || !entry || entry.kind === 'string')
      throw new FlatJsonError('invalid value', this.#otherStart)
    return entry.kind === 'null' ? { key: this.#key, kind: 'null' } : { key: this.#key, kind: 'other', raw }
  }
}
