import t from 'tap'
import { FlatJsonError, scanFlatJsonObject } from '../../src/domain/flatJson.js'
import type { ScannedEntry } from '../../src/domain/flatJson.js'
import { Rng, SEEDS } from './helpers.js'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** The entry's value, decoded with JSON.parse, to compare with JSON.parse of the whole body. */
function decode(entry: ScannedEntry): Json {
  if (entry.kind === 'null') return null
  if (entry.kind === 'string') return JSON.parse(`"${entry.raw.toString('utf8')}"`) as string
  return JSON.parse(entry.raw.toString('utf8')) as Json
}

function parsesToObject(text: string): boolean {
  try {
    const parsed = JSON.parse(text) as unknown
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
  } catch {
    return false
  }
}

function scanText(text: string): ScannedEntry[] {
  return scanFlatJsonObject(Buffer.from(text, 'utf8'))
}

const ALPHABET = [
  'a',
  'Z',
  '0',
  ' ',
  'é',
  '€',
  '😀',
  '"',
  '\\',
  '/',
  '\n',
  '\t',
  '\u0001',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
]
const WHITESPACE = ['', '', ' ', '\n', '\t', '\r\n  ']

function randomString(rng: Rng, maxLength: number): string {
  return Array.from({ length: rng.int(0, maxLength) }, () => rng.pick(ALPHABET)).join('')
}

function randomNumber(rng: Rng): number {
  switch (rng.int(0, 3)) {
    case 0:
      return rng.int(-1000, 1000)
    case 1:
      return (rng.float() - 0.5) * 1e6
    case 2:
      return rng.float() * 1e-9
    default:
      return rng.pick([0, -0, 1e300, -2.5e-300, Number.MAX_SAFE_INTEGER])
  }
}

function randomValue(rng: Rng, depth: number): Json {
  const kind = rng.int(0, depth > 2 ? 4 : 6)
  switch (kind) {
    case 0:
    case 1:
      return randomString(rng, 12)
    case 2:
      return null
    case 3:
      return randomNumber(rng)
    case 4:
      return rng.bool()
    case 5:
      return Array.from({ length: rng.int(0, 4) }, () => randomValue(rng, depth + 1))
    default: {
      const object: Record<string, Json> = {}
      for (let i = rng.int(0, 4); i > 0; i--) object[randomString(rng, 5)] = randomValue(rng, depth + 1)
      return object
    }
  }
}

/** JSON.stringify's string, sometimes with `\/` and `\uXXXX` escapes that it never writes itself. */
function encodeString(rng: Rng, value: string): string {
  let text = JSON.stringify(value)
  if (rng.bool(0.3)) text = text.replaceAll('/', '\\/')
  if (rng.bool(0.3)) {
    text = text.replace(/[^\x20-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
  }
  return text
}

/** Serialises with random whitespace between tokens and random optional escapes. */
function serialise(rng: Rng, value: Json): string {
  const ws = () => rng.pick(WHITESPACE)
  if (typeof value === 'string') return encodeString(rng, value)
  if (Array.isArray(value))
    return `[${ws()}${value.map((item) => serialise(rng, item)).join(`${ws()},${ws()}`)}${ws()}]`
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value).map(
      ([key, item]) => `${encodeString(rng, key)}${ws()}:${ws()}${serialise(rng, item)}`,
    )
    return `{${ws()}${members.join(`${ws()},${ws()}`)}${ws()}}`
  }
  return JSON.stringify(value)
}

void t.test('a simple object', (t) => {
  const body = Buffer.from('{"selfie":"QUJD","missing":null,"n":-1.5e3,"b":true,"o":{"x":[1,"}"]},"e":""}')
  const entries = scanFlatJsonObject(body)
  t.same(
    entries.map((entry) => [entry.key, entry.kind]),
    [
      ['selfie', 'string'],
      ['missing', 'null'],
      ['n', 'other'],
      ['b', 'other'],
      ['o', 'other'],
      ['e', 'string'],
    ],
    'keys and kinds in document order',
  )
  const [selfie, , number, bool, object, empty] = entries
  t.equal(selfie?.kind === 'string' && selfie.raw.toString(), 'QUJD', 'string raw is the text between quotes')
  t.equal(selfie?.kind === 'string' && selfie.escaped, false, 'no backslash, not escaped')
  t.equal(number?.kind === 'other' && number.raw.toString(), '-1.5e3', 'number raw is its JSON text')
  t.equal(bool?.kind === 'other' && bool.raw.toString(), 'true', 'boolean raw is its JSON text')
  t.equal(
    object?.kind === 'other' && object.raw.toString(),
    '{"x":[1,"}"]}',
    'nested object raw is its JSON text',
  )
  t.equal(empty?.kind === 'string' && empty.raw.length, 0, 'empty string has empty raw')
  t.end()
})

