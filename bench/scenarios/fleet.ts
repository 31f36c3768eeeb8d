import { Redis } from 'ioredis'
import { Pool } from 'undici'
import { performance } from 'node:perf_hooks'
import { findRedisServer, startFleet, type RunningFleet } from '../../scripts/fleet/launch.js'
import { startSimulator, type Simulator } from '../../src/simulator/index.js'
import { mulberry32 } from '../../src/simulator/prng.js'
import { call, serviceEnv, serviceHeaders } from '../lib/stack.js'
import { fmt, median, percentile, ratio, round } from '../lib/stats.js'
import { groupCpuMs, pinGroup, pinProcess, wrk } from '../lib/wrk.js'
import { type Ctx, LINK_TYPES, type ScenarioResult, body, rotate } from './shared.js'

// ---- fleet mode (issue 14): what Redis costs on hits and saves on misses ---------------------

const PAYLOAD = body(LINK_TYPES)
const MODEL_REDIS_TIMEOUT_MS = 1000

/** A well-formed interview ID per index (the simulator's synthetic interviews answer them). */
const interviewId = (space: string, i: number) => `${space}${i.toString(16).padStart(22, '0')}`
const linksPath = (id: string) => `/v1/sessions/${id}/image-links`

/** The Zipf(s) rank of an interview in [0, n), drawn by inverse CDF from a seeded PRNG. */
function zipfSampler(n: number, s: number, seed: number): () => number {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / Math.pow(i + 1, s)
  const rnd = mulberry32(seed)
  return () => {
    const x = rnd() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cdf[mid] ?? 0) < x) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

/** HTTP clients per replica, keep-alive; `get` answers status, X-Cache and the time taken (ms). */
class Clients {
  readonly #pools: Pool[]
  constructor(readonly fleet: RunningFleet) {
    this.#pools = fleet.replicas.map((r) => new Pool(r.url, { connections: 64 }))
  }
  async get(replica: number, path: string): Promise<{ status: number; cache: string; ms: number }> {
    const pool = this.#pools[replica % this.#pools.length] as Pool
    const t0 = performance.now()
    const res = await pool.request({ method: 'POST', path, headers: serviceHeaders(), body: PAYLOAD })
    await res.body.dump()
    const cache = res.headers['x-cache']
    return {
      status: res.statusCode,
      cache: typeof cache === 'string' ? cache : '',
      ms: performance.now() - t0,
    }
  }
  async close(): Promise<void> {
    await Promise.all(this.#pools.map((p) => p.close()))
  }
}

/** Runs `count` jobs with `concurrency` at a time. */
async function inParallel(
  count: number,
  concurrency: number,
  job: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) await job(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}

/** Sum of a counter's samples in Prometheus text, by label value of `label`. */
function counter(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {}
  const re = new RegExp(`^${name}\\{([^}]*)\\} ([0-9.e+]+)$`, 'gm')
  for (const m of text.matchAll(re)) {
    const labels = m[1] ?? ''
    const value = new RegExp(`${label}="([^"]*)"`).exec(labels)?.[1] ?? ''
    out[value] = (out[value] ?? 0) + Number(m[2])
  }
  return out
}

async function fleetMetrics(
  fleet: RunningFleet,
): Promise<{ l1: Record<string, number>; l2: Record<string, number> }> {
  const l1: Record<string, number> = {}
  const l2: Record<string, number> = {}
  for (const r of fleet.replicas) {
    const res = await call({ method: 'GET', url: `${r.url}/metrics`, headers: serviceHeaders() })
    const text = res.body.toString()
    for (const [k, v] of Object.entries(counter(text, 'gateway_link_cache_requests_total', 'result')))
      l1[k] = (l1[k] ?? 0) + v
    for (const [k, v] of Object.entries(counter(text, 'gateway_link_cache_l2_lookups_total', 'result')))
      l2[k] = (l2[k] ?? 0) + v
  }
  return { l1, l2 }
}

/** Redis's own counters: commands by name (INFO commandstats, INFO itself left out) and memory. */
class RedisProbe {
  readonly client: Redis
  constructor(url: string) {
    this.client = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 })
  }
  async commands(): Promise<Record<string, number>> {
    const text = await this.client.info('commandstats')
    const out: Record<string, number> = {}
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
      if (m[1] !== 'info') out[m[1] ?? ''] = Number(m[2])
    return out
  }
  async usedMemory(): Promise<number> {
    const text = await this.client.info('memory')
    return Number(/^used_memory:(\d+)/m.exec(text)?.[1] ?? Number.NaN)
  }
  async countKeys(pattern: string): Promise<number> {
    let cursor = '0'
    let count = 0
    do {
      const [nextCursor, keys] = await this.client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = nextCursor
      count += keys.length
    } while (cursor !== '0')
    return count
  }
  /** Up to `n` key names matching `pattern` (SCAN, stops once it has them). */
  async someKeys(pattern: string, n: number): Promise<string[]> {
    const found: string[] = []
    let cursor = '0'
    do {
      const [nextCursor, keys] = await this.client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = nextCursor
      found.push(...keys)
    } while (cursor !== '0' && found.length < n)
    return found.slice(0, n)
  }
  /** Milliseconds for one MGET of `keys`, from the call to its answer. */
  async timeMget(keys: string[]): Promise<number> {
    const t0 = performance.now()
    await this.client.mget(keys)
    return performance.now() - t0
  }
  close(): void {
    this.client.disconnect()
  }
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0)
  return out
}
const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0)

