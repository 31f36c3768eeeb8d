import type { FastifyInstance, InjectOptions } from 'fastify'
import t, { type Test } from 'tap'
import type { ImageType } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS, type Simulator } from '../../src/simulator/index.js'
import type { UpstreamEndpoint } from '../../src/upstream/types.js'
import { build, partnerHeaders } from '../helpers/build.js'
import { metricValue } from '../upstream/helpers.js'

const { small } = SEEDED_INTERVIEW_IDS
const CACHED: ImageType[] = ['selfie', 'signature']

function v1(path: string, images: readonly ImageType[]): InjectOptions {
  return { method: 'POST', url: path, headers: partnerHeaders(), payload: JSON.stringify({ images }) }
}

const links = (images: readonly ImageType[]) => v1(`/v1/sessions/${small}/image-links`, images)

/** An app whose breakers open after two failures and stay open for the whole test. */
async function setup(t: Test): Promise<{ app: FastifyInstance; simulator: Simulator }> {
  const harness = await build(t, {
    env: { BREAKER_FAILURE_THRESHOLD: '2', BREAKER_RESET_MS: '600000', RATE_LIMIT_MAX: '1000000' },
  })
  const first = await harness.app.inject(links(CACHED))
  t.equal(first.headers['x-cache'], 'MISS', 'the links are cached before the outage')
  return harness
}

/** Fails `endpoint` at Incode and sends `request` until its breaker opens (bounded). */
async function trip(
  app: FastifyInstance,
  simulator: Simulator,
  endpoint: UpstreamEndpoint & ('images' | 'imageLinks'),
  request: InjectOptions,
): Promise<void> {
  simulator.setFaults({ errorRate: 1, errorStatus: 500, endpoints: [endpoint] })
  for (let i = 0; i < 10 && app.incode.breakerState(endpoint) !== 'open'; i++) await app.inject(request)
}

const lookups = (app: FastifyInstance, result: string) =>
  metricValue(app.gatewayMetrics.cacheLookups, { result })

void t.test(
  "the base64 endpoint's open breaker does not make a cached link a HIT_WHILE_BREAKER_OPEN",
  async (t) => {
    const { app, simulator } = await setup(t)
    await trip(app, simulator, 'images', v1(`/v1/sessions/${small}/images`, ['signature']))
    t.equal(app.incode.breakerState('images'), 'open', "the images endpoint's breaker is open")
    t.equal(app.incode.breakerState('imageLinks'), 'closed', "the links endpoint's breaker is closed")

    const hitsBefore = await lookups(app, 'HIT')
    const cached = await app.inject(links(CACHED))
    t.equal(cached.headers['x-cache'], 'HIT', 'the cached links are served')
    t.equal(await lookups(app, 'HIT'), hitsBefore + 1, 'counted as a plain HIT')
    t.equal(await lookups(app, 'HIT_WHILE_BREAKER_OPEN'), 0, 'not as served while the breaker is open')
  },
)

void t.test("the links endpoint's open breaker makes a cached link a HIT_WHILE_BREAKER_OPEN", async (t) => {
  const { app, simulator } = await setup(t)
  await trip(app, simulator, 'imageLinks', links(['fullFrameFrontID']))
  t.equal(app.incode.breakerState('imageLinks'), 'open', "the links endpoint's breaker is open")
  t.equal(app.incode.breakerState('images'), 'closed', "the images endpoint's breaker is closed")

  const hitsBefore = await lookups(app, 'HIT')
  const cached = await app.inject(links(CACHED))
  t.equal(cached.headers['x-cache'], 'HIT', 'the cached links are served while the links breaker is open')
  t.equal(await lookups(app, 'HIT_WHILE_BREAKER_OPEN'), 1, 'counted as served while the breaker is open')
  t.equal(await lookups(app, 'HIT'), hitsBefore, 'not as a plain HIT')
})
