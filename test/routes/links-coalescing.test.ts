import t from 'tap'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { partnerHeaders } from '../helpers/build.js'
import { buildForRoutes, post, type Json, warmSeededSessions } from './fixtures/helpers.js'

warmSeededSessions()

const { full, small, secondId } = SEEDED_INTERVIEW_IDS

t.test('200 concurrent identical cold requests → one upstream call, 200 equal answers', async (t) => {
  // Upstream latency keeps the first load in flight while the others arrive.
  const { app, simulator } = await buildForRoutes(t, {
    simulator: { latency: { fixedMs: 200, perMiBMs: 0 } },
  })
  const body = { images: ['selfie', 'fullFrameFrontID', 'document', 'croppedFace'] }
  const answers = await Promise.all(
    Array.from({ length: 200 }, () => post(app, `/v1/sessions/${full}/image-links`, body, partnerHeaders())),
  )
  t.ok(
    answers.every((res) => res.statusCode === 200),
    'every answer is 200',
  )
  const first = answers[0]?.body
  t.ok(first !== undefined && first.length > 0, 'a body')
  t.equal(answers.filter((res) => res.body === first).length, 200, 'all 200 bodies are equal')
  t.same(
    Object.keys(answers[0]?.json().images ?? {}),
    ['selfie', 'fullFrameFrontID', 'document'],
    'with the linkable types',
  )
  t.ok(
    answers.every((res) => res.headers['x-cache'] === 'MISS'),
    'each is a MISS (served by the one load, not from the cache)',
  )
  t.equal(simulator.callsTo('imageLinks').length, 1, 'exactly one upstream imageLinks call')
  t.equal(simulator.callsTo('adminLogin').length, 1, 'and one admin log-in')

  const after = await post(app, `/v1/sessions/${full}/image-links`, body, partnerHeaders())
  t.equal(after.headers['x-cache'], 'HIT', 'the load filled the cache')
  t.equal(after.body, first, 'with the same links')
})

t.test('session-token links: each token sees only its own session, cached per token', async (t) => {
  const { app, simulator } = await buildForRoutes(t)
  const sessionLinks = (token: string) =>
    post(
      app,
      '/v1/session/image-links',
      { images: ['selfie', 'fullFrameFrontID', 'signature'] },
      { 'content-type': 'application/json', 'x-incode-session-token': token },
    )
  const urlsOf = (body: Json): string[] =>
    Object.values(body.images as Record<string, Json>).flatMap((entry) => [
      entry.url as string,
      ...(entry.attempts as Json[]).map((a) => a.url as string),
    ])

  const smallToken = simulator.sessionToken(small)
  const secondToken = simulator.sessionToken(secondId)

  const a = await sessionLinks(smallToken)
  t.equal(a.statusCode, 200, 'first token: 200')
  t.equal(a.headers['x-cache'], 'MISS', 'first token: MISS')
  t.equal(a.headers['cache-control'], 'no-store, private', 'no-store')
  const aUrls = urlsOf(a.json())
  t.ok(aUrls.length >= 3, 'links for the first session')
  t.ok(
    aUrls.every((url) => url.includes(`/files/${small}/`)),
    'every link is the first session’s',
  )

  const b = await sessionLinks(secondToken)
  t.equal(b.statusCode, 200, 'second token: 200')
  t.equal(b.headers['x-cache'], 'MISS', 'second token: a MISS, not a HIT of the first token’s links')
  const bUrls = urlsOf(b.json())
  t.ok(bUrls.length >= 2, 'links for the second session')
  t.ok(
    bUrls.every((url) => url.includes(`/files/${secondId}/`)),
    'every link is the second session’s',
  )
  t.same(b.json().missing, ['signature'], 'the second session has no signature')

  const again = await sessionLinks(smallToken)
  t.equal(again.headers['x-cache'], 'HIT', 'the same token again: HIT')
  t.same(again.json(), a.json(), 'the same links')

  const calls = simulator.callsTo('imageLinks')
  t.equal(calls.length, 2, 'one upstream call per token')
  t.same(
    calls.map((call) => [call.tokenKind, call.interviewId]),
    [
      ['session', small],
      ['session', secondId],
    ],
    'each made with the caller’s own session token',
  )
  t.equal(simulator.callsTo('adminLogin').length, 0, 'no admin log-in')

  const viaAdmin = await post(
    app,
    `/v1/sessions/${small}/image-links`,
    { images: ['selfie', 'fullFrameFrontID', 'signature'] },
    partnerHeaders(),
  )
  t.equal(viaAdmin.headers['x-cache'], 'MISS', 'the partner route does not share a token’s cache entries')

  const noToken = await post(app, '/v1/session/image-links', { images: ['selfie'] })
  t.equal(noToken.statusCode, 401, 'no token: 401')
  t.equal(noToken.json().code, 'TOKEN_MISSING', 'TOKEN_MISSING')
  const badToken = await sessionLinks('forged.token.value')
  t.equal(badToken.statusCode, 401, 'a bad token is refused, not served from any cache')
})