function fleetEnv(sim: Simulator): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(serviceEnv(sim.url, 0))) if (v !== undefined && k !== 'PORT') env[k] = v
  return env
}

// ---- the parts ------------------------------------------------------------------------------

/**
 * The L1 comparison's rounds. The two replicas (with and without REDIS_URL) run at the same time,
 * each under its own wrk, sharing the server core(s): the ratio of their req/s is the inverse
 * ratio of their costs per request, measured under the same conditions at the same moment.
 * Measured one after the other instead (5 × 5 s, then 9 × 3 s, alternating), the rounds' ratios
 * went 1.14, 1.08, 0.96, 0.69, 0.81 in one run and 0.38 to 1.12 in another: bursts of load from
 * elsewhere on this shared machine last seconds and fell on one replica's turn. The quick profile
 * keeps links warm's rounds.
 */
const L1_ROUNDS = { rounds: 6, durationSec: 4 }

/** The L2 section's blocks: misses through A, then as many L2 hits on B, then as many L1 hits. */
const RUN = 25

/** L1 hits with and without REDIS_URL: one replica each, wrk as in links warm, alternating. */
async function l1Throughput(ctx: Ctx, sim: Simulator) {
  const p = ctx.profile.name === 'quick' ? ctx.profile.linksWarm : { ...ctx.profile.linksWarm, ...L1_ROUNDS }
  const env = fleetEnv(sim)
  const withRedis = await startFleet({ replicas: 1, simulator: sim, env, loadBalancer: false })
  const without = await startFleet({ replicas: 1, simulator: sim, env, loadBalancer: false, redis: false })
  const id = interviewId('f1', 1)
  const contenders = [
    { name: 'redis', fleet: withRedis },
    { name: 'local', fleet: without },
  ]
  const rps: Record<string, number[]> = { redis: [], local: [] }
  /** The replica's CPU time per request answered (µs), per round: what steal of wall time does not move. */
  const cpuUs: Record<string, number[]> = { redis: [], local: [] }
  const problems: string[] = []
  try {
    for (const c of contenders) {
      const url = `${c.fleet.replicas[0]?.url ?? ''}${linksPath(id)}`
      await call({ method: 'POST', url, headers: serviceHeaders(), body: PAYLOAD })
      const again = await call({ method: 'POST', url, headers: serviceHeaders(), body: PAYLOAD })
      if (again.headers['x-cache'] !== 'HIT')
        throw new Error(`fleet L1 (${c.name}): the second answer was not a hit`)
      for (const r of c.fleet.replicas) pinGroup(r.pid, ctx.cores.serverCpus)
      if (c.fleet.redis) pinGroup(c.fleet.redis.child.pid, ctx.cores.serverCpus)
    }
    // Both at once, each with its own wrk: the two replicas share the server core(s), so a burst of
    // load from elsewhere slows both alike, and their ratio is that of their costs per request.
    for (let round = 0; round < p.rounds; round++) {
      await Promise.all(
        rotate(contenders, round).map(async (c) => {
          const pid = c.fleet.replicas[0]?.pid ?? 0
          const cpuBefore = groupCpuMs(pid)
          const res = await wrk(ctx.wrk, {
            url: `${c.fleet.replicas[0]?.url ?? ''}${linksPath(id)}`,
            method: 'POST',
            headers: serviceHeaders(),
            body: PAYLOAD,
            connections: p.connections,
            durationSec: p.durationSec,
            cpus: ctx.cores.loadCpus,
            workDir: ctx.workDir,
          })
          rps[c.name]?.push(res.rps)
          if (res.requests > 0) cpuUs[c.name]?.push(((groupCpuMs(pid) - cpuBefore) * 1000) / res.requests)
          if (res.non2xx + res.errors + res.timeouts > 0)
            problems.push(
              `L1 ${c.name}: ${res.non2xx} non-2xx, ${res.errors} errors, ${res.timeouts} timeouts`,
            )
        }),
      )
      ctx.progress(
        `fleet L1 round ${round + 1}/${p.rounds}: redis ${fmt(rps.redis?.at(-1) ?? 0, 0)}, local ${fmt(rps.local?.at(-1) ?? 0, 0)} req/s at once`,
      )
    }
  } finally {
    await withRedis.stop()
    await without.stop()
  }
  const redisRps = median(rps.redis ?? [])
  const localRps = median(rps.local ?? [])
  const pairRatios = (rps.redis ?? []).map((r, i) => ratio(r, rps.local?.[i] ?? Number.NaN))
  const cpu = { redis: median(cpuUs.redis ?? []), local: median(cpuUs.local ?? []) }
  return { redisRps, localRps, ratio: median(pairRatios), pairRatios, rounds: p, rps, cpu, problems }
}

