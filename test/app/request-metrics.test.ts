import t from 'tap'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, partnerHeaders } from '../helpers/build.js'

const LINKS_ROUTE = '/v1/sessions/:interviewId/image-links'

/** The value of one series of the request histogram, or undefined when it is not exported. */
function series(text: string, suffix: string, labels: string): number | undefined {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`gateway_http_request_duration_seconds${suffix}{${labels}}`))
  return line === undefined ? undefined : Number(line.split(' ').pop())
}

void t.test(
  'each answer on a timed route is one observation, by method, route pattern and status',
  async (t) => {
    const { app } = await build(t)
    const ask = (headers: Record<string, string>) =>
      app.inject({
        method: 'POST',
        url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/image-links`,
        headers,
        payload: { images: ['selfie'] },
      })
    t.equal((await ask(partnerHeaders())).statusCode, 200, 'a MISS answered')
    t.equal((await ask(partnerHeaders())).statusCode, 200, 'a HIT answered')
    t.equal((await ask({ 'content-type': 'application/json' })).statusCode, 401, 'a refusal answered')
    t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'a probe answered')

    const res = await app.inject({ method: 'GET', url: '/metrics', headers: partnerHeaders() })
    t.equal(res.statusCode, 200, '/metrics answers')
    t.match(res.body, /^# TYPE gateway_http_request_duration_seconds histogram$/m, 'a histogram')
    const ok = `method="POST",route="${LINKS_ROUTE}",status_code="200"`
    const refused = `method="POST",route="${LINKS_ROUTE}",status_code="401"`
    t.equal(series(res.body, '_count', ok), 2, 'two 200 answers on the links route')
    t.equal(series(res.body, '_count', refused), 1, 'one 401 on the links route')
    t.equal(series(res.body, '_bucket', `le="10",${ok}`), 2, 'both within the largest finite bucket')
    t.ok((series(res.body, '_sum', ok) ?? -1) >= 0, 'a duration sum in seconds')
    t.notMatch(
      res.body,
      /gateway_http_request_duration_seconds_count\{[^}]*route="\/healthz"/,
      'probes untimed',
    )
    t.notMatch(
      res.body,
      /gateway_http_request_duration_seconds_count\{[^}]*route="\/metrics"/,
      'scrapes untimed',
    )
  },
)