void t.test('raw values are views of the body, not copies', (t) => {
  const body = Buffer.from('{"a":"xyz","b":[1,2]}')
  for (const entry of scanFlatJsonObject(body)) {
    if (entry.kind === 'null') continue
    t.equal(entry.raw.buffer, body.buffer, `${entry.key}: same memory`)
    t.equal(
      entry.raw.byteOffset,
      body.byteOffset + body.indexOf(entry.raw),
      `${entry.key}: at its place in the body`,
    )
  }
  t.end()
})

void t.test('empty objects and whitespace', (t) => {
  t.same(scanText('{}'), [], 'empty object')
  t.same(scanText(' \n\t\r{ \n\t\r} \n\t\r'), [], 'empty object with whitespace everywhere')
  const entries = scanText('\n{\n  "a" :\t"b" ,\r\n  "c"\n:\nnull\n,"d" : [ 1 , { "e" : "f" } ] \n}\n')
  t.same(
    entries.map((entry) => [entry.key, decode(entry)]),
    [
      ['a', 'b'],
      ['c', null],
      ['d', [1, { e: 'f' }]],
    ],
    'whitespace allowed between every token',
  )
  t.end()
})

void t.test('escapes', (t) => {
  const cases: Array<[string, string]> = [
    ['\\"', '"'],
    ['\\\\', '\\'],
    ['\\/', '/'],
    ['\\u00e9', 'é'],
    ['\\u00E9', 'é'],
    ['\\b\\f\\n\\r\\t', '\b\f\n\r\t'],
    ['\\ud83d\\ude00', '😀'],
    ['a\\\\', 'a\\'],
    ['\\\\\\"', '\\"'],
    ['x\\"}\\"y', 'x"}"y'],
  ]
  for (const [escaped, expected] of cases) {
    const [entry] = scanText(`{"v":"${escaped}","after":1}`)
    t.equal(entry?.kind, 'string', `${escaped}: a string`)
    t.equal(entry?.kind === 'string' && entry.escaped, true, `${escaped}: flagged escaped`)
    t.equal(entry?.kind === 'string' && entry.raw.toString(), escaped, `${escaped}: raw keeps the escapes`)
    t.equal(entry && decode(entry), expected, `${escaped}: decodes to ${JSON.stringify(expected)}`)
  }
  const keyed = scanText('{"k\\u00e9\\"y":1,"\\/":2}')
  t.same(
    keyed.map((entry) => entry.key),
    ['ké"y', '/'],
    'keys are decoded',
  )
  const utf8 = scanText('{"é€":"é€😀"}')
  t.equal(utf8[0]?.key, 'é€', 'raw UTF-8 key decoded')
  t.equal(utf8[0] && decode(utf8[0]), 'é€😀', 'raw UTF-8 value kept')
  t.end()
})

void t.test('braces, brackets and quotes inside nested strings do not confuse skipping', (t) => {
  const text = '{"a":{"s":"}}]]{{[[\\"","t":["]","}",{"u":"\\\\"}]},"b":"after","c":["{",["}"]]}'
  const entries = scanText(text)
  t.same(
    entries.map((entry) => [entry.key, decode(entry)]),
    Object.entries(JSON.parse(text) as Record<string, Json>),
    'same entries as JSON.parse',
  )
  t.end()
})

void t.test('duplicate keys are all returned, in order', (t) => {
  const entries = scanText('{"a":1,"a":"x","a":null}')
  t.same(
    entries.map((entry) => [entry.key, entry.kind]),
    [
      ['a', 'other'],
      ['a', 'string'],
      ['a', 'null'],
    ],
    'three entries for three occurrences',
  )
  t.end()
})

