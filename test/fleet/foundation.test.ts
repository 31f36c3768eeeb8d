import { setTimeout } from 'node:timers/promises'
import t from 'tap'
import { Redis } from 'ioredis'
import { FleetSeal } from '../../src/fleet/seal.js'
import { build } from '../helpers/build.js'
import { NO_REDIS, startRedis } from '../helpers/redis.js'

/** Resolves when the connection is ready; unlike events.once, a failed attempt (retried by ioredis) does not reject. */
const redisReady = (redis: Redis): Promise<unknown> => new Promise((resolve) => redis.once('ready', resolve))

const SECRET = 'fleet-secret-for-tests-0123456789abcdef'

t.test('seal: values round-trip, are not plain text, and altered values are refused', async (t) => {
  const seal = new FleetSeal(SECRET)
  const plain = '{"selfie":"https://storage.example/sig?token=abc"}'
  const sealed = seal.seal(plain)
  t.notOk(sealed.includes(Buffer.from('https://')), 'the link is not readable in the sealed value')
  t.equal(seal.open(sealed)?.toString(), plain, 'the value opens')
  const altered = Buffer.from(sealed)
  altered[altered.length - 1] = (altered.at(-1) ?? 0) ^ 1
  t.equal(seal.open(altered), undefined, 'a changed byte is refused (GCM tag)')
  t.equal(seal.open(Buffer.from('junk')), undefined, 'junk is refused')
  t.equal(
    new FleetSeal('another-secret-0123456789abcdef-xyz').open(sealed),
    undefined,
    'another secret cannot open it',
  )
})

t.test('seal: a rotated secret still reads old values and old key names', async (t) => {
  const before = new FleetSeal(SECRET)
  const after = new FleetSeal('the-new-fleet-secret-0123456789abcdef', [SECRET])
  const sealed = before.seal('value')
  t.equal(after.open(sealed)?.toString(), 'value', 'an old value opens with the new secret configured')
  t.equal(
    after.names('links', 'scope', 'id')[1],
    before.name('links', 'scope', 'id'),
    'old names are tried second',
  )
  t.not(after.name('links', 'scope', 'id'), before.name('links', 'scope', 'id'), 'writes use the new name')
  t.notMatch(before.name('links', 'interview-123'), /interview-123/, 'key names reveal no interview ID')
})

t.test(
  'fleet: degraded when Redis dies, recovered when it returns; readiness stays ready',
  { skip: NO_REDIS },
  async (t) => {
    const redis = await startRedis(t)
    const { app } = await build(t, {
      env: { REDIS_URL: redis.url, FLEET_SECRET: SECRET, REDIS_BREAKER_RESET_MS: '200' },
    })
    const fleet = app.fleet
    if (!fleet) throw new Error('fleet mode should be on')
    if (fleet.redis.status !== 'ready') await redisReady(fleet.redis)
    t.equal(
      await fleet.run((r) => r.set(fleet.key('probe', 'a'), fleet.seal.seal('x'))),
      'OK',
      'a command runs',
    )
    let ready = await app.inject({ url: '/readyz' })
    t.match(
      ready.json(),
      { checks: { fleet: { ok: true, detail: 'shared state in Redis' } } },
      'readiness shows shared state',
    )

    await redis.kill()
    // Commands now fail (no queueing) and the replica says it is degraded.
    while (!fleet.degraded) await fleet.run((r) => r.get('x'))
    t.equal(await fleet.run((r) => r.get('x')), undefined, 'a command answers undefined, without throwing')
    ready = await app.inject({ url: '/readyz' })
    t.equal(ready.statusCode, 200, 'readiness stays 200 without Redis')
    t.match(
      ready.json(),
      { checks: { fleet: { ok: true, detail: /degraded/ } } },
      'and reports degraded mode',
    )
    const metrics = await app.inject({
      url: '/metrics',
      headers: { 'x-api-key': 'test-partner-key-0123456789' },
    })
    t.match(metrics.body, /gateway_fleet_degraded 1/, 'the degraded gauge is 1')

    await redis.start()
    // ioredis reconnects by itself; the breaker lets a probe through after its reset time.
    for (;;) {
      if (fleet.redis.status !== 'ready') await redisReady(fleet.redis)
      if ((await fleet.run((r) => r.ping())) === 'PONG') break
      await setTimeout(50)
    }
    t.notOk(fleet.degraded, 'the replica leaves degraded mode')
    t.equal(await fleet.run((r) => r.ping()), 'PONG', 'commands run again after Redis returns')
  },
)

t.test(
  'fleet: a value written by one replica is read by another and is not plain text in Redis',
  { skip: NO_REDIS },
  async (t) => {
    const redis = await startRedis(t)
    const env = { REDIS_URL: redis.url, FLEET_SECRET: SECRET }
    const a = (await build(t, { env })).app.fleet
    const b = (await build(t, { env })).app.fleet
    if (!a || !b) throw new Error('fleet mode should be on')
    for (const f of [a, b]) if (f.redis.status !== 'ready') await redisReady(f.redis)
    const key = a.key('links', 'scope', 'interview-1')
    t.equal(key, b.key('links', 'scope', 'interview-1'), 'both replicas name the key alike')
    await a.run((r) => r.set(key, a.seal.seal('https://link.example/x')))
    const raw = new Redis(redis.url)
    t.teardown(() => raw.disconnect())
    const stored = await raw.getBuffer(key)
    t.ok(stored && !stored.includes(Buffer.from('link.example')), 'Redis holds no plain text')
    const read = await b.run((r) => r.getBuffer(key))
    t.equal(read && b.seal.open(read)?.toString(), 'https://link.example/x', 'the other replica reads it')
    const keys = await raw.keys('*')
    t.notOk(
      keys.some((k) => k.includes('interview-1')),
      'no key name holds the interview ID',
    )

    let resolveHeard: (m: string) => void = () => {}
    const heard = new Promise<string>((resolve) => (resolveHeard = resolve))
    // subscribe() resolves once Redis has acknowledged the subscription.
    await b.subscribe('invalidate', (m) => {
      resolveHeard(m.toString())
    })
    t.equal(await a.publish('invalidate', 'interview-1'), true, 'the message is published')
    t.equal(await heard, 'interview-1', 'pub/sub reaches the other replica')
  },
)
