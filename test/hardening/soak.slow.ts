import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { Pool } from 'undici'
import { IMAGE_TYPES, type ImageType } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, PARTNER_KEY } from '../helpers/build.js'
import { HARDENING_ENV, latestBytes, parseJson, sessionOf, sleep, type Json } from './helpers.js'

/**
 * A bounded soak over real sockets: mixed concurrent traffic (links hot and cold, base64 small and
 * full sets, session routes, drop-in paths) for about 45 s, every request must succeed, and memory
 * must stay flat. Skipped with SKIP_SOAK=1.
 *
 * Flat means: the median heapUsed (after a forced GC) of the last third of the run is at most
 * 1.5 × the median of the second third + 30 MB. The first third is the warm-up (caches filling,
 * JIT). The bound is generous on purpose: it catches a leak that grows with traffic (a request's
 * worth of images retained per request is ~MBs each, so hundreds of requests would blow it), not
 * allocator noise. RSS is reported but not asserted: freed Buffers are not always returned to the
 * OS promptly.
 */

const DURATION_MS = 45_000
const MAX_REQUESTS = 8_000
const WORKERS = 6
const SAMPLE_EVERY_MS = 1_000
const MB = 1024 * 1024

const { full, small, secondId } = SEEDED_INTERVIEW_IDS