/**
 * On a 3-replica fleet: misses through replica A (interviews never asked), then, block by block,
 * B's first hits (L2: cold in B, warm in Redis) and B's repeats (L1); latency of each request and
 * Redis commands per request of each kind (INFO commandstats around each block). Then the herd.
 */
async function l2AndCommands(ctx: Ctx, sim: Simulator, fleet: RunningFleet, probe: RedisProbe) {
  const n = ctx.profile.fleet.l2Interviews
  const clients = new Clients(fleet)
  // Pinned as the other latency runs: the replicas on the server core(s), this process (the load:
  // one request at a time) on the load core. Redis goes on the load core too: it stands for a
  // Redis on a host or core of its own, and that core is idle while the sequential client waits
  // for the answer. Beside the replica instead, Redis runs on the replica's core as soon as the
  // replica writes its MGET, in the middle of the request, and the read made ahead of the body
  // overlaps nothing (added p50 0.60–0.75 ms in three scratch runs, 0.55–0.58 ms with Redis on
  // the other core, alternated), which no deployment with Redis elsewhere has.
  for (const r of fleet.replicas) pinGroup(r.pid, ctx.cores.serverCpus)
  if (fleet.redis) pinGroup(fleet.redis.child.pid, ctx.cores.loadCpus)
  pinProcess(process.pid, ctx.cores.loadCpus)
  const unpin = () => {
    pinProcess(process.pid, undefined)
    if (fleet.redis) pinGroup(fleet.redis.child.pid, undefined)
    for (const r of fleet.replicas) pinGroup(r.pid, undefined)
  }
  const ids = Array.from({ length: n }, (_, i) => interviewId('f2', i))
  const cmds = {
    miss: {} as Record<string, number>,
    l2: {} as Record<string, number>,
    l1: {} as Record<string, number>,
  }
  const add = (into: Record<string, number>, d: Record<string, number>) => {
    for (const [k, v] of Object.entries(d)) into[k] = (into[k] ?? 0) + v
  }
  // `floor`: one MGET of six link entries from this process (ioredis, sequential), timed after
  // each L2 hit: the Redis round trip alone, which an L2 hit cannot avoid, on the same machine.
  // The L2, L1 and floor times come from the paired pass below; the blocks count commands, and
  // their times (`runL2`, `runL1`: B's first L2 hits, and L1 hits back to back) are reported beside.
  const latency = {
    l2: [] as number[],
    l1: [] as number[],
    miss: [] as number[],
    floor: [] as number[],
    runL2: [] as number[],
    runL1: [] as number[],
  }
  const unexpected: string[] = []
  const expect = (what: string, r: { status: number; cache: string }, cache: string) => {
    if (r.status !== 200 || r.cache !== cache) unexpected.push(`${what}: ${r.status} X-Cache ${r.cache}`)
  }
  try {
    // A warm-up of each replica's connections and code paths, on interviews outside the measure.
    for (let i = 0; i < 30; i++) await clients.get(i % 3, linksPath(interviewId('f9', i % 10)))
    for (let start = 0; start < n; start += RUN) {
      const block = ids.slice(start, start + RUN)
      let before = await probe.commands()
      for (const id of block) {
        const r = await clients.get(0, linksPath(id))
        expect('miss', r, 'MISS')
        latency.miss.push(r.ms)
      }
      let after = await probe.commands()
      add(cmds.miss, delta(after, before))
      const sixEntries = await probe.someKeys('igw:link-set:*', 6)
      before = await probe.commands() // after the SCAN, which is the bench's, not the replica's
      for (const id of block) {
        const r = await clients.get(1, linksPath(id))
        expect('L2 hit', r, 'HIT')
        latency.runL2.push(r.ms)
        await probe.timeMget(sixEntries)
      }
      after = await probe.commands()
      // The floor's own MGETs are not the replica's: take them out of the L2 hits' count (from
      // the block's difference only: `after` is the next block's starting point as it is).
      const l2Block = delta(after, before)
      if (l2Block.mget !== undefined) l2Block.mget -= block.length
      add(cmds.l2, l2Block)
      before = after
      for (const id of block) {
        const r = await clients.get(1, linksPath(id))
        expect('L1 hit', r, 'HIT')
        latency.runL1.push(r.ms)
      }
      add(cmds.l1, delta(await probe.commands(), before))
    }
    // Latency, paired: Redis is filled for n fresh interviews first (through A, 8 at a time), then
    // per interview, one request after another: the floor, B's L2 hit, the floor again, B's L1
    // hit. Both hits come after the same pause (B idle during a floor MGET), on a replica whose
    // code the blocks above have warmed (400 L2 hits). The blocks' own times are reported beside
    // but are not the comparison: they are B's first L2 hits (in a scratch run, a second pass of
    // blocks took B's L2 hits from 0.55 to 0.35 ms inside the replica, its L1 hits from 0.20 to
    // 0.07 ms), and there L1 hits come back to back while each L2 hit follows a pause (a replica
    // answering right after a pause took 0.03 ms longer for the same L1 hit).
    const paired = Array.from({ length: n }, (_, i) => interviewId('f4', i))
    await inParallel(n, 8, async (i) => {
      const r = await clients.get(0, linksPath(paired[i] ?? ''))
      expect('miss (paired)', r, 'MISS')
    })
    const sixPaired = await probe.someKeys('igw:link-set:*', 6)
    for (const id of paired) {
      latency.floor.push(await probe.timeMget(sixPaired))
      const l2 = await clients.get(1, linksPath(id))
      expect('L2 hit (paired)', l2, 'HIT')
      latency.l2.push(l2.ms)
      latency.floor.push(await probe.timeMget(sixPaired))
      const l1 = await clients.get(1, linksPath(id))
      expect('L1 hit (paired)', l1, 'HIT')
      latency.l1.push(l1.ms)
    }
    // The herd: `herd` requests at once for one interview no replica has, spread over the three.
    // Not a latency figure: unpinned, as before this scenario pinned anything (three replicas on one
    // core answering 300 requests at once stalled their event loops past the 100 ms Redis command
    // timeout, and replicas that gave up on Redis each asked Incode: 1, 1, 3 calls in one run).
    unpin()
    const herdCalls: number[] = []
    for (let round = 0; round < ctx.profile.coalescing.rounds; round++) {
      const id = interviewId('f3', round)
      sim.resetCalls()
      const answers = await Promise.all(
        Array.from({ length: ctx.profile.fleet.herd }, (_, i) => clients.get(i % 3, linksPath(id))),
      )
      const failed = answers.filter((a) => a.status !== 200).length
      if (failed > 0) unexpected.push(`herd round ${round + 1}: ${failed} answers not 200`)
      herdCalls.push(sim.callsTo('imageLinks').filter((c) => c.interviewId === id).length)
      ctx.progress(`fleet herd round ${round + 1}: ${herdCalls.at(-1)} upstream call(s)`)
    }
    return { n, cmds, latency, herdCalls, unexpected }
  } finally {
    unpin()
    await clients.close()
  }
}

