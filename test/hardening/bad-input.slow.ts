import net from 'node:net'
import fc from 'fast-check'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { IMAGE_TYPES, isImageType } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, PARTNER_KEY } from '../helpers/build.js'
import { HARDENING_ENV, incodeFlaw, parseJson, problemFlaw, prototypeSnapshot } from './helpers.js'

/**
 * Property-based and example-based bad input against every route family: whatever a caller sends,
 * the answer is a clear, well-formed 4xx (or a success for input that happens to be valid), never
 * a 5xx; nothing pollutes Object.prototype; the app keeps answering.
 *
 * Header values are drawn from what a real socket can deliver (tab, 0x20-0x7e, 0x80-0xff: Node
 * reads header bytes as latin1 and refuses control characters itself); the one inject-only case
 * outside that range is an example below.
 */

const { small, full } = SEEDED_INTERVIEW_IDS
const SEED = 0x5eed_1234
const TIME_LIMIT_MS = 12_000

type Family = 'v1' | 'dropin'
type Auth = 'partner' | 'session' | 'dropin'
type Cred = 'valid' | 'none' | 'wrong'

interface Target {
  name: string
  method: 'POST' | 'DELETE'
  /** The URL, with `param` as the interview ID (path) or `?id=` (drop-in paths) when given. */
  url: (param?: string) => string
  family: Family
  auth: Auth
  images: 'required' | 'optional' | 'ignored'
}

const TARGETS: Target[] = [
  {
    name: 'v1 images',
    method: 'POST',
    url: (p = small) => `/v1/sessions/${p}/images`,
    family: 'v1',
    auth: 'partner',
    images: 'required',
  },
  {
    name: 'v1 second-ID images',
    method: 'POST',
    url: (p = small) => `/v1/sessions/${p}/second-id/images`,
    family: 'v1',
    auth: 'partner',
    images: 'required',
  },
  {
    name: 'v1 concatenated',
    method: 'POST',
    url: (p = small) => `/v1/sessions/${p}/images/concatenated`,
    family: 'v1',
    auth: 'partner',
    images: 'optional',
  },
  {
    name: 'v1 links',
    method: 'POST',
    url: (p = small) => `/v1/sessions/${p}/image-links`,
    family: 'v1',
    auth: 'partner',
    images: 'required',
  },
  {
    name: 'v1 drop links',
    method: 'DELETE',
    url: (p = small) => `/v1/sessions/${p}/image-links`,
    family: 'v1',
    auth: 'partner',
    images: 'ignored',
  },
  {
    name: 'session images',
    method: 'POST',
    url: (p) => `/v1/session/images${p === undefined ? '' : `?id=${p}`}`,
    family: 'v1',
    auth: 'session',
    images: 'required',
  },
  {
    name: 'session links',
    method: 'POST',
    url: (p) => `/v1/session/image-links${p === undefined ? '' : `?id=${p}`}`,
    family: 'v1',
    auth: 'session',
    images: 'required',
  },
  ...['', '/0'].flatMap((prefix): Target[] =>
    (
      [
        ['images', '/omni/get/images', 'required'],
        ['links', '/omni/get/images/v2', 'required'],
        ['second-ID', '/omni/get/second-id/images', 'required'],
        ['concatenated', '/omni/get/concatenated-images', 'optional'],
      ] as const
    ).map(([name, path, images]) => ({
      name: `drop-in ${prefix}${name}`,
      method: 'POST',
      url: (p?: string) => `${prefix}${path}${p === undefined ? '' : `?id=${p}`}`,
      family: 'dropin',
      auth: 'dropin',
      images,
    })),
  ),
]

interface Context {
  app: FastifyInstance
  token: string
  bodyLimit: number
  maxImages: number
}

function credHeaders(target: Target, cred: Cred, token: string): Record<string, string> {
  if (cred === 'none') return {}
  const value = {
    partner: cred === 'valid' ? PARTNER_KEY : 'not-a-partner-key',
    session: cred === 'valid' ? token : 'not-a-session-token',
    dropin: cred === 'valid' ? token : 'not-an-incode-token',
  }[target.auth]
  const name = {
    partner: 'x-api-key',
    session: 'x-incode-session-token',
    dropin: 'x-incode-hardware-id',
  }[target.auth]
  return { [name]: value }
}

