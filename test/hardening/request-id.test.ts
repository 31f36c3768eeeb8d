import t from 'tap'
import { build, partnerHeaders } from '../helpers/build.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'

// A caller's x-request-id is logged, sent to Incode and returned: one shaped like a credential
// (a JWT, a long key) is replaced by a fresh ID, so that a client pasting its token there does not
// spread it further (Incode is sent the same request.id as the answer carries).
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl'
const KEY = 'k'.repeat(48)

t.test('a credential-shaped x-request-id is replaced; a plain one is kept', async (t) => {
  const { app, trail } = await build(t)
  const ask = (requestId: string) =>
    app.inject({
      method: 'POST',
      url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/image-links`,
      headers: { ...partnerHeaders(), 'x-request-id': requestId },
      payload: { images: ['selfie'] },
    })
  for (const shaped of [JWT, KEY]) {
    const res = await ask(shaped)
    t.equal(res.statusCode, 200, 'served')
    t.not(res.headers['x-request-id'], shaped, 'the answer carries another ID')
    t.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/, 'a fresh UUID')
    t.notOk(JSON.stringify(trail()).includes(shaped), 'the access trail never records it')
  }
  const plain = await ask('order-1234')
  t.equal(plain.headers['x-request-id'], 'order-1234', 'a plain ID is kept')
})

t.test(
  'every answer carries its request id: served, refused, invalid, not found, a malformed URL',
  async (t) => {
    const { app } = await build(t)
    const links = `/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/image-links`
    const answers = {
      served: await app.inject({
        method: 'POST',
        url: links,
        headers: partnerHeaders(),
        payload: { images: ['selfie'] },
      }),
      'no key': await app.inject({ method: 'POST', url: links, payload: { images: ['selfie'] } }),
      'invalid body': await app.inject({
        method: 'POST',
        url: links,
        headers: partnerHeaders(),
        payload: { images: ['selfy'] },
      }),
      'not found': await app.inject({ method: 'GET', url: '/v1/nowhere' }),
      'malformed URL': await app.inject({ method: 'GET', url: '/v1/sessions/%zz/images' }),
    }
    for (const [kind, res] of Object.entries(answers)) {
      t.match(
        String(res.headers['x-request-id']),
        /^[0-9a-f-]{36}$/,
        `${kind} (${res.statusCode}): a request id`,
      )
    }
    const kept = await app.inject({
      method: 'GET',
      url: '/v1/sessions/%zz/images',
      headers: { 'x-request-id': 'order-77' },
    })
    t.equal(kept.headers['x-request-id'], 'order-77', "a malformed URL's answer keeps the caller's plain id")
  },
)