/** A forced GC: `global.gc` when node runs with --expose-gc, else exposed at run time. */
function collector(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed) return exposed
  try {
    setFlagsFromString('--expose-gc')
    return runInNewContext('gc') as () => void
  } catch {
    return undefined
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

t.test(
  'soak: mixed traffic on real sockets, every request succeeds, memory stays flat',
  { skip: process.env.SKIP_SOAK === '1' ? 'SKIP_SOAK=1' : false },
  async (t) => {
    const { url, simulator } = await build(t, { listen: true, env: { ...HARDENING_ENV } })
    const pool = new Pool(url, { connections: WORKERS + 2, keepAliveTimeout: 10_000 })
    t.teardown(() => pool.close())
    const tokens = {
      small: simulator.sessionToken(small),
      full: simulator.sessionToken(full),
    }
    const expected = {
      small: sessionOf(simulator, small).images,
      full: sessionOf(simulator, full).images,
      second: sessionOf(simulator, secondId).secondId ?? {},
    }

    interface Call {
      name: string
      method: 'POST' | 'DELETE'
      path: string
      headers: Record<string, string>
      body?: unknown
      /** Checks a 2xx answer; returns what is wrong, or undefined. */
      check?: (body: Json) => string | undefined
    }
    const partner = { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY }
    const imagesRight = (
      images: Record<string, unknown>,
      from: typeof expected.small,
      types: ImageType[],
    ) => {
      for (const type of types) {
        const want = latestBytes(from, type)
        const got = images[type]
        if (want && (typeof got !== 'string' || !Buffer.from(got, 'base64').equals(want)))
          return `${type} is not the latest capture`
      }
      return undefined
    }
    const smallSet: ImageType[] = ['selfie', 'signature', 'croppedFace']
    const scenarios: Array<(i: number) => Call[]> = [
      // Links, hot: the same types again and again.
      () => [
        {
          name: 'links hot',
          method: 'POST',
          path: `/v1/sessions/${full}/image-links`,
          headers: partner,
          body: { images: ['selfie', 'fullFrameFrontID', 'signature'] },
          check: (b) => (b?.images?.selfie?.url ? undefined : 'no selfie link'),
        },
      ],
      // Links, cold: dropped, then fetched again.
      () => [
        { name: 'drop links', method: 'DELETE', path: `/v1/sessions/${small}/image-links`, headers: partner },
        {
          name: 'links cold',
          method: 'POST',
          path: `/v1/sessions/${small}/image-links`,
          headers: partner,
          body: { images: ['selfie', 'signature'] },
          check: (b) => (b?.images?.signature?.url ? undefined : 'no signature link'),
        },
      ],
      // Base64, small set.
      () => [
        {
          name: 'base64 small set',
          method: 'POST',
          path: `/v1/sessions/${small}/images`,
          headers: partner,
          body: { images: smallSet },
          check: (b) => imagesRight(b?.images ?? {}, expected.small, smallSet),
        },
      ],
      // Base64, the full set (over 10 MB: split and merged), one time in four of its turns.
      (i) =>
        i % 4 === 0
          ? [
              {
                name: 'base64 full set',
                method: 'POST',
                path: `/v1/sessions/${full}/images`,
                headers: partner,
                body: { images: IMAGE_TYPES },
                check: (b) =>
                  Object.keys(b?.images ?? {}).length === IMAGE_TYPES.length
                    ? imagesRight(b.images, expected.full, ['selfie', 'fullFrameBackID'])
                    : `${Object.keys(b?.images ?? {}).length} of ${IMAGE_TYPES.length} images`,
              },
            ]
          : [
              {
                name: 'second-ID images',
                method: 'POST',
                path: `/v1/sessions/${secondId}/second-id/images`,
                headers: partner,
                body: { images: ['croppedSecondIDFace', 'croppedFrontID'] },
                check: (b) =>
                  imagesRight(b?.images ?? {}, expected.second, ['croppedSecondIDFace', 'croppedFrontID']),
              },
            ],
      // Session-token routes.
      () => [
        {
          name: 'session images',
          method: 'POST',
          path: '/v1/session/images',
          headers: { 'content-type': 'application/json', 'x-incode-session-token': tokens.small },
          body: { images: ['signature', 'croppedFace'] },
          check: (b) => imagesRight(b?.images ?? {}, expected.small, ['signature', 'croppedFace']),
        },
        {
          name: 'session links',
          method: 'POST',
          path: '/v1/session/image-links',
          headers: { 'content-type': 'application/json', 'x-incode-session-token': tokens.full },
          body: { images: ['selfie', 'document'] },
        },
      ],
      // Drop-in paths.
      (i) => [
        {
          name: 'drop-in images',
          method: 'POST',
          path: i % 2 === 0 ? '/omni/get/images' : '/0/omni/get/images',
          headers: { 'content-type': 'application/json', 'x-incode-hardware-id': tokens.full },
          body: { images: ['selfie', 'croppedFace'] },
          check: (b) => imagesRight(b ?? {}, expected.full, ['selfie', 'croppedFace']),
        },
        {
          name: 'drop-in links',
          method: 'POST',
          path: '/0/omni/get/images/v2',
          headers: { 'content-type': 'application/json', 'x-incode-hardware-id': tokens.small },
          body: { images: ['selfie'] },
        },
        {
          name: 'drop-in concatenated',
          method: 'POST',
          path: '/omni/get/concatenated-images',
          headers: { 'content-type': 'application/json', 'x-incode-hardware-id': tokens.small },
          body: { images: ['selfie', 'signature'] },
          check: (b) => (typeof b?.image === 'string' && b.image.length > 0 ? undefined : 'no image'),
        },
      ],
    ]

    const gc = collector()
    const samples: Array<{ at: number; rss: number; heapUsed: number }> = []
    const sample = () => {
      gc?.()
      const { rss, heapUsed } = process.memoryUsage()
      samples.push({ at: Date.now(), rss, heapUsed })
    }

    const started = Date.now()
    const stopAt = started + DURATION_MS
    let sent = 0
    let turn = 0
    const failures: string[] = []
    const byName = new Map<string, number>()

    const worker = async () => {
      while (Date.now() < stopAt && sent < MAX_REQUESTS) {
        const n = turn++
        const calls = (scenarios[n % scenarios.length] as (i: number) => Call[])(
          Math.floor(n / scenarios.length),
        )
        for (const call of calls) {
          if (sent >= MAX_REQUESTS) break
          sent++
          try {
            const res = await pool.request({
              method: call.method,
              path: call.path,
              headers: call.headers,
              ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
              headersTimeout: 60_000,
              bodyTimeout: 60_000,
            })
            const text = await res.body.text()
            if (res.statusCode < 200 || res.statusCode > 299) {
              failures.push(`${call.name}: ${res.statusCode} ${text.slice(0, 200)}`)
              continue
            }
            const problem = call.check?.(parseJson(text))
            if (problem) failures.push(`${call.name}: ${problem}`)
            byName.set(call.name, (byName.get(call.name) ?? 0) + 1)
          } catch (err) {
            failures.push(`${call.name}: ${err instanceof Error ? err.message : String(err)}`)
          }
        }
      }
    }

    sample()
    const sampling = new AbortController()
    const sampler = (async () => {
      for (;;) {
        await sleep(SAMPLE_EVERY_MS)
        if (sampling.signal.aborted) return
        sample()
      }
    })()
    await Promise.all(Array.from({ length: WORKERS }, worker))
    sampling.abort()
    await sampler
    sample()

    const elapsed = Date.now() - started
    t.ok(elapsed < DURATION_MS + 60_000, `the run is bounded in time (${Math.round(elapsed / 1000)} s)`)
    t.ok(sent <= MAX_REQUESTS, `the run is bounded in count (${sent} requests)`)
    t.ok(sent > 200, `a meaningful amount of traffic was sent (${sent} requests)`)
    t.same(failures.slice(0, 20), [], `no request failed (${failures.length} of ${sent} failed)`)
    for (const scenario of [
      'links hot',
      'links cold',
      'base64 small set',
      'base64 full set',
      'session images',
      'drop-in images',
    ]) {
      t.ok((byName.get(scenario) ?? 0) > 0, `${scenario} ran (${byName.get(scenario) ?? 0} times)`)
    }

    t.ok(
      samples.length >= 9,
      `memory was sampled (${samples.length} samples, forced GC: ${gc ? 'yes' : 'no'})`,
    )
    const third = Math.floor(samples.length / 3)
    const second = samples.slice(third, 2 * third)
    const last = samples.slice(2 * third)
    const heapSecond = median(second.map((s) => s.heapUsed))
    const heapLast = median(last.map((s) => s.heapUsed))
    const rssSecond = median(second.map((s) => s.rss))
    const rssLast = median(last.map((s) => s.rss))
    const summary =
      `heapUsed ${(heapSecond / MB).toFixed(1)} → ${(heapLast / MB).toFixed(1)} MB, ` +
      `rss ${(rssSecond / MB).toFixed(1)} → ${(rssLast / MB).toFixed(1)} MB (second → last third medians)`
    t.ok(heapLast <= 1.5 * heapSecond + 30 * MB, `the heap stays flat: ${summary}`)
  },
)
