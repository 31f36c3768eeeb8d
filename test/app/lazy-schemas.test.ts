import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { LazySchemaCompilers } from '../../src/schemaCompilers.js'
import { PARTNER_KEY, TEST_API_KEYS } from '../helpers/build.js'

const config = loadConfig({
  INCODE_BASE_URL: 'http://127.0.0.1:9',
  INCODE_API_KEY: 'unused',
  LOG_LEVEL: 'silent',
  API_KEYS: TEST_API_KEYS,
  SHED_EVENT_LOOP_DELAY_MS: '60000',
})
const interview = '662f1a3b9c4e5d6f7a8b9c01'

async function answers(lazy: LazySchemaCompilers | undefined) {
  const app = await buildApp(config, lazy ? { lazySchemas: lazy } : {})
  await app.ready()
  const pendingAtReady = lazy?.pending()
  const headers = { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY }
  const bad = await app.inject({
    method: 'POST',
    url: `/v1/sessions/${interview}/images`,
    headers,
    payload: { images: ['selfie'], extra: 1 },
  })
  const unknownType = await app.inject({
    method: 'POST',
    url: `/v1/sessions/${interview}/image-links`,
    headers,
    payload: { images: ['notAType'] },
  })
  const health = await app.inject({ method: 'GET', url: '/healthz' })
  await lazy?.warmUp()
  const pendingAfter = lazy?.pending()
  await app.close()
  const shape = (res: typeof bad) => ({
    status: res.statusCode,
    type: res.headers['content-type'],
    body: res.json(),
  })
  return {
    pendingAtReady,
    pendingAfter,
    bad: shape(bad),
    unknownType: shape(unknownType),
    health: shape(health),
  }
}

t.test('schemas compiled on first use validate and serialise exactly as eager ones', async (t) => {
  const eager = await answers(undefined)
  const lazy = await answers(new LazySchemaCompilers())
  t.ok((lazy.pendingAtReady ?? 0) > 20, `${lazy.pendingAtReady} compilations were left for later at ready`)
  t.equal(lazy.pendingAfter, 0, 'warmUp compiled the rest')
  t.equal(lazy.bad.status, 400, 'an unknown property is still refused')
  t.equal(lazy.unknownType.status, 400, 'an unknown image type is still refused')
  // Request ids differ from app to app.
  const withoutIds = (body: unknown) =>
    JSON.parse(JSON.stringify(body), (key, value: unknown) =>
      key === 'requestId' ? undefined : value,
    ) as unknown
  for (const what of ['bad', 'unknownType', 'health'] as const) {
    t.equal(lazy[what].status, eager[what].status, `${what}: same status`)
    t.equal(lazy[what].type, eager[what].type, `${what}: same content type`)
    t.same(withoutIds(lazy[what].body), withoutIds(eager[what].body), `${what}: same body`)
  }
})