interface ModelRun {
  requests: number
  upstreamCalls: number
  l1: Record<string, number>
  l2: Record<string, number>
  seconds: number
  failed: number
  redis?: { usedMemoryDelta: number; linkEntries: number; keys: number; commands: Record<string, number> }
}

/** The traffic model on a fresh 3-replica fleet, with or without Redis. */
async function trafficModel(ctx: Ctx, sim: Simulator, redis: boolean): Promise<ModelRun> {
  const p = ctx.profile.fleet
  // A 1 s command timeout instead of the default 100 ms: on the shared 2-core bench machine, with
  // the load generator, the simulator and 3 replicas on it, event-loop stalls alone trip 100 ms and
  // the replicas fall back to local state (degraded mode), which this model is not about.
  const env = { ...fleetEnv(sim), REDIS_COMMAND_TIMEOUT_MS: String(MODEL_REDIS_TIMEOUT_MS) }
  const fleet = await startFleet({ replicas: 3, simulator: sim, env, loadBalancer: false, redis })
  const probe = fleet.redis ? new RedisProbe(fleet.redis.url) : undefined
  const clients = new Clients(fleet)
  try {
    const draw = zipfSampler(p.interviews, p.zipf, 14)
    const sequence = Array.from({ length: p.requests }, () => draw())
    const memBefore = await probe?.usedMemory()
    const cmdBefore = await probe?.commands()
    sim.resetCalls()
    let failed = 0
    const t0 = performance.now()
    await inParallel(p.requests, p.concurrency, async (i) => {
      // Round robin over the replicas, as the load balancer does.
      const r = await clients.get(i % 3, linksPath(interviewId('f4', sequence[i] ?? 0)))
      if (r.status !== 200) failed++
    })
    const seconds = (performance.now() - t0) / 1000
    const upstreamCalls = sim.callsTo('imageLinks').length
    const { l1, l2 } = await fleetMetrics(fleet)
    const run: ModelRun = { requests: p.requests, upstreamCalls, l1, l2, seconds, failed }
    if (probe && memBefore !== undefined && cmdBefore !== undefined) {
      const prefix = 'igw:'
      run.redis = {
        usedMemoryDelta: (await probe.usedMemory()) - memBefore,
        linkEntries: await probe.countKeys(`${prefix}link-set:*`),
        keys: await probe.client.dbsize(),
        commands: delta(await probe.commands(), cmdBefore),
      }
    }
    ctx.progress(
      `fleet traffic model ${redis ? 'with' : 'without'} Redis: ${p.requests} requests in ${fmt(seconds, 1)} s, ${upstreamCalls} upstream calls`,
    )
    return run
  } finally {
    await clients.close()
    probe?.close()
    await fleet.stop()
  }
}

