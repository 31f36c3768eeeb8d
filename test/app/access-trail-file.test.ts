import { once } from 'node:events'
import { readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { ConfigError } from '../../src/config.js'
import { loadConfig } from '../../src/config.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, partnerHeaders, type Harness } from '../helpers/build.js'

const { small } = SEEDED_INTERVIEW_IDS

async function linksCall(harness: Harness, requestId: string): Promise<void> {
  const res = await harness.app.inject({
    method: 'POST',
    url: `/v1/sessions/${small}/image-links`,
    headers: { ...partnerHeaders(), 'x-request-id': requestId },
    payload: JSON.stringify({ images: ['selfie'] }),
  })
  if (res.statusCode !== 200) throw new Error(`the links call answered ${res.statusCode}`)
}

async function textOf(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '')
}

/** Waits (bounded by tap's timeout) until the file at `path` holds `text`: the write is asynchronous. */
async function fileHolds(path: string, text: string): Promise<string> {
  for (;;) {
    const content = await textOf(path)
    if (content.includes(text)) return content
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

void t.test('a file trail is reopened on SIGHUP: after a rename, new events go to a new file', async (t) => {
  const dir = t.testdir()
  // A folder that does not exist yet: the destination creates it.
  const path = join(dir, 'trail', 'access.jsonl')
  const hupListeners = process.listenerCount('SIGHUP')
  const harness = await build(t, { captureTrail: false, env: { ACCESS_TRAIL: path } })
  t.equal(process.listenerCount('SIGHUP'), hupListeners + 1, 'the file destination listens for SIGHUP')

  await linksCall(harness, 'before-rotation')
  const first = await fileHolds(path, 'before-rotation')
  const event = JSON.parse(first.trim()) as Record<string, unknown>
  t.match(
    event,
    { log: 'access', requestId: 'before-rotation', status: 200, cache: 'MISS' },
    'a JSON line per event',
  )

  // What logrotate does: rename the file, then tell the process.
  await rename(path, `${path}.1`)
  const signalled = once(process, 'SIGHUP')
  process.kill(process.pid, 'SIGHUP')
  await signalled
  await linksCall(harness, 'after-rotation')
  const second = await fileHolds(path, 'after-rotation')
  t.notOk(second.includes('before-rotation'), 'the new file holds only the new events')
  const rotated = await textOf(`${path}.1`)
  t.ok(rotated.includes('before-rotation'), 'the rotated file keeps the old ones')
  t.notOk(rotated.includes('after-rotation'), 'and gets nothing more')

  await harness.app.close()
  t.equal(process.listenerCount('SIGHUP'), hupListeners, 'closing the app removes its SIGHUP listener')
})

void t.test('ACCESS_TRAIL=off opens nothing', async (t) => {
  const hupListeners = process.listenerCount('SIGHUP')
  const harness = await build(t, { captureTrail: false, env: { ACCESS_TRAIL: 'off' } })
  await linksCall(harness, 'trail-off')
  t.equal(process.listenerCount('SIGHUP'), hupListeners, 'no SIGHUP listener, no file')
})

void t.test('ACCESS_TRAIL takes stdout, stderr, off or an absolute path', async (t) => {
  const minimal = { INCODE_BASE_URL: 'https://demo-api.incodesmile.com', INCODE_API_KEY: 'key' }
  t.equal(loadConfig(minimal).ACCESS_TRAIL, 'stdout', 'stdout by default')
  for (const good of ['stdout', 'stderr', 'off', '/var/log/gateway/access.jsonl'])
    t.equal(loadConfig({ ...minimal, ACCESS_TRAIL: good }).ACCESS_TRAIL, good, `${good} is taken`)
  const err = t.throws(() => loadConfig({ ...minimal, ACCESS_TRAIL: 'access.log' })) as ConfigError
  t.match(err.problems, [/^ACCESS_TRAIL: must match pattern/], 'a relative path is refused, one line')
})
