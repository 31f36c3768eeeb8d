import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import t from 'tap'
import { FlatJsonError, scanFlatJsonObject, type ScannedEntry } from '../../src/domain/flatJson.js'
import { FlatJsonStream } from '../../src/domain/flatJsonStream.js'

/** An entry as both scanners can report it: the raw value as text, for deep comparison. */
interface Seen {
  key: string
  kind: ScannedEntry['kind']
  raw?: string
  escaped?: boolean
}

function fromWhole(body: Buffer): Seen[] | 'refused' {
  let entries: ScannedEntry[]
  try {
    entries = scanFlatJsonObject(body)
  } catch (err) {
    if (!(err instanceof FlatJsonError)) throw err
    return 'refused'
  }
  return entries.map((e) =>
    e.kind === 'string'
      ? { key: e.key, kind: e.kind, raw: e.raw.toString('latin1'), escaped: e.escaped }
      : e.kind === 'other'
        ? { key: e.key, kind: e.kind, raw: e.raw.toString('latin1') }
        : { key: e.key, kind: e.kind },
  )
}

/** Feeds `body` cut at `cuts` (taken modulo its length + 1) and collects the entries from the events; 'refused' on FlatJsonError. */
function fromStream(body: Buffer, cuts: readonly number[]): Seen[] | 'refused' {
  const stream = new FlatJsonStream()
  const seen: Seen[] = []
  let open: { key: string; parts: Buffer[] } | undefined
  const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b)
  let from = 0
  try {
    for (const to of [...points, body.length]) {
      for (const event of stream.push(body.subarray(from, to))) {
        if (event.type === 'string-start') open = { key: event.key, parts: [] }
        else if (event.type === 'string-data') open?.parts.push(Buffer.from(event.bytes))
        else if (event.type === 'string-end') {
          seen.push({
            key: event.key,
            kind: 'string',
            raw: Buffer.concat(open?.parts ?? []).toString('latin1'),
            escaped: event.escaped,
          })
          open = undefined
        } else {
          const e = event.entry
          seen.push(e.kind === 'other' ? { key: e.key, kind: e.kind, raw: e.raw.toString('latin1') } : e)
        }
      }
      from = to
    }
    stream.end()
  } catch (err) {
    if (!(err instanceof FlatJsonError)) throw err
    return 'refused'
  }
  return seen
}

// ---- generated bodies ---------------------------------------------------------------------------

const base64 = fc.stringMatching(/^[A-Za-z0-9+/]{0,300}={0,2}$/)
const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    fc.string({ unit: 'binary' }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 5 }), tie('value'), { maxKeys: 4 }),
  ),
})).value

/** A value's JSON text, with base64 as Incode sends it, sometimes with `/` escaped as `\/`. */
const valueText = fc.oneof(
  base64.map((b) => JSON.stringify(b)),
  base64.map((b) => JSON.stringify(b).replaceAll('/', '\\/')),
  fc.string({ unit: 'binary' }).map((s) => JSON.stringify(s)),
  json.map((v) => JSON.stringify(v)),
  fc.constantFrom('null', 'true', 'false', '0', '-1.5e3', '""', '{}', '[]'),
)
const whitespace = fc.stringMatching(/^[ \n\r\t]{0,2}$/)
const keyText = fc
  .oneof(
    fc.constantFrom('selfie', 'document', 'croppedFace', 'selfie_prevAttempts', '__proto__', ''),
    fc.string({ unit: 'binary', maxLength: 8 }),
  )
  .map((k) => JSON.stringify(k))

const objectText = fc
  .tuple(
    fc.array(fc.tuple(keyText, valueText, whitespace, whitespace), { maxLength: 6 }),
    whitespace,
    whitespace,
  )
  .map(
    ([entries, before, after]) =>
      `${before}{${entries.map(([k, v, w1, w2]) => `${w1}${k}${w2}:${w1}${v}${w2}`).join(',')}}${after}`,
  )

/** Breaks a body: a byte replaced, removed, inserted, or the body cut short. */
const damaged = fc
  .tuple(objectText, fc.nat(), fc.constantFrom(...'{}[]":,\\ntfu0-.e x\u0001'.split('')), fc.nat(3))
  .map(([text, at, byte, how]) => {
    const body = Buffer.from(text, 'utf8')
    const i = body.length === 0 ? 0 : at % body.length
    const b = Buffer.from(byte, 'latin1')
    if (how === 0) return Buffer.concat([body.subarray(0, i), b, body.subarray(i + 1)])
    if (how === 1) return Buffer.concat([body.subarray(0, i), body.subarray(i + 1)])
    if (how === 2) return Buffer.concat([body.subarray(0, i), b, body.subarray(i)])
    return body.subarray(0, i)
  })

const cuts = fc.array(fc.nat(), { maxLength: 12 })

// fast-check shrinks a failure to a small body and its cuts, which the thrown message shows.
t.test('gives the entries the whole-body scanner gives, wherever the body is cut', async (t) => {
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(objectText, cuts, (text, at) => {
          const body = Buffer.from(text, 'utf8')
          const whole = fromWhole(body)
          return whole !== 'refused' && isDeepStrictEqual(fromStream(body, at), whole)
        }),
        { numRuns: 500 },
      ),
    'valid bodies: the same entries (keys, kinds, raw bytes, escaped) in the same order',
  )
})

t.test('refuses what the whole-body scanner refuses, and accepts the rest, wherever cut', async (t) => {
  let refused = 0
  t.doesNotThrow(
    () =>
      fc.assert(
        fc.property(damaged, cuts, (body, at) => {
          const whole = fromWhole(body)
          if (whole === 'refused') refused++
          return isDeepStrictEqual(fromStream(body, at), whole)
        }),
        { numRuns: 2000 },
      ),
    'damaged bodies: the same verdict, and the same entries when accepted',
  )
  t.ok(refused > 500, `most damaged bodies are refused by the whole-body scanner (${refused} of 2000)`)
})

t.test('cut into single bytes, an escape-heavy value still gives the same entries', async (t) => {
  const text = `{"a":"${'ab\\/cd\\u00e9\\"'.repeat(50)}","n":[1,{"x":"}]"}],"z":null}`
  const body = Buffer.from(text)
  const every = Array.from({ length: body.length }, (_, i) => i)
  t.same(fromStream(body, every), fromWhole(body), 'byte by byte')
})

t.test('string bytes are handed on as they arrive, as views of the pieces (no copy)', async (t) => {
  const stream = new FlatJsonStream()
  const first = Buffer.from('{"selfie":"QUJD')
  const events = stream.push(first)
  t.same(
    events.map((e) => e.type),
    ['string-start', 'string-data'],
    'the value begins before its closing quote has arrived',
  )
  const data = events[1]
  t.ok(
    data?.type === 'string-data' && data.bytes.buffer === first.buffer,
    'the data is a view of the piece pushed',
  )
  t.same(
    stream.push(Buffer.from('REVG"}')).map((e) => e.type),
    ['string-data', 'string-end'],
    'the rest, then the end',
  )
  t.doesNotThrow(() => stream.end(), 'one complete object')
})

t.test('the stream ending inside the object is refused', async (t) => {
  const stream = new FlatJsonStream()
  stream.push(Buffer.from('{"selfie":"QUJD'))
  t.throws(() => stream.end(), FlatJsonError, 'unterminated: refused at the end')
  const empty = new FlatJsonStream()
  t.throws(() => empty.end(), { message: /empty input/ }, 'nothing at all: empty input')
})