// ---- the scenario -----------------------------------------------------------------------------

export async function fleet(ctx: Ctx): Promise<ScenarioResult> {
  if (findRedisServer() === undefined) {
    return {
      title: 'fleet mode',
      pass: true,
      figures: { skipped: 1 },
      rows: [
        {
          scenario: 'fleet mode',
          measure: 'skipped: redis-server is not installed (apt-get install redis-server)',
          service: '—',
          comparison: '—',
          ratio: '—',
          target: '—',
          pass: true,
        },
      ],
      details: { skipped: 'redis-server is not installed' },
    }
  }
  const sim = await startSimulator({
    host: '127.0.0.1',
    port: 0,
    latency: ctx.latency,
    syntheticInterviews: true,
  })
  try {
    ctx.progress('fleet: L1 hits with and without Redis')
    const l1 = await l1Throughput(ctx, sim)
    ctx.progress('fleet: L2 hits, Redis commands per request, the herd')
    const three = await startFleet({ replicas: 3, simulator: sim, env: fleetEnv(sim), loadBalancer: false })
    const probe = new RedisProbe(three.redis?.url ?? '')
    let l2: Awaited<ReturnType<typeof l2AndCommands>>
    try {
      l2 = await l2AndCommands(ctx, sim, three, probe)
    } finally {
      probe.close()
      await three.stop()
    }
    ctx.progress('fleet: the traffic model')
    const modelLocal = await trafficModel(ctx, sim, false)
    const modelRedis = await trafficModel(ctx, sim, true)
    return report(ctx, l1, l2, modelLocal, modelRedis)
  } finally {
    await sim.close()
  }
}

