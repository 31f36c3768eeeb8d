import t from 'tap'
import { build } from '../helpers/build.js'

// Address-keyed limits behind a load balancer: with TRUST_PROXY naming it, each caller behind it
// has its own quota; without, they all share the balancer's.
const limits = { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '600000' }

async function statuses(
  app: Awaited<ReturnType<typeof build>>['app'],
  forwardedFor: string,
): Promise<number[]> {
  const codes: number[] = []
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/session/image-links',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
      payload: { images: ['selfie'] },
      remoteAddress: '127.0.0.1',
    })
    codes.push(res.statusCode)
  }
  return codes
}

t.test('TRUST_PROXY set: callers behind the balancer are limited one by one', async (t) => {
  const { app } = await build(t, { env: { ...limits, TRUST_PROXY: '127.0.0.1' } })
  t.same(await statuses(app, '198.51.100.1'), [401, 401, 429], 'the first caller uses up its own quota')
  t.same(await statuses(app, '198.51.100.2'), [401, 401, 429], 'the second caller still has its own')
})

t.test('TRUST_PROXY empty: X-Forwarded-For is not believed', async (t) => {
  const { app } = await build(t, { env: limits })
  t.same(await statuses(app, '198.51.100.1'), [401, 401, 429], 'the quota of the socket address')
  t.same(await statuses(app, '198.51.100.2'), [429, 429, 429], 'a forged X-Forwarded-For gets no fresh quota')
})