void t.test('random flat objects round-trip against JSON.parse', (t) => {
  for (const seed of SEEDS) {
    const rng = new Rng(seed)
    const failures: string[] = []
    for (let round = 0; round < 150; round++) {
      const object: Record<string, Json> = {}
      for (let i = rng.int(0, 8); i > 0; i--) object[randomString(rng, 6)] = randomValue(rng, 0)
      const text = `${rng.pick(WHITESPACE)}${serialise(rng, object)}${rng.pick(WHITESPACE)}`
      const expected = Object.entries(JSON.parse(text) as Record<string, Json>)
      let entries: ScannedEntry[]
      try {
        entries = scanText(text)
      } catch (error) {
        failures.push(`round ${round}: threw ${(error as Error).message} on ${text}`)
        continue
      }
      const actual = entries.map((entry) => [entry.key, decode(entry)])
      if (JSON.stringify(actual) !== JSON.stringify(expected))
        failures.push(`round ${round}: differs on ${text}`)
      for (const entry of entries) {
        if (entry.kind === 'string' && entry.escaped !== entry.raw.includes('\\')) {
          failures.push(`round ${round}: escaped flag wrong for ${entry.key}`)
        }
        if (entry.kind === 'null' && object[entry.key] !== null) failures.push(`round ${round}: bad null`)
        if (entry.kind === 'other' && (typeof object[entry.key] === 'string' || object[entry.key] === null)) {
          failures.push(`round ${round}: ${entry.key} classified other`)
        }
      }
    }
    t.same(failures, [], `seed ${seed}: 150 random objects scan like JSON.parse`)
  }
  t.end()
})

void t.test('invalid inputs throw FlatJsonError', (t) => {
  const invalid = [
    '',
    '   ',
    '[]',
    '[{"a":1}]',
    '"text"',
    '1',
    'null',
    'true',
    '{',
    '}',
    '{"a"}',
    '{"a":}',
    '{"a" 1}',
    '{"a":1,}',
    '{,"a":1}',
    '{"a":1 "b":2}',
    '{"a":1,,"b":2}',
    '{a:1}',
    "{'a':1}",
    '{"a":01}',
    '{"a":1.}',
    '{"a":.5}',
    '{"a":+1}',
    '{"a":-}',
    '{"a":1e}',
    '{"a":1e+}',
    '{"a":0x1}',
    '{"a":tru}',
    '{"a":nul}',
    '{"a":nulll}',
    '{"a":True}',
    '{"a":NaN}',
    '{"a":undefined}',
    '{"a":"\\x"}',
    '{"a":"\\u12g4"}',
    '{"a":"\\u12"}',
    '{"a":"\\U0041"}',
    '{"a":[1,]}',
    '{"a":[1 2]}',
    '{"a":[}',
    '{"a":{]}',
    '{"a":{"b"}}',
    '{"a":{"b":1,}}',
    '{"a":{1:2}}',
    '{"a":1}}',
    '{"a":1} x',
    '{"a":1}{}',
    '{"a":1}]',
    '{"a":"b"',
    '{"a":"b}',
    '{"a\nb":1}',
    '{"a\tb":1}',
    '\u00ef\u00bb\u00bf{}',
    '\u000b{}',
    'garbage',
    '<html>502 Bad Gateway</html>',
  ]
  for (const text of invalid) {
    t.notOk(parsesToObject(text), `sanity: JSON.parse does not give an object for ${JSON.stringify(text)}`)
    t.throws(() => scanText(text), FlatJsonError, `rejects ${JSON.stringify(text)}`)
  }
  t.end()
})

void t.test('FlatJsonError carries a position', (t) => {
  try {
    scanText('{"a":1 x}')
    t.fail('should have thrown')
  } catch (error) {
    t.ok(error instanceof FlatJsonError, 'a FlatJsonError')
    t.equal((error as FlatJsonError).position, 7, 'position of the unexpected byte')
    t.equal((error as FlatJsonError).name, 'FlatJsonError', 'named')
    t.match((error as FlatJsonError).message, /at byte 7/, 'message names the position')
  }
  t.end()
})

void t.test('excessive nesting is refused, not a stack overflow', (t) => {
  t.throws(() => scanText(`{"a":${'['.repeat(100_000)}`), FlatJsonError, 'deep arrays')
  t.throws(
    () => scanText(`{"a":${'{"b":'.repeat(100_000)}1${'}'.repeat(100_000)}}`),
    FlatJsonError,
    'deep objects',
  )
  const nested = `{"a":${'['.repeat(200)}${']'.repeat(200)}}`
  t.equal(scanText(nested)[0]?.kind, 'other', 'reasonable nesting is fine')
  t.end()
})

