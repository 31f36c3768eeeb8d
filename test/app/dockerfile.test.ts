import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'

// No Docker engine or registry here: check the Dockerfile's essentials instead of building it.
const dockerfile = readFileSync('Dockerfile', 'utf8')
const lines = dockerfile.split('\n').map((l) => l.trim())
const froms = lines.filter((l) => l.startsWith('FROM '))

t.test('multi-stage build on a pinned Node LTS', async (t) => {
  t.equal(froms.length, 2, 'a build stage and a runtime stage')
  for (const from of froms) {
    const match = /^FROM node:(\d+)\.(\d+)\.(\d+)-\S+/.exec(from)
    t.ok(match, `${from} pins an exact node version`)
    t.equal(Number(match?.[1]) % 2, 0, 'an even (LTS) major version')
    t.ok(Number(match?.[1]) >= 22, 'a current LTS')
  }
  t.match(froms[0], / AS build$/, 'first stage is the build')
  t.match(froms[1], / AS runtime$/, 'second stage is the runtime')
})

t.test('runtime stage essentials', async (t) => {
  const runtime = dockerfile.slice(dockerfile.indexOf(' AS runtime'))
  t.match(runtime, /npm ci --omit=dev/, 'production dependencies only')
  t.match(runtime, /NODE_ENV=production/, 'NODE_ENV=production')
  t.match(runtime, /HOST=0\.0\.0\.0/, 'listens on all interfaces')
  t.match(runtime, /^USER node$/m, 'non-root user')
  t.match(runtime, /^HEALTHCHECK .*\n?.*\/healthz/m, 'healthcheck on /healthz')
  t.match(runtime, /^CMD \["node", "dist\/server\.js"\]$/m, 'starts dist/server.js')
  t.match(runtime, /COPY --from=build \/app\/dist \.\/dist/, 'takes the compiled output from the build stage')
})

t.test('every file the Dockerfile copies from the context exists', async (t) => {
  const copies = lines.filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
  t.ok(copies.length > 0, 'there are COPY lines')
  for (const copy of copies) {
    const sources = copy.split(/\s+/).slice(1, -1)
    for (const source of sources) t.ok(existsSync(source), `${source} exists`)
  }
  const ignore = readFileSync('.dockerignore', 'utf8')
  t.match(ignore, /^node_modules$/m, '.dockerignore keeps node_modules out')
  t.match(ignore, /^\.git$/m, '.dockerignore keeps .git out')
})
