import t from 'tap'
import { ApiKeyRing } from '../../src/auth/apiKeys.js'
import { rememberedKeys } from '../../src/plugins/app/auth.js'
import { keyEntry } from './helpers.js'

/** A configured key and a wrong key whose digests share their first three bytes (see auth-keys). */
const CONFIGURED_KEY = 'partner-key-collision-test-0001'
const PREFIX_TWIN = 'wrong-key-sharing-a-prefix-39230984'

/** The real ring, counting how often its constant-time check runs. */
class CountingRing extends ApiKeyRing {
  checks = 0
  override verify(presented: string) {
    this.checks++
    return super.verify(presented)
  }
}

t.test('a key that matched is remembered; a wrong key always takes the constant-time path', async (t) => {
  const ring = new CountingRing([
    keyEntry('partner-a', CONFIGURED_KEY, ['links:read']),
    keyEntry('partner-b', 'another-partner-key', ['images:read']),
  ])
  const verify = rememberedKeys(ring)
  t.equal(verify(CONFIGURED_KEY)?.name, 'partner-a', 'the configured key is accepted the first time')
  t.equal(ring.checks, 1, 'the first time through the ring')
  t.equal(verify(CONFIGURED_KEY)?.name, 'partner-a', 'and accepted again')
  t.equal(ring.checks, 1, 'the second time from memory, without hashing it again')

  for (let i = 0; i < 3; i++) t.equal(verify(PREFIX_TWIN), undefined, `the prefix twin is refused (${i})`)
  t.equal(ring.checks, 4, 'a refused key is checked by the ring every time, never remembered')
  t.equal(verify(`${CONFIGURED_KEY} `), undefined, 'the key with a trailing space is refused')
  t.equal(verify(CONFIGURED_KEY.slice(0, -1)), undefined, 'a prefix of the key is refused')

  t.equal(verify('another-partner-key')?.name, 'partner-b', 'the other partner is told apart')
  t.equal(verify(CONFIGURED_KEY)?.name, 'partner-a', 'the first partner still gets its own partner')
})
