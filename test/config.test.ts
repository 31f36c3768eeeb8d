import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { ConfigError, ConfigSchema, loadConfig } from '../src/config.js'

const minimal = { INCODE_BASE_URL: 'https://demo-api.incodesmile.com', INCODE_API_KEY: 'key' }

t.test('defaults fill every optional setting', async (t) => {
  const config = loadConfig(minimal)
  t.equal(config.PORT, 3000, 'default port')
  t.equal(config.HOST, '127.0.0.1', 'default host is loopback')
  t.equal(config.INCODE_PATH_IMAGES, '/omni/get/images', 'confirmed images path')
  t.equal(config.INCODE_PATH_IMAGE_LINKS, '/omni/get/images/v2', 'best-evidence links path')
  t.equal(config.LINK_CACHE_MARGIN_MS, 300_000, 'five-minute link margin')
  t.ok(config.CHUNK_BUDGET_BYTES < 10_000_000, 'chunk budget under the 10 MB cap')
})

t.test('numbers are coerced from strings', async (t) => {
  const config = loadConfig({ ...minimal, PORT: '8080', FANOUT_CONCURRENCY: '2' })
  t.equal(config.PORT, 8080, 'port coerced')
  t.equal(config.FANOUT_CONCURRENCY, 2, 'fan-out coerced')
})

t.test('empty strings count as unset', async (t) => {
  const config = loadConfig({ ...minimal, PORT: '', INCODE_ADMIN_TOKEN: '' })
  t.equal(config.PORT, 3000, 'empty PORT falls back to the default')
  t.equal(config.INCODE_ADMIN_TOKEN, undefined, 'empty token is unset')
})

t.test('every problem is reported, one line each', async (t) => {
  const err = t.throws(() =>
    loadConfig({ PORT: 'abc', LOG_LEVEL: 'loud', INCODE_BASE_URL: 'ftp://x' }),
  ) as ConfigError
  t.type(err, ConfigError, 'a ConfigError')
  t.same(
    [...err.problems].sort(),
    [
      'INCODE_API_KEY: is required',
      'INCODE_BASE_URL: must match pattern "^https?://"',
      'LOG_LEVEL: must be one of the allowed values',
      'PORT: must be integer',
    ],
    'one line per bad setting',
  )
})

t.test('admin e-mail and password go together', async (t) => {
  const err = t.throws(() => loadConfig({ ...minimal, INCODE_ADMIN_EMAIL: 'a@b.c' })) as ConfigError
  t.match(
    err.problems,
    ['INCODE_ADMIN_PASSWORD: is required when INCODE_ADMIN_EMAIL is set'],
    'password demanded',
  )
})

t.test('the chunk budget must stay under the response guard', async (t) => {
  const err = t.throws(() =>
    loadConfig({ ...minimal, CHUNK_BUDGET_BYTES: '12000000', UPSTREAM_MAX_RESPONSE_BYTES: '11000000' }),
  ) as ConfigError
  t.match(err.problems, ['CHUNK_BUDGET_BYTES: must be below UPSTREAM_MAX_RESPONSE_BYTES'], 'budget checked')
})

t.test('the server refuses to start without an upstream, exit 1, no stack trace', async (t) => {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' }
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env,
    encoding: 'utf8',
    timeout: 30_000,
  })
  t.equal(result.status, 1, 'exit code 1')
  t.match(result.stderr, /INCODE_BASE_URL: is required/, 'names the missing upstream')
  t.match(result.stderr, /INCODE_API_KEY: is required/, 'names the missing key')
  t.notMatch(result.stderr, /\n\s+at /, 'no stack trace')
})

t.test('every setting is documented in .env.example and in the README table', async (t) => {
  const envExample = readFileSync('.env.example', 'utf8')
  const readme = readFileSync('README.md', 'utf8')
  for (const name of Object.keys(ConfigSchema.properties)) {
    t.match(envExample, new RegExp(`^#? ?${name}=`, 'm'), `.env.example sets ${name}`)
    t.match(readme, new RegExp(`^\\|[^\\n]*\`${name}\``, 'm'), `the README table lists ${name}`)
  }
})
