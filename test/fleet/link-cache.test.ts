import t from 'tap'
import { sha256Hex } from '../../src/auth/apiKeys.js'
import { scopeForToken } from '../../src/cache/linkCache.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { PARTNER_KEY, partnerHeaders } from '../helpers/build.js'
import { NO_REDIS } from '../helpers/redis.js'
import { MINUTE, post, type Json, warmSeededSessions } from '../routes/fixtures/helpers.js'
import { at, rawRedis, replicas } from './fixtures/replicas.js'
import type { FastifyInstance } from 'fastify'

warmSeededSessions()

const { full, small, secondId } = SEEDED_INTERVIEW_IDS
const TYPES = ['selfie', 'fullFrameFrontID', 'signature']

const adminLinks = (app: FastifyInstance, interviewId: string, images = TYPES) =>
  post(app, `/v1/sessions/${interviewId}/image-links`, { images }, partnerHeaders())
const tokenLinks = (app: FastifyInstance, token: string, images = TYPES) =>
  post(
    app,
    '/v1/session/image-links',
    { images },
    {
      'content-type': 'application/json',
      'x-incode-session-token': token,
    },
  )

async function metricsOf(app: FastifyInstance): Promise<string> {
  return (await app.inject({ url: '/metrics', headers: { 'x-api-key': PARTNER_KEY } })).body
}

t.test(
  'an entry written by replica A is read by B and C (L2 hit, X-Cache HIT), one upstream call',
  { skip: NO_REDIS },
  async (t) => {
    const { apps, simulator } = await replicas(t, 3)
    const first = await adminLinks(at(apps, 0), full)
    t.equal(first.statusCode, 200, 'A: 200')
    t.equal(first.headers['x-cache'], 'MISS', 'A: a cold fleet is a MISS')
    for (const [name, app] of [
      ['B', at(apps, 1)],
      ['C', at(apps, 2)],
    ] as const) {
      const res = await adminLinks(app, full)
      t.equal(res.statusCode, 200, `${name}: 200`)
      t.equal(res.headers['x-cache'], 'HIT', `${name}: cold in this replica, warm in Redis: HIT`)
      t.equal(res.body, first.body, `${name}: the same links as A`)
      t.match(
        await metricsOf(app),
        /gateway_link_cache_l2_lookups_total\{result="hit"\} 3/,
        `${name}: 3 L2 hits counted`,
      )
      const again = await adminLinks(app, full)
      t.equal(again.headers['x-cache'], 'HIT', `${name}: the L2 hit filled L1`)
    }
    t.equal(simulator.callsTo('imageLinks').length, 1, 'one upstream links call for the fleet')
    t.match(
      await metricsOf(at(apps, 0)),
      /gateway_link_cache_l2_lookups_total\{result="miss"\} 3/,
      'A: 3 L2 misses counted',
    )
  },
)

t.test(
  'Redis holds neither links, tokens nor interview IDs in plain text, values or key names',
  { skip: NO_REDIS },
  async (t) => {
    const { apps, simulator, redis } = await replicas(t, 2)
    const token = simulator.sessionToken(small)
    t.equal((await adminLinks(at(apps, 0), full)).statusCode, 200, 'admin links: 200')
    t.equal((await tokenLinks(at(apps, 1), token)).statusCode, 200, 'token links: 200')
    const raw = rawRedis(t, redis.url)
    const keys = await raw.keys('*')
    t.ok(keys.length >= 6, `entries were written (${String(keys.length)} keys)`)
    const secrets = [full, small, token, sha256Hex(token), scopeForToken(token), 'selfie', 'admin']
    for (const key of keys) {
      // The fixed prefix and kind (`igw:links:`, `igw:admin-token:`) are ours; the rest is hashed.
      const name = key.split(':').slice(2).join(':')
      t.notOk(
        secrets.some((s) => name.includes(s)),
        `key ${key} names no interview, token, scope or type`,
      )
      if ((await raw.type(key)) !== 'string') continue
      const value = (await raw.getBuffer(key)) ?? Buffer.alloc(0)
      for (const text of ['http', '/files/', full, small, 'expiresAt', 'X-Amz']) {
        t.notOk(value.includes(Buffer.from(text)), `value of ${key} does not hold ${text}`)
      }
    }
  },
)

