import t from 'tap'
import { classifyBadGateway, SIZE_CAP_PLAUSIBLE_SHARE, statesSizeCap } from '../../src/domain/badGateway.js'
import { INCODE_RESPONSE_CAP_BYTES } from '../../src/domain/imageTypes.js'

const cap = INCODE_RESPONSE_CAP_BYTES
const plausible = cap * SIZE_CAP_PLAUSIBLE_SHARE
/** Incode's error body, as documented and as the simulator sends it. */
const incodeError = (message: string) => ({
  timestamp: 1_700_000_000_000,
  status: 502,
  error: 'Bad Gateway',
  message,
  path: '/omni/get/images',
})
const simulatorSizeCap = incodeError(
  'Response of 12345678 bytes exceeds the 10000000 bytes limit; request fewer images per call',
)
const NGINX_PAGE =
  '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>'

void t.test('a body that states the size cap is the size cap, whatever the estimate', (t) => {
  for (const [what, body] of [
    ["the simulator's body", simulatorSizeCap],
    ['a text body', 'Response payload too large'],
    ['an error field', { error: 'Response size limit exceeded' }],
    ['"too big"', incodeError('Answer too big')],
  ] as const) {
    t.ok(statesSizeCap(body), `${what} states the size cap`)
    t.equal(
      classifyBadGateway({ body, estimatedBytes: 1000, capBytes: cap }),
      'size-cap',
      `${what}, small estimate: size-cap`,
    )
  }
  t.end()
})

void t.test('a body naming something else does not state the size cap', (t) => {
  for (const [what, body] of [
    ['the simulated failure', incodeError('Simulated upstream failure')],
    ['a gateway page', NGINX_PAGE],
    ['a rate limit exceeded', incodeError('Rate limit exceeded')],
    ['a quota exceeded', 'Quota exceeded'],
    ['an empty text', ''],
    ['no body', undefined],
    ['null', null],
    ['a number', 502],
    ['an object without reasons', { status: 502 }],
  ] as const) {
    t.notOk(statesSizeCap(body), `${what}: not a statement of the size cap`)
  }
  t.end()
})

void t.test('without a statement, the estimate decides: at least half the cap is plausible', (t) => {
  for (const body of [incodeError('Bad Gateway'), NGINX_PAGE, '']) {
    const what = typeof body === 'string' ? JSON.stringify(body.slice(0, 20)) : 'a JSON error'
    t.equal(
      classifyBadGateway({ body, estimatedBytes: plausible, capBytes: cap }),
      'size-cap',
      `${what}: an answer estimated at half the cap may have hit it`,
    )
    t.equal(
      classifyBadGateway({ body, estimatedBytes: 2 * cap, capBytes: cap }),
      'size-cap',
      `${what}: an answer estimated over the cap`,
    )
    t.equal(
      classifyBadGateway({ body, estimatedBytes: plausible - 1, capBytes: cap }),
      'upstream-failure',
      `${what}: just under half the cap is an upstream failure`,
    )
    t.equal(
      classifyBadGateway({ body, estimatedBytes: 40_000, capBytes: cap }),
      'upstream-failure',
      `${what}: a small answer is an upstream failure`,
    )
    t.equal(
      classifyBadGateway({ body, estimatedBytes: undefined, capBytes: cap }),
      'upstream-failure',
      `${what}: an unknown size is not taken as the size cap`,
    )
  }
  t.end()
})

void t.test('only the start of a long text body is read', (t) => {
  t.notOk(
    statesSizeCap(`${' '.repeat(5000)}exceeds`),
    'a statement past the first 2000 characters is not read',
  )
  t.ok(statesSizeCap(`${' '.repeat(100)}exceeds the limit`), 'one near the start is')
  t.end()
})
