import t from 'tap'
import { FleetSeal } from '../../src/fleet/seal.js'

const SECRET = 'fleet-secret-for-tests-0123456789abcdef'
const OLD = 'an-older-fleet-secret-0123456789abcdef'

t.test('a name set: one distinct, stable, opaque name per position, per secret', async (t) => {
  const seal = new FleetSeal(SECRET, [OLD])
  const sets = seal.nameSets(14, 'link-set', 'admin', 'interview-1')
  t.equal(sets.length, 2, 'one set per accepted secret')
  const [current = [], old = []] = sets
  t.equal(current.length, 14, 'one name per position')
  t.equal(new Set([...current, ...old]).size, 28, 'every name differs, across positions and secrets')
  for (const name of current) t.match(name, /^[A-Za-z0-9_-]{32}$/, `${name}: 32 base64url characters`)
  t.same(
    new FleetSeal(SECRET).nameSets(14, 'link-set', 'admin', 'interview-1'),
    [current],
    'the same secret and parts give the same names (another replica finds them)',
  )
  t.same(
    new FleetSeal(OLD).nameSets(14, 'link-set', 'admin', 'interview-1'),
    [old],
    "the old secret's names are those a replica on that secret wrote",
  )
  const other = new FleetSeal(SECRET).nameSets(14, 'link-set', 'admin', 'interview-2')[0] ?? []
  t.equal(new Set([...current, ...other]).size, 28, 'another interview shares no name')
  t.notOk(
    current.some((name) => seal.names('link-set', 'admin', 'interview-1').includes(name)),
    "a set's names are not the parts' single name",
  )
})