/**
 * Fastify's own URL errors (undecodable percent-encoding, a path parameter over find-my-way's
 * 100 characters) are answered by Fastify's default handler, not the service's: a 4xx, but neither
 * problem+json nor Incode's body. Properties count them instead of failing on them, and a todo
 * assertion reports the count (see the report of this suite).
 */
const FRAMEWORK_URL_ERRORS = new Set(['FST_ERR_BAD_URL', 'FST_ERR_MAX_PARAM_LENGTH'])
const frameworkUrlErrors: string[] = []

/** What is wrong with an answer to a request on `family`, or undefined when it is fine. */
function flaw(res: LightMyRequestResponse, family: Family, tolerateUrlErrors = false): string | undefined {
  const status = res.statusCode
  if (status >= 500) return `status ${status}: ${res.body.slice(0, 300)}`
  if (status < 200 || (status >= 300 && status < 400)) return `unexpected status ${status}`
  const code = (parseJson(res.body) as { code?: unknown } | undefined)?.code
  if (tolerateUrlErrors && status < 500 && typeof code === 'string' && FRAMEWORK_URL_ERRORS.has(code)) {
    frameworkUrlErrors.push(`${status} ${code}`)
    return undefined
  }
  if (status >= 400) {
    const problem = family === 'v1' ? problemFlaw(res) : incodeFlaw(res)
    return problem === undefined ? undefined : `status ${status}, ${problem}: ${res.body.slice(0, 300)}`
  }
  if (!String(res.headers['content-type'] ?? '').startsWith('application/json'))
    return `2xx with content-type ${String(res.headers['content-type'])}`
  if (parseJson(res.body) === undefined) return '2xx body is not JSON'
  return undefined
}

function familyOf(url: string): Family {
  return url.startsWith('/v1') ? 'v1' : 'dropin'
}

async function checked(
  ctx: Context,
  options: InjectOptions & { url: string },
  expect?: (res: LightMyRequestResponse) => string | undefined,
  tolerateUrlErrors = false,
): Promise<void> {
  const res = await ctx.app.inject(options)
  const problem = flaw(res, familyOf(options.url), tolerateUrlErrors) ?? expect?.(res)
  const polluted = ({} as Record<string, unknown>).polluted
  if (problem !== undefined)
    throw new Error(`${options.method ?? 'GET'} ${options.url.slice(0, 200)}: ${problem}`)
  if (polluted !== undefined) throw new Error('Object.prototype.polluted appeared')
}

/** Runs a property with a fixed seed, bounded in runs and time, and reports a counterexample. */
async function holds<T>(
  t: Test,
  ctx: Context,
  name: string,
  arb: fc.Arbitrary<T>,
  predicate: (value: T) => Promise<void>,
  numRuns: number,
  seed: number,
): Promise<void> {
  const baseline = prototypeSnapshot()
  const details = await fc.check(fc.asyncProperty(arb, predicate), {
    numRuns,
    seed,
    plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS)],
  })
  const error = details.errorInstance instanceof Error ? details.errorInstance.message : ''
  const report = `${error} ${fc.defaultReportMessage(details) ?? ''}`.slice(0, 2_000)
  t.notOk(details.failed, `${name}: holds (seed ${seed}) ${details.failed ? report : ''}`)
  t.ok(details.numRuns >= Math.min(numRuns, 25), `${name}: ran ${details.numRuns} of ${numRuns} cases`)
  t.equal(prototypeSnapshot(), baseline, `${name}: the built-in prototypes are unchanged`)
  t.equal(({} as Record<string, unknown>).polluted, undefined, `${name}: Object.prototype is unpolluted`)
  const health = await ctx.app.inject({ method: 'GET', url: '/healthz' })
  t.equal(health.statusCode, 200, `${name}: the app still answers /healthz`)
}

// ---- arbitraries -----------------------------------------------------------------------------

