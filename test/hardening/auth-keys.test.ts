import t from 'tap'
import { ApiKeyRing, sha256Hex } from '../../src/auth/apiKeys.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build } from '../helpers/build.js'
import { apiKeys, assertProblem, HARDENING_ENV, keyEntry } from './helpers.js'

/**
 * A configured key and a wrong key whose SHA-256 digests share their first three bytes (8feaad).
 * Found by brute force over `wrong-key-sharing-a-prefix-<n>` for n = 0, 1, 2, … (about 39 million
 * hashes, in a one-off Node script); the test checks the shared prefix itself.
 */
const CONFIGURED_KEY = 'partner-key-collision-test-0001'
const PREFIX_TWIN = 'wrong-key-sharing-a-prefix-39230984'
const SHARED_PREFIX_HEX = '8feaad'

t.test('the two keys share a 3-byte digest prefix and differ after it', async (t) => {
  const configured = sha256Hex(CONFIGURED_KEY)
  const twin = sha256Hex(PREFIX_TWIN)
  t.equal(configured.slice(0, 6), SHARED_PREFIX_HEX, 'the configured key’s digest starts with the prefix')
  t.equal(twin.slice(0, 6), SHARED_PREFIX_HEX, 'the wrong key’s digest starts with the same prefix')
  t.not(twin, configured, 'the digests differ')
})

t.test('a wrong key whose digest shares a prefix with a configured key is refused', async (t) => {
  const ring = new ApiKeyRing([keyEntry('twin-target', CONFIGURED_KEY, ['images:read'])])
  t.equal(ring.verify(CONFIGURED_KEY)?.name, 'twin-target', 'the configured key is accepted')
  t.equal(ring.verify(PREFIX_TWIN), undefined, 'the prefix twin is not accepted by the key ring')
})

t.test('over HTTP: the prefix twin gets 401 where the configured key gets in', async (t) => {
  const { app } = await build(t, {
    env: { ...HARDENING_ENV, API_KEYS: apiKeys(keyEntry('twin-target', CONFIGURED_KEY, ['cache:write'])) },
  })
  const drop = (key: string) =>
    app.inject({
      method: 'DELETE',
      url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.small}/image-links`,
      headers: { 'x-api-key': key },
    })
  t.equal((await drop(CONFIGURED_KEY)).statusCode, 200, 'the configured key is served')
  assertProblem(t, await drop(PREFIX_TWIN), 401, 'API_KEY_INVALID', 'the prefix twin')
})
