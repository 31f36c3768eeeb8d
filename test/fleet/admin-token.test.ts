import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { FleetSeal } from '../../src/fleet/seal.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { FLEET_SECRET as SECRET, replicas } from './fixtures/replicas.js'
import { partnerHeaders } from '../helpers/build.js'
import { NO_REDIS, startRedis, type RedisServer } from '../helpers/redis.js'

/** Three cold apps (replicas) on one simulator and the test's Redis (fixtures/replicas.ts). */
const fleetOfThree = (t: Test, redis: RedisServer, env: Record<string, string> = {}) =>
  // A busy test machine must not make Redis look slow: these tests are about sharing.
  replicas(t, 3, { redis, env: { REDIS_COMMAND_TIMEOUT_MS: '5000', ...env } })

/** A request that needs the admin token (interview-ID images). */
const images = (app: FastifyInstance) =>
  app.inject({
    method: 'POST',
    url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/images`,
    headers: partnerHeaders(),
    payload: { images: ['signature'] },
  })

t.test('three cold replicas make one executive log-in in all', { skip: NO_REDIS }, async (t) => {
  const redis = await startRedis(t)
  const { apps, simulator } = await fleetOfThree(t, redis)
  // All at once, several per replica: one replica logs in, the others wait for its token.
  const answers = await Promise.all(apps.flatMap((app) => [images(app), images(app), images(app)]))
  t.ok(
    answers.every((res) => res.statusCode === 200),
    `every request is served (${answers.map((res) => res.statusCode).join(',')})`,
  )
  t.equal(simulator.callsTo('adminLogin').length, 1, 'one executive log-in for the three replicas')
  t.ok(
    simulator.callsTo('images').every((call) => call.tokenKind === 'admin' && call.status === 200),
    'every replica used that token with success',
  )

  const token = await apps[0]?.adminTokens?.get({ deadlineAt: Date.now() + 10_000 })
  if (token === undefined) throw new Error('no admin token')
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  const keys = await raw.keys('*')
  t.ok(keys.length > 0, 'the token is kept in Redis')
  t.notOk(
    keys.some((key) => key.includes(token)),
    'no key name holds the token',
  )
  const values = await Promise.all(keys.map((key) => raw.getBuffer(key)))
  const seal = new FleetSeal(SECRET)
  t.ok(
    values.some((value) => value && seal.open(value)?.includes(Buffer.from(token))),
    'one value is the token, sealed',
  )
  t.notOk(
    values.some((value) => value?.includes(Buffer.from(token)) || value?.includes(Buffer.from('eyJ'))),
    'the token is not in Redis as plain text',
  )
})

t.test('Redis down: each replica logs in itself and serves', { skip: NO_REDIS }, async (t) => {
  const redis = await startRedis(t)
  const { apps, simulator } = await fleetOfThree(t, redis)
  await redis.kill()
  const answers = await Promise.all(apps.map((app) => images(app)))
  t.same(
    answers.map((res) => res.statusCode),
    [200, 200, 200],
    'every replica serves',
  )
  t.equal(simulator.callsTo('adminLogin').length, 3, 'each replica logged in itself')
})

t.test('a replica coming later takes the token from Redis', { skip: NO_REDIS }, async (t) => {
  const redis = await startRedis(t)
  const { apps, simulator } = await fleetOfThree(t, redis)
  const [first, ...later] = apps
  if (!first) throw new Error('no app')
  t.equal((await images(first)).statusCode, 200, 'the first replica serves')
  for (const app of later) t.equal((await images(app)).statusCode, 200, 'a later replica serves')
  t.equal(simulator.callsTo('adminLogin').length, 1, 'only the first one logged in')
})