void t.test('every truncation of a valid document throws', (t) => {
  const documents = [
    '{"selfie":"QUJD","x":null,"n":-12.5e+3,"t":true,"f":false,"o":{"a":[1,{"b":"}\\""}]},"u":"\\u00e9\\/"}',
    '{ "a" : [ ] , "b" : { } , "c" : "" }',
    '{"k\\"ey":"v\\\\"}',
  ]
  for (const text of documents) {
    const body = Buffer.from(text)
    t.ok(scanFlatJsonObject(body).length > 0, `the whole document scans: ${text}`)
    const failures: number[] = []
    for (let length = 0; length < body.length; length++) {
      try {
        scanFlatJsonObject(body.subarray(0, length))
        failures.push(length)
      } catch (error) {
        if (!(error instanceof FlatJsonError)) failures.push(length)
      }
    }
    t.same(failures, [], `every proper prefix throws FlatJsonError: ${text}`)
    t.notOk(
      Array.from({ length: body.length }, (_, length) => text.slice(0, length)).some(parsesToObject),
      'sanity: JSON.parse rejects every prefix too',
    )
  }
  t.end()
})

void t.test('random mutations: accepted exactly when JSON.parse gives an object', (t) => {
  const printable = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i))
  const tokens = [...printable, '{', '}', '[', ']', '"', '\\', ',', ':']
  for (const seed of SEEDS) {
    const rng = new Rng(seed)
    const failures: string[] = []
    for (let round = 0; round < 400; round++) {
      const object: Record<string, Json> = {}
      for (let i = rng.int(1, 4); i > 0; i--)
        object[randomString(rng, 3).replace(/[^\x20-\x7e]/g, 'x')] = randomValue(rng, 1)
      // ASCII only, so a mutation cannot introduce control characters or broken UTF-8 in values,
      // which this scanner deliberately does not check.
      const text = JSON.stringify(object).replace(/[^\x20-\x7e]/g, 'x')
      const chars = Array.from(text)
      for (let m = rng.int(1, 3); m > 0; m--) {
        const at = rng.int(0, chars.length)
        const operation = rng.int(0, 2)
        if (operation === 0) chars.splice(at, 1)
        else if (operation === 1) chars.splice(at, 0, rng.pick(tokens))
        else chars[at] = rng.pick(tokens)
      }
      const mutated = chars.join('')
      const expectedOk = parsesToObject(mutated)
      let ok: boolean
      try {
        scanText(mutated)
        ok = true
      } catch (error) {
        if (!(error instanceof FlatJsonError)) failures.push(`round ${round}: threw ${String(error)}`)
        ok = false
      }
      if (ok !== expectedOk) failures.push(`round ${round}: ${ok ? 'accepted' : 'rejected'} ${mutated}`)
    }
    t.same(failures, [], `seed ${seed}: 400 mutated documents judged like JSON.parse`)
  }
  t.end()
})

void t.test('an 8 MB base64 value round-trips as a view', (t) => {
  const rng = new Rng(8)
  const base64 = rng.bytes(6 * 1024 * 1024).toString('base64')
  t.equal(base64.length, 8 * 1024 * 1024, 'sanity: 8 MiB of base64')
  const body = Buffer.from(`{ "fullFrameFrontID" : "${base64}", "selfie": null, "other": {"x": "}"} }`)
  const started = performance.now()
  const entries = scanFlatJsonObject(body)
  const elapsed = performance.now() - started
  const [image] = entries
  t.equal(image?.kind, 'string', 'the image is a string entry')
  if (image?.kind !== 'string') {
    t.end()
    return
  }
  t.equal(image.escaped, false, 'plain base64 is not escaped')
  t.ok(image.raw.equals(Buffer.from(base64)), 'raw bytes identical to the base64')
  t.equal(image.raw.buffer, body.buffer, 'raw is a view of the body')
  t.same(
    entries.slice(1).map((entry) => [entry.key, decode(entry)]),
    [
      ['selfie', null],
      ['other', { x: '}' }],
    ],
    'entries after the big value are found',
  )
  t.ok(elapsed < 2000, `scanned in ${elapsed.toFixed(1)} ms (generous bound)`)

  const escaped = base64.replaceAll('/', '\\/')
  const escapedBody = Buffer.from(`{"fullFrameFrontID":"${escaped}"}`)
  const [escapedImage] = scanFlatJsonObject(escapedBody)
  t.equal(
    escapedImage?.kind === 'string' && escapedImage.escaped,
    true,
    'with \\/ escapes it is flagged escaped',
  )
  t.equal(escapedImage && decode(escapedImage), base64, 'and decodes to the same base64')
  t.end()
})
