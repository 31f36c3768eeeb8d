import t from 'tap'
import { Agent, request } from 'undici'
import { IMAGE_TYPES } from '../../src/domain/imageTypes.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, partnerHeaders } from '../helpers/build.js'

t.test(
  'close() while a keep-alive response is streaming: the answer completes, then the connection is closed and close() returns',
  async (t) => {
    // Large parts arrive 1 s after the small ones: the answer's headers are out before close().
    const harness = await build(t, { listen: true, simulator: { latency: { fixedMs: 0, perMiBMs: 250 } } })
    const { app, url } = harness
    // A client that keeps idle connections for a minute, as undici does when the server says so.
    const agent = new Agent({ keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 })
    t.teardown(() => agent.close())

    const res = await request(`${url}/v1/sessions/${SEEDED_INTERVIEW_IDS.full}/images`, {
      method: 'POST',
      headers: partnerHeaders(),
      body: JSON.stringify({ images: IMAGE_TYPES }),
      dispatcher: agent,
    })
    t.equal(res.statusCode, 200, 'the answer has started (headers sent)')
    t.not(res.headers.connection, 'close', 'on a keep-alive connection')

    let closed = false
    const closing = app.close().then(() => (closed = true))
    const body = (await res.body.json()) as { images: Record<string, string>; errors: object }
    t.equal(Object.keys(body.images).length, IMAGE_TYPES.length, 'the in-flight answer completed whole')
    t.same(body.errors, {}, 'without errors')

    // The connection is idle now; close() must not wait for the client's keep-alive timeout (60 s).
    // Not a speed test: the bound only tells "at once" from "at that timeout" on a busy machine.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([closing, new Promise((resolve) => (timer = setTimeout(resolve, 45_000)))])
    clearTimeout(timer)
    t.ok(closed, 'close() returned once the last answer was sent, not at the keep-alive timeout')
  },
)