// ---- the figures ------------------------------------------------------------------------------

function modelFigures(run: ModelRun) {
  const requests = total(run.l1)
  const l2Total = total(run.l2)
  return {
    upstreamPer1000: (run.upstreamCalls * 1000) / run.requests,
    l1HitRatio: ratio(run.l1.HIT ?? 0, requests),
    l2HitRatio: ratio(run.l2.hit ?? 0, l2Total),
    l2WaitedRatio: ratio(run.l2.waited ?? 0, l2Total),
    rps: run.requests / run.seconds,
  }
}

function report(
  ctx: Ctx,
  l1: Awaited<ReturnType<typeof l1Throughput>>,
  l2: Awaited<ReturnType<typeof l2AndCommands>>,
  local: ModelRun,
  shared: ModelRun,
): ScenarioResult {
  const p = ctx.profile
  const l2P50 = percentile(l2.latency.l2, 50)
  const l1P50 = percentile(l2.latency.l1, 50)
  const addedP50 = l2P50 - l1P50
  const floorP50 = percentile(l2.latency.floor, 50)
  const runL2P50 = percentile(l2.latency.runL2, 50)
  const runL1P50 = percentile(l2.latency.runL1, 50)
  const perRequest = (counts: Record<string, number>) => total(counts) / l2.n
  const herdMax = Math.max(...l2.herdCalls)
  const withRedis = modelFigures(shared)
  const withoutRedis = modelFigures(local)
  const memPer100k = shared.redis
    ? (shared.redis.usedMemoryDelta / Math.max(1, shared.redis.linkEntries)) * 100_000
    : Number.NaN
  const modelCommandsPerRequest = shared.redis ? total(shared.redis.commands) / shared.requests : Number.NaN
  const problems = [...l1.problems, ...l2.unexpected]
  if (local.failed + shared.failed > 0)
    problems.push(`traffic model: ${local.failed + shared.failed} answers not 200`)
  const l1Ok = l1.ratio >= 0.95
  const l2Ok = addedP50 <= 0.5
  const herdOk = herdMax === 1
  const ok = l1Ok && l2Ok && herdOk && problems.length === 0
  const model = `${p.fleet.requests} requests, ${p.fleet.interviews} interviews, Zipf s=${p.fleet.zipf}, 3 replicas, ${p.fleet.concurrency} at a time, REDIS_COMMAND_TIMEOUT_MS=${MODEL_REDIS_TIMEOUT_MS}`
  return {
    title: 'fleet mode',
    pass: ok,
    figures: {
      l1RedisRps: round(l1.redisRps, 0),
      l1LocalRps: round(l1.localRps, 0),
      l1RatioRedisToLocal: round(l1.ratio, 3),
      l1CpuUsPerRequestRedis: round(l1.cpu.redis, 1),
      l1CpuUsPerRequestLocal: round(l1.cpu.local, 1),
      l2HitP50Ms: round(l2P50, 3),
      l1HitP50Ms: round(l1P50, 3),
      l2AddedP50Ms: round(addedP50, 3),
      redisMgetFloorP50Ms: round(floorP50, 3),
      runL2HitP50Ms: round(runL2P50, 3),
      runL1HitP50Ms: round(runL1P50, 3),
      missP50Ms: round(percentile(l2.latency.miss, 50), 3),
      redisCommandsPerMiss: round(perRequest(l2.cmds.miss), 2),
      redisCommandsPerL2Hit: round(perRequest(l2.cmds.l2), 2),
      redisCommandsPerL1Hit: round(perRequest(l2.cmds.l1), 2),
      herdUpstreamCallsMax: herdMax,
      herdRequests: p.fleet.herd,
      modelRequests: p.fleet.requests,
      modelInterviews: p.fleet.interviews,
      modelUpstreamPer1000WithRedis: round(withRedis.upstreamPer1000, 1),
      modelUpstreamPer1000WithoutRedis: round(withoutRedis.upstreamPer1000, 1),
      modelL1HitRatioWithRedis: round(withRedis.l1HitRatio, 3),
      modelL1HitRatioWithoutRedis: round(withoutRedis.l1HitRatio, 3),
      modelL2HitRatio: round(withRedis.l2HitRatio, 3),
      modelL2WaitedRatio: round(withRedis.l2WaitedRatio, 3),
      modelRpsWithRedis: round(withRedis.rps, 0),
      modelRpsWithoutRedis: round(withoutRedis.rps, 0),
      modelL2Unavailable: shared.l2.unavailable ?? 0,
      modelRedisTimeoutMs: MODEL_REDIS_TIMEOUT_MS,
      modelRedisCommandsPerRequest: round(modelCommandsPerRequest, 2),
      redisLinkEntries: shared.redis?.linkEntries ?? Number.NaN,
      redisKeys: shared.redis?.keys ?? Number.NaN,
      redisMiBPer100kEntries: round(memPer100k / (1024 * 1024), 2),
      redisBytesPerEntry: round(memPer100k / 100_000, 0),
    },
    rows: [
      {
        scenario: 'fleet, L1 hits with REDIS_URL',
        measure: `req/s at ${l1.rounds.connections} connections each, the two replicas at the same time sharing the server core (a wrk each, ${l1.rounds.rounds} rounds × ${l1.rounds.durationSec} s, medians; ratio: median of the rounds' ratios ${l1.pairRatios.map((r) => fmt(r, 2)).join(', ')})`,
        service: fmt(l1.redisRps, 0),
        comparison: `same replica without Redis ${fmt(l1.localRps, 0)}; CPU per request (medians) ${fmt(l1.cpu.redis, 0)} µs with Redis, ${fmt(l1.cpu.local, 0)} µs without`,
        ratio: `${fmt(l1.ratio, 2)} × without`,
        target: '≥ 0.95 ×',
        pass: l1Ok,
      },
      {
        scenario: 'fleet, L2 hits (cold in the replica, warm in Redis)',
        measure: `p50 latency, ${l2.n} interviews, sequential: per interview the floor, its L2 hit, the floor, its L1 hit`,
        service: `${fmt(l2P50, 2)} ms`,
        comparison: `L1 hit on the same replica ${fmt(l1P50, 2)} ms; miss ${fmt(percentile(l2.latency.miss, 50), 1)} ms; the Redis round trip alone (one MGET of six entries from a Node client, sequential) ${fmt(floorP50, 2)} ms, so the replica's own L2 work adds ${fmt(addedP50 - floorP50, 2)} ms. Before this, B's first ${l2.n} L2 hits (its code still warming up), in runs of ${RUN}, each after a pause: ${fmt(runL2P50, 2)} ms, against ${fmt(runL1P50, 2)} ms for its L1 hits back to back, +${fmt(runL2P50 - runL1P50, 2)} ms`,
        ratio: `+${fmt(addedP50, 2)} ms`,
        target: '≤ +0.5 ms',
        pass: l2Ok,
      },
      {
        scenario: `fleet, ${p.fleet.herd}-request herd over 3 replicas`,
        measure: `upstream link calls (simulator log), ${l2.herdCalls.length} rounds`,
        service: l2.herdCalls.join(', '),
        comparison: 'without Redis: up to one per replica',
        ratio: '—',
        target: '1',
        pass: herdOk,
      },
      {
        scenario: 'fleet, Redis commands per request',
        measure: 'INFO commandstats before/after, sequential',
        service: `miss ${fmt(perRequest(l2.cmds.miss), 1)}, L2 hit ${fmt(perRequest(l2.cmds.l2), 1)}, L1 hit ${fmt(perRequest(l2.cmds.l1), 1)}`,
        comparison: `traffic model ${fmt(modelCommandsPerRequest, 2)} per request`,
        ratio: '—',
        target: 'measured',
        pass: true,
      },
      {
        scenario: 'fleet, traffic model',
        measure: `upstream calls per 1,000 requests (${model})`,
        service: `with Redis ${fmt(withRedis.upstreamPer1000, 1)}`,
        comparison: `without ${fmt(withoutRedis.upstreamPer1000, 1)}; L1 hit ratio ${fmt(withRedis.l1HitRatio, 3)} vs ${fmt(withoutRedis.l1HitRatio, 3)}; L2 hit ratio ${fmt(withRedis.l2HitRatio, 3)} (waited ${fmt(withRedis.l2WaitedRatio, 3)}, Redis unavailable ${shared.l2.unavailable ?? 0})`,
        ratio: `${fmt(ratio(withRedis.upstreamPer1000, withoutRedis.upstreamPer1000), 2)} × without`,
        target: 'measured',
        pass: local.failed + shared.failed === 0,
      },
      {
        scenario: 'fleet, Redis memory',
        measure: `used_memory growth per 100,000 link entries (${shared.redis?.linkEntries ?? 0} entries)`,
        service: `${fmt(memPer100k / (1024 * 1024), 1)} MiB`,
        comparison: `${fmt(memPer100k / 100_000, 0)} bytes per entry, ${shared.redis?.keys ?? 0} keys in all`,
        ratio: '—',
        target: 'measured',
        pass: true,
      },
    ],
    details: {
      l1Rps: l1.rps,
      l1PairRatios: l1.pairRatios,
      commands: l2.cmds,
      latencyMs: {
        l2: { p50: l2P50, p90: percentile(l2.latency.l2, 90), p99: percentile(l2.latency.l2, 99) },
        l1: { p50: l1P50, p90: percentile(l2.latency.l1, 90), p99: percentile(l2.latency.l1, 99) },
      },
      herdCalls: l2.herdCalls,
      model: { withRedis: shared, withoutRedis: local },
      problems,
    },
  }
}