// A counterexample names its target rather than printing its fields.
for (const x of TARGETS) Object.defineProperty(x, fc.toStringMethod, { value: () => x.name })
const target = fc.constantFrom(...TARGETS)
const cred = fc.constantFrom<Cred>('valid', 'valid', 'none', 'wrong')
const latin1Char = fc
  .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09))
  .map((c) => String.fromCharCode(c))
const SPECIAL_STRINGS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '',
  ' ',
  '\u200b',
  'ｓｅｌｆｉｅ',
  'selfie\u200b',
  'selfie\u0000',
  '\u202eeifles',
  '\ud800',
  '\udfff',
  '../../etc/passwd',
  '%00',
  'null',
  'undefined',
  '😀',
  'e\u0301',
]
const typeLike = fc.oneof(
  fc.constantFrom(...IMAGE_TYPES),
  fc
    .constantFrom(...IMAGE_TYPES)
    .chain((type) =>
      fc.constantFrom(
        type.toUpperCase(),
        ` ${type}`,
        `${type} `,
        `${type}_prevAttempts`,
        `${type}\u0000`,
        type.slice(1),
        `${type},selfie`,
      ),
    ),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.constantFrom(...SPECIAL_STRINGS),
)

function encodeParam(value: string): string {
  try {
    return encodeURIComponent(value)
  } catch {
    // Lone surrogates: percent-encode the UTF-8 bytes (with replacement characters) instead.
    return [...Buffer.from(value, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')
  }
}

// ---- the tests -------------------------------------------------------------------------------

t.test('bad input never gets a 5xx', async (t) => {
  const { app, simulator, config } = await build(t, { env: { ...HARDENING_ENV } })
  const ctx: Context = {
    app,
    token: simulator.sessionToken(small),
    bodyLimit: config.BODY_LIMIT_BYTES,
    maxImages: config.MAX_IMAGES_PER_REQUEST,
  }
  const json = { 'content-type': 'application/json' }
  const baseline = prototypeSnapshot()

  await t.test('random JSON bodies', async (t) => {
    const body = fc.oneof(
      fc.jsonValue({ maxDepth: 5 }),
      fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' }),
      fc.record({ images: fc.jsonValue({ maxDepth: 3 }) }),
      fc.dictionary(fc.oneof(fc.string(), fc.constant('images')), fc.jsonValue({ maxDepth: 3 }), {
        maxKeys: 5,
      }),
    )
    await holds(
      t,
      ctx,
      'random JSON bodies',
      fc.record({ target, cred, body }),
      ({ target, cred, body }) =>
        checked(ctx, {
          method: target.method,
          url: target.url(),
          headers: { ...json, ...credHeaders(target, cred, ctx.token) },
          payload: JSON.stringify(body),
        }),
      250,
      SEED,
    )
  })

  await t.test('random images lists', async (t) => {
    const images = fc.oneof(
      { weight: 3, arbitrary: fc.array(fc.constantFrom(...IMAGE_TYPES), { maxLength: 40 }) },
      { weight: 4, arbitrary: fc.array(typeLike, { maxLength: 40 }) },
      { weight: 1, arbitrary: fc.array(typeLike, { minLength: 33, maxLength: 3000 }) },
    )
    await holds(
      t,
      ctx,
      'random images lists',
      fc.record({ target, cred, images }),
      async ({ target, cred, images }) => {
        const payload = JSON.stringify({ images })
        const valid = images.length >= 1 && images.length <= ctx.maxImages && images.every(isImageType)
        await checked(
          ctx,
          {
            method: target.method,
            url: target.url(),
            headers: { ...json, ...credHeaders(target, cred, ctx.token) },
            payload,
          },
          (res) => {
            if (cred !== 'valid' || target.images === 'ignored') return undefined
            if (Buffer.byteLength(payload) > ctx.bodyLimit)
              return res.statusCode === 413 ? undefined : `oversize list answered ${res.statusCode}`
            if (!valid && res.statusCode !== 400) return `an invalid list answered ${res.statusCode}, not 400`
            if (valid && res.statusCode >= 400 && res.statusCode !== 404)
              return `a valid list answered ${res.statusCode}`
            return undefined
          },
        )
      },
      220,
      SEED + 1,
    )
  })

  await t.test('odd headers', async (t) => {
    const other = simulator.sessionToken(full)
    const tampered = `${ctx.token.slice(0, -3)}${ctx.token.endsWith('A') ? 'B' : 'A'}xx`
    const shortValue = fc.oneof(
      fc.string({ unit: latin1Char, maxLength: 120 }),
      fc.constantFrom(
        '',
        ' ',
        '\t',
        'null',
        '[]',
        '{}',
        `Bearer ${ctx.token}`,
        tampered,
        other,
        ` ${ctx.token} `,
      ),
      fc.constantFrom('eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.x', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'),
      // UTF-8 text as a socket delivers it: its bytes read as latin1.
      fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => Buffer.from(s, 'utf8').toString('latin1')),
    )
    // One long value at most: a real socket refuses more than 16 KB of headers in all.
    const values = fc.oneof(
      fc.tuple(
        fc.oneof(
          shortValue,
          fc.integer({ min: 1_000, max: 15_000 }).map((n) => `${'A'.repeat(n)}.${'b'.repeat(10)}`),
        ),
      ),
      fc.array(shortValue, { minLength: 2, maxLength: 3 }),
    )
    const header = fc.constantFrom(
      'x-api-key',
      'x-incode-session-token',
      'x-incode-hardware-id',
      'x-request-id',
      'api-version',
      'origin',
      'authorization',
    )
    await holds(
      t,
      ctx,
      'odd headers',
      fc.record({ target, cred, header, values }),
      ({ target, cred, header, values }) =>
        checked(ctx, {
          method: target.method,
          url: target.url(),
          headers: {
            ...json,
            ...credHeaders(target, cred, ctx.token),
            [header]: values.length === 1 ? values[0] : values,
          },
          payload: JSON.stringify({ images: ['signature'] }),
        }),
      220,
      SEED + 2,
    )
  })

  await t.test('odd path and query parameters', async (t) => {
    const param = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.string({ unit: latin1Char, maxLength: 80 }),
      fc.integer({ min: 65, max: 3_000 }).map((n) => 'a'.repeat(n)),
      fc.constantFrom(
        '..',
        '.',
        '../..',
        '../../etc/passwd',
        '..\\..\\windows',
        '%2e%2e',
        '%2e%2e%2f%2e%2e%2f',
        '__proto__',
        'constructor',
        'prototype',
        small,
        small.toUpperCase(),
        ` ${small}`,
        ctx.token,
        'a/b',
        'a?b=c',
        'a#b',
        'a;b',
        '\u0000',
        '😀',
      ),
    )
    const encoding = fc.constantFrom('component', 'component', 'double', 'raw')
    await holds(
      t,
      ctx,
      'odd path and query parameters',
      fc.record({ target, cred, param, encoding }),
      async ({ target, cred, param, encoding }) => {
        // Raw only for text that is a valid URL as it is (bad percent-encoding has its own test).
        const raw = encoding === 'raw' && /^[\x21-\x7e]*$/.test(param) && !/%(?![0-9a-fA-F]{2})/.test(param)
        const encoded = raw
          ? param
          : encoding === 'double'
            ? encodeParam(encodeParam(param))
            : encodeParam(param)
        await checked(
          ctx,
          {
            method: target.method,
            url: target.url(encoded),
            headers: { ...json, ...credHeaders(target, cred, ctx.token) },
            payload: JSON.stringify({ images: ['signature'] }),
          },
          undefined,
          true,
        )
      },
      220,
      SEED + 3,
    )
    t.same(frameworkUrlErrors, [], "Fastify's URL errors are answered in the route family's error shape")
  })

  await t.test('content types and undecodable bodies', async (t) => {
    const contentType = fc.option(
      fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'application/json; charset=latin1',
        'application/json; charset=utf-16',
        'APPLICATION/JSON',
        'application/json;',
        'application/jsonp',
        'application/vnd.api+json',
        'application/problem+json',
        'text/json',
        'text/plain',
        'text/html',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/xml',
        'application/octet-stream',
        'image/jpeg',
        '*/*',
        '',
        ';',
        'a'.repeat(500),
      ),
      { nil: undefined },
    )
    const payload = fc.oneof(
      fc.constant(JSON.stringify({ images: ['signature'] })),
      fc.constant(''),
      fc.constant('\ufeff{"images":["signature"]}'),
      fc.constant('{"images":["signature"]'),
      fc.constant('images=signature'),
      fc.constant('<images><i>signature</i></images>'),
      fc.json({ maxDepth: 3 }),
      fc.string({ maxLength: 200 }),
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
      // Invalid UTF-8 inside a JSON string: lone continuation bytes, an overlong slash, a cut sequence.
      fc
        .constantFrom([0x80], [0xc0, 0xaf], [0xe2, 0x82], [0xff, 0xfe], [0xed, 0xa0, 0x80])
        .map((bytes) =>
          Buffer.concat([Buffer.from('{"images":["sel'), Buffer.from(bytes), Buffer.from('fie"]}')]),
        ),
    )
    await holds(
      t,
      ctx,
      'content types and undecodable bodies',
      fc.record({ target, cred, contentType, payload }),
      ({ target, cred, contentType, payload }) =>
        checked(ctx, {
          method: target.method,
          url: target.url(),
          headers: {
            ...credHeaders(target, cred, ctx.token),
            ...(contentType === undefined ? {} : { 'content-type': contentType }),
          },
          payload,
        }),
      250,
      SEED + 4,
    )
  })

  await t.test('oversize bodies', async (t) => {
    await holds(
      t,
      ctx,
      'oversize bodies',
      fc.record({
        target: fc.constantFrom(...TARGETS.filter((x) => x.method === 'POST')),
        cred,
        size: fc.integer({ min: ctx.bodyLimit + 1, max: ctx.bodyLimit * 3 }),
        contentType: fc.constantFrom('application/json', 'text/plain'),
      }),
      ({ target, cred, size, contentType }) => {
        const head = '{"images":["signature"],"pad":"'
        const payload = `${head}${'x'.repeat(size - head.length - 2)}"}`
        return checked(
          ctx,
          {
            method: target.method,
            url: target.url(),
            headers: { 'content-type': contentType, ...credHeaders(target, cred, ctx.token) },
            payload,
          },
          // Bodies are JSON only: a text/plain one is refused for its type before its size is read.
          (res) => {
            const expected = contentType === 'text/plain' ? 415 : 413
            return cred === 'valid' && res.statusCode !== expected
              ? `answered ${res.statusCode}, not ${expected}`
              : undefined
          },
        )
      },
      60,
      SEED + 5,
    )
  })

  await t.test('prototype-polluting JSON', async (t) => {
    const shape = fc.constantFrom(
      (v: string) => `{"__proto__":${v},"images":["signature"]}`,
      (v: string) => `{"images":["signature"],"__proto__":{"polluted":${v}}}`,
      (v: string) => `{"images":["signature"],"a":{"b":{"__proto__":{"polluted":${v}}}}}`,
      (v: string) => `{"constructor":{"prototype":{"polluted":${v}}},"images":["signature"]}`,
      (v: string) => `{"images":["signature"],"x":[{"constructor":{"prototype":{"polluted":${v}}}}]}`,
      (v: string) => `{"images":{"__proto__":["signature"],"length":1,"0":${v}}}`,
      (v: string) => `{"__proto__":{"__proto__":{"polluted":${v}}}}`,
    )
    await holds(
      t,
      ctx,
      'prototype-polluting JSON',
      fc.record({ target, cred, shape, value: fc.json({ maxDepth: 2 }) }),
      ({ target, cred, shape, value }) =>
        checked(
          ctx,
          {
            method: target.method,
            url: target.url(),
            headers: { ...json, ...credHeaders(target, cred, ctx.token) },
            payload: shape(value),
          },
          (res) =>
            cred === 'valid' && target.images !== 'ignored' && res.statusCode !== 400
              ? `answered ${res.statusCode}, not 400`
              : undefined,
        ),
      150,
      SEED + 6,
    )
  })

  await t.test('prototype member names as IDs, types and query keys', async (t) => {
    const names = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf']
    for (const name of names) {
      for (const target of TARGETS) {
        for (const url of [
          target.url(name),
          `${target.url()}${target.url().includes('?') ? '&' : '?'}${name}[polluted]=yes&${name}.polluted=yes`,
          `${target.url()}?constructor[prototype][polluted]=yes&__proto__[polluted]=yes`,
        ]) {
          const res = await app.inject({
            method: target.method,
            url,
            headers: { ...json, ...credHeaders(target, 'valid', ctx.token) },
            payload: JSON.stringify({ images: ['signature'] }),
          })
          t.equal(flaw(res, target.family), undefined, `${target.name} ${url}: a clear answer`)
        }
        const typed = await app.inject({
          method: target.method,
          url: target.url(),
          headers: { ...json, ...credHeaders(target, 'valid', ctx.token) },
          payload: JSON.stringify({ images: [name] }),
        })
        t.equal(flaw(typed, target.family), undefined, `${target.name} images [${name}]: a clear answer`)
        if (target.images !== 'ignored')
          t.equal(typed.statusCode, 400, `${target.name} images [${name}]: refused as an unknown type`)
      }
    }
    t.equal(prototypeSnapshot(), baseline, 'the built-in prototypes are unchanged')
    t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is unpolluted')
  })

  await t.test('broken real-world client calls', async (t) => {
    const token = ctx.token
    type Expect = number | '4xx' | 'ok'
    interface Case {
      name: string
      payload: string
      contentType?: string
      /** Credentials are left out of the headers (the case puts them in the body). */
      noCreds?: boolean
      query?: string
      /** Status by target kind: a number, any 4xx (the default), or 'ok' (valid there: anything but a 5xx). */
      v1?: Expect
      session?: Expect
      dropin?: Expect
      /** A known deviation: the assertion runs as a todo. */
      todo?: string
    }
    const headersInBody = {
      'x-api-key': PARTNER_KEY,
      'X-Incode-Hardware-Id': token,
      'X-Incode-Session-Token': token,
      'api-version': '1.0',
      'Content-Type': 'application/json',
    }
    const cases: Case[] = [
      {
        name: 'headers in the body, none sent',
        payload: JSON.stringify({ ...headersInBody, images: ['selfie'] }),
        noCreds: true,
        // The unknown properties fail validation before the token is looked for.
        session: 400,
        dropin: 401,
      },
      {
        name: 'headers in the body, credentials also sent',
        payload: JSON.stringify({ ...headersInBody, images: ['selfie'] }),
        v1: 400,
        session: 400,
        // Incode's own body schema tolerates unknown fields, and so do the drop-in paths.
        dropin: 'ok',
      },
      {
        name: 'axios-style {headers, data} body',
        payload: JSON.stringify({ headers: headersInBody, data: { images: ['selfie'] } }),
        v1: 400,
        session: 400,
        dropin: 400,
      },
      { name: 'no images field', payload: '{}', v1: 400, session: 400, dropin: 400 },
      {
        name: 'image instead of images',
        payload: '{"image":["selfie"]}',
        v1: 400,
        session: 400,
        dropin: 400,
      },
      { name: 'images null', payload: '{"images":null}', v1: 400, session: 400, dropin: 400 },
      { name: 'images empty', payload: '{"images":[]}', v1: 400, session: 400, dropin: 400 },
      {
        // On partner routes the token lands in the path as the interview ID.
        name: 'token as id',
        payload: '{"images":["selfie"]}',
        query: token,
        session: 'ok',
        dropin: 400,
      },
      {
        name: 'token as id, no token header',
        payload: '{"images":["selfie"]}',
        query: token,
        noCreds: true,
        session: 401,
        dropin: 400,
      },
      {
        name: 'images as a comma-separated string',
        payload: '{"images":"selfie,croppedFace"}',
        v1: 400,
        session: 400,
        dropin: 400,
      },
      {
        name: 'images as a JSON-encoded string',
        payload: JSON.stringify({ images: JSON.stringify(['selfie']) }),
        v1: 400,
        session: 400,
        dropin: 400,
      },
      {
        name: 'images as a single type string',
        payload: '{"images":"selfie"}',
        v1: 400,
        session: 400,
        dropin: 400,
      },
      {
        name: 'double-encoded body',
        payload: JSON.stringify(JSON.stringify({ images: ['selfie'] })),
        v1: 400,
        session: 400,
        dropin: 400,
      },
      {
        name: 'form-encoded body',
        payload: 'images=selfie',
        contentType: 'application/x-www-form-urlencoded',
        v1: 415,
        session: 415,
        dropin: 415,
      },
      { name: 'a bare array', payload: '["selfie"]', v1: 400, session: 400, dropin: 400 },
    ]
    for (const c of cases) {
      for (const target of TARGETS) {
        if (target.images !== 'required') continue
        const expected =
          (target.auth === 'partner' ? c.v1 : target.auth === 'session' ? c.session : c.dropin) ?? '4xx'
        const res = await app.inject({
          method: target.method,
          url: c.query === undefined ? target.url() : target.url(c.query),
          headers: {
            'content-type': c.contentType ?? 'application/json',
            ...(c.noCreds ? {} : credHeaders(target, 'valid', token)),
          },
          payload: c.payload,
        })
        const what = `${c.name} on ${target.name}`
        const options = c.todo ? { todo: c.todo } : {}
        const shape = flaw(res, target.family, true)
        t.equal(shape, undefined, `${what}: a well-formed answer, not a 5xx`)
        if (expected === 'ok') continue
        t.ok(res.statusCode >= 400 && res.statusCode < 500, `${what}: a 4xx (got ${res.statusCode})`, options)
        if (typeof expected === 'number')
          t.equal(res.statusCode, expected, `${what}: status ${expected}`, options)
      }
    }
    // A token as the interview ID in the path is longer than find-my-way's 100-character limit.
    const asParam = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${token}/images`,
      headers: { ...json, 'x-api-key': PARTNER_KEY },
      payload: '{"images":["selfie"]}',
    })
    t.ok(
      asParam.statusCode >= 400 && asParam.statusCode < 500,
      'a token as the interview ID in the path: 4xx',
    )
    t.equal(problemFlaw(asParam), undefined, 'a token as the interview ID in the path: problem+json')
  })

  await t.test('empty, blank and repeated credential headers', async (t) => {
    const sessionTarget = TARGETS.find((x) => x.name === 'session images') as Target
    const dropTarget = TARGETS.find((x) => x.name === 'drop-in images') as Target
    for (const [target, header, code] of [
      [sessionTarget, 'x-incode-session-token', 'TOKEN_MISSING'],
      [dropTarget, 'x-incode-hardware-id', undefined],
    ] as const) {
      for (const value of ['', '   ', '\t', ['', ctx.token], ['', '']]) {
        const res = await app.inject({
          method: 'POST',
          url: target.url(),
          headers: { ...json, [header]: value },
          payload: '{"images":["signature"]}',
        })
        const what = `${target.name} with ${header} ${JSON.stringify(value)}`
        t.equal(res.statusCode, 401, `${what}: 401`)
        t.equal(flaw(res, target.family), undefined, `${what}: well-formed`)
        // Repeated headers arrive joined (', '), as over a socket: a token that is not one, refused upstream.
        if (code && typeof value === 'string') t.equal(parseJson(res.body)?.code, code, `${what}: ${code}`)
      }
    }
  })

  await t.test('undecodable percent-encoding in the path', async (t) => {
    for (const url of [
      '/v1/sessions/%E0%A4%A/images',
      '/v1/sessions/%/image-links',
      `/v1/sessions/${small}%ZZ/images`,
      '/omni/get/images/%E0%A4%A',
      '/0/omni/get/images%',
    ]) {
      const res = await app.inject({
        method: 'POST',
        url,
        headers: { ...json, 'x-api-key': PARTNER_KEY, 'x-incode-hardware-id': ctx.token },
        payload: '{"images":["signature"]}',
      })
      t.equal(res.statusCode, 400, `${url}: 400`)
      t.equal(flaw(res, familyOf(url)), undefined, `${url}: well-formed in the route family's error shape`)
    }
  })

  await t.test('token values that are not plain tokens (inject only)', async (t) => {
    const before = simulator.calls.length
    for (const [what, value] of [
      ['a character above U+00FF', `${ctx.token}\u2603`],
      ['a latin1 character', `${ctx.token}\u00e9`],
      ['a space inside', `${ctx.token.slice(0, 10)} ${ctx.token.slice(10)}`],
      ['a control character', `${ctx.token}\u0001`],
      ['DEL', `${ctx.token}\u007f`],
      ['over 4096 characters', 'A'.repeat(4097)],
    ] as const) {
      for (const url of ['/v1/session/images', '/v1/session/image-links']) {
        const session = await app.inject({
          method: 'POST',
          url,
          headers: { ...json, 'x-incode-session-token': value },
          payload: '{"images":["signature"]}',
        })
        t.equal(session.statusCode, 401, `${url}, token with ${what}: 401`)
        t.equal(flaw(session, 'v1'), undefined, `${url}, token with ${what}: well-formed problem+json`)
        t.equal(parseJson(session.body)?.code, 'TOKEN_INVALID', `${url}, token with ${what}: TOKEN_INVALID`)
        t.notOk(session.body.includes(value), `${url}, token with ${what}: not echoed`)
      }
      for (const path of ['/omni/get/images', '/0/omni/get/images', '/omni/get/images/v2']) {
        const dropIn = await app.inject({
          method: 'POST',
          url: path,
          headers: { ...json, 'x-incode-hardware-id': value },
          payload: '{"images":["signature"]}',
        })
        t.equal(dropIn.statusCode, 401, `${path}, token with ${what}: 401`)
        t.equal(flaw(dropIn, 'dropin'), undefined, `${path}, token with ${what}: Incode's error body`)
      }
    }
    t.equal(simulator.calls.length, before, 'no such token reaches upstream')
    const longest = await app.inject({
      method: 'POST',
      url: '/v1/session/images',
      headers: { ...json, 'x-incode-session-token': `${ctx.token}${'A'.repeat(4096 - ctx.token.length)}` },
      payload: '{"images":["signature"]}',
    })
    t.equal(flaw(longest, 'v1'), undefined, 'a token of exactly 4096 characters: well-formed')
    t.not(
      parseJson(longest.body)?.code,
      'TOKEN_INVALID',
      'a token of exactly 4096 characters is not refused here',
    )
  })

  await t.test('malformed requests on a real socket', async (t) => {
    const url = new URL(await app.listen({ host: '127.0.0.1', port: 0 }))
    const raw = (head: Buffer): Promise<string> =>
      new Promise((resolve) => {
        const socket = net.connect(Number(url.port), '127.0.0.1')
        let out = ''
        const timer = setTimeout(() => socket.destroy(), 5_000)
        socket.on('data', (d: Buffer) => (out += d.toString('latin1')))
        socket.on('close', () => {
          clearTimeout(timer)
          resolve(out)
        })
        socket.on('error', () => undefined)
        const body = '{"images":["signature"]}'
        socket.write(
          Buffer.concat([
            head,
            Buffer.from(`content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`),
          ]),
        )
      })
    const line = (name: string, value: Buffer) =>
      Buffer.concat([
        Buffer.from(
          `POST /v1/session/images HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n${name}: `,
        ),
        value,
        Buffer.from('\r\n'),
      ])
    for (const [what, head] of [
      [
        'a control character in the session token',
        line('x-incode-session-token', Buffer.from('ab\x01cd', 'latin1')),
      ],
      ['DEL in the session token', line('x-incode-session-token', Buffer.from('ab\x7fcd', 'latin1'))],
      ['UTF-8 bytes in the session token', line('x-incode-session-token', Buffer.from('ab☃cd', 'utf8'))],
      ['headers over 16 KB', line('x-incode-session-token', Buffer.from('a'.repeat(20_000)))],
      ['a bare LF in a header', line('x-api-key', Buffer.from('a\nb: c', 'latin1'))],
    ] as const) {
      const answer = await raw(head)
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1])
      t.ok(status >= 400 && status < 500, `${what}: a 4xx on the socket (got ${status || 'no answer'})`)
    }
  })

  t.equal(prototypeSnapshot(), baseline, 'after everything: the built-in prototypes are unchanged')
  t.equal(
    (await app.inject({ method: 'GET', url: '/healthz' })).statusCode,
    200,
    'after everything: /healthz 200',
  )
})