t.test(
  'a token-scoped entry is never served to another token, on any replica',
  { skip: NO_REDIS },
  async (t) => {
    const { apps, simulator } = await replicas(t, 3)
    const smallToken = simulator.sessionToken(small)
    const secondToken = simulator.sessionToken(secondId)
    const urlsOf = (body: Json): string[] =>
      Object.values(body.images as Record<string, Json>).map((e) => e.url as string)

    const mine = await tokenLinks(at(apps, 0), smallToken)
    t.equal(mine.headers['x-cache'], 'MISS', 'A, token 1: MISS')
    t.ok(
      urlsOf(mine.json()).every((url) => url.includes(`/files/${small}/`)),
      "token 1 gets its own session's links",
    )

    const other = await tokenLinks(at(apps, 1), secondToken)
    t.equal(other.headers['x-cache'], 'MISS', "B, token 2: a MISS, not token 1's entry")
    t.ok(
      urlsOf(other.json()).every((url) => url.includes(`/files/${secondId}/`)),
      "token 2 gets its own session's links only",
    )
    const admin = await adminLinks(at(apps, 2), small)
    t.equal(
      admin.headers['x-cache'],
      'MISS',
      "C, the admin scope for the same interview: a MISS, not token 1's entry",
    )
    t.equal(simulator.callsTo('imageLinks').length, 3, 'three scopes, three upstream calls')

    const sameToken = await tokenLinks(at(apps, 2), smallToken)
    t.equal(sameToken.headers['x-cache'], 'HIT', 'C, token 1: its own entry, from Redis')
    t.equal(sameToken.body, mine.body, 'the same links A got for token 1')
    t.equal(simulator.callsTo('imageLinks').length, 3, 'no further upstream call')
  },
)

t.test(
  'Redis TTLs: no later than link expiry − margin, nor than the token',
  { skip: NO_REDIS },
  async (t) => {
    const tokenTtlMs = 10 * MINUTE
    const marginMs = 5 * MINUTE
    const { apps, simulator, redis } = await replicas(t, 1, {
      simulator: { sessionTokenTtlMs: tokenTtlMs },
      env: { LINK_CACHE_MARGIN_MS: String(marginMs) },
    })
    const app = at(apps, 0)
    const store = app.linkDeps.linkStore
    if (!store) throw new Error('fleet mode should be on')
    const raw = rawRedis(t, redis.url)

    const before = Date.now()
    const res = await adminLinks(app, full, ['selfie'])
    const entry = res.json().images.selfie
    const earliest = Math.min(
      ...[entry, ...entry.attempts].map((e: Json) => Date.parse(e.expiresAt as string)),
    )
    const adminTtl = await raw.pttl(store.valueKey('admin', full, 'selfie'))
    t.ok(adminTtl > 0, `the admin entry has a TTL (${String(adminTtl)} ms)`)
    t.ok(adminTtl <= earliest - marginMs - before, 'at most until the earliest link expiry less the margin')

    const token = simulator.sessionToken(small)
    const tokenExpiry = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).exp * 1000
    const tokenBefore = Date.now()
    t.equal((await tokenLinks(app, token, ['selfie'])).statusCode, 200, 'token links: 200')
    const tokenTtl = await raw.pttl(store.valueKey(scopeForToken(token), '', 'selfie'))
    t.ok(tokenTtl > 0, `the token entry has a TTL (${String(tokenTtl)} ms)`)
    t.ok(tokenTtl <= tokenExpiry - tokenBefore, "at most until the token's own expiry")
    t.ok(tokenTtl <= tokenTtlMs, 'which is shorter than the links here')
  },
)

t.test('a value that cannot be opened is a miss, and is replaced', { skip: NO_REDIS }, async (t) => {
  const { apps, simulator, redis } = await replicas(t, 2)
  const [a, b] = [at(apps, 0), at(apps, 1)]
  const store = b.linkDeps.linkStore
  if (!store) throw new Error('fleet mode should be on')
  const raw = rawRedis(t, redis.url)
  t.equal(
    (await adminLinks(a, small, ['selfie', 'fullFrameFrontID'])).headers['x-cache'],
    'MISS',
    'A fills Redis',
  )

  const key = store.valueKey('admin', small, 'selfie')
  const sealed = await raw.getBuffer(key)
  t.ok(sealed, 'the selfie entry is in Redis')
  const junk = Buffer.from(sealed ?? '')
  junk[junk.length - 1] = (junk.at(-1) ?? 0) ^ 1
  await raw.set(key, junk, 'KEEPTTL')

  const res = await adminLinks(b, small, ['selfie', 'fullFrameFrontID'])
  t.equal(res.statusCode, 200, 'B: 200')
  t.equal(res.headers['x-cache'], 'PARTIAL', 'B: the altered selfie is a miss, the other type a hit')
  t.same(simulator.callsTo('imageLinks').at(-1)?.images, ['selfie'], 'B asked Incode for the selfie only')
  t.match(
    await metricsOf(b),
    /gateway_link_cache_l2_lookups_total\{result="corrupt"\} 1/,
    'counted as corrupt',
  )
  const now = await raw.getBuffer(key)
  t.ok(now && !now.equals(junk), 'the altered value is gone, replaced by the fresh one')
})
