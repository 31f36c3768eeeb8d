import t from 'tap'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { PARTNER_KEY, partnerHeaders } from '../helpers/build.js'
import { NO_REDIS } from '../helpers/redis.js'
import { post, warmSeededSessions } from '../routes/fixtures/helpers.js'
import { at, replicas } from './fixtures/replicas.js'
import type { FastifyInstance } from 'fastify'

// An L2 hit (cold in this replica, warm in Redis) is answered from the one MGET, without the
// loader: the same answer as the loader path, L1 filled, only what L1 lacked read and counted.

warmSeededSessions()

const { full, small } = SEEDED_INTERVIEW_IDS

const adminLinks = (app: FastifyInstance, interviewId: string, images: string[]) =>
  post(app, `/v1/sessions/${interviewId}/image-links`, { images }, partnerHeaders())

async function l2Lookups(app: FastifyInstance): Promise<Record<string, number>> {
  const text = (await app.inject({ url: '/metrics', headers: { 'x-api-key': PARTNER_KEY } })).body
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^gateway_link_cache_l2_lookups_total\{result="([a-z]+)"\} (\d+)/gm))
    out[m[1] ?? ''] = Number(m[2])
  return out
}

t.test(
  'an L2 hit with a type L1 holds and a type the session lacks: HIT, the same answer, L1 filled',
  { skip: NO_REDIS },
  async (t) => {
    const { apps, simulator } = await replicas(t, 2)
    const [a, b] = [at(apps, 0), at(apps, 1)]
    // The small session has a selfie and no signature; `full` has both.
    const types = ['selfie', 'fullFrameFrontID', 'signature']
    for (const id of [full, small]) {
      const res = await adminLinks(a, id, types)
      t.equal(res.headers['x-cache'], 'MISS', `A fills Redis for ${id}`)
    }
    const fromA = await adminLinks(a, small, types)

    // B holds the selfie in L1 (its own L2 hit of one type), then asks for all three.
    t.equal((await adminLinks(b, small, ['selfie'])).headers['x-cache'], 'HIT', 'B: selfie from Redis')
    const before = await l2Lookups(b)
    const res = await adminLinks(b, small, types)
    t.equal(res.statusCode, 200, 'B: 200')
    t.equal(res.headers['x-cache'], 'HIT', 'B: L1 and Redis together: HIT')
    t.equal(res.body, fromA.body, "B answers as A's L1 does, the missing type included")
    const after = await l2Lookups(b)
    t.equal((after.hit ?? 0) - (before.hit ?? 0), 2, 'two types read from Redis: those L1 lacked')
    t.equal(after.miss ?? 0, before.miss ?? 0, 'no L2 miss')

    const again = await adminLinks(b, small, types)
    t.equal(again.headers['x-cache'], 'HIT', 'B: HIT again')
    t.equal(again.body, res.body, 'the same links')
    t.same(await l2Lookups(b), after, 'from L1: Redis not read again')

    const fullFromB = await adminLinks(b, full, types)
    t.equal(fullFromB.body, (await adminLinks(a, full, types)).body, 'B: the full session as A has it')
    t.equal(simulator.callsTo('imageLinks').length, 2, 'one upstream call per interview for the fleet')
  },
)
