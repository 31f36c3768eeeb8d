/**
 * `npm run bench:profile -- [links|base64] [--seconds N]`: runs the simulator and the built service
 * (`dist/server.js`) under `node --cpu-prof`, drives one scenario with autocannon on loopback, stops
 * the service, and prints the functions with the most self time, located in src/ through the
 * bundle's source map. The load comes from wrk pinned to core 0 with the service on core 1 where
 * there are two cores and wrk is installed (else autocannon, sharing the cores), so that the
 * profile shows the service busy rather than waiting for its load generator. The `.cpuprofile` it
 * writes (path printed at the end) opens as a flame graph in Chrome DevTools or speedscope.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { SourceMap, type SourceMapPayload } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { IMAGE_TYPES } from '../src/domain/imageTypes.js'
import { autocannon } from './lib/autocannon.js'
import { LINK_TYPES } from './scenarios/index.js'
import { corePlan, findWrk, pinGroup, wrk } from './lib/wrk.js'
import { freePort, startChild, stopAll, stopChild, waitForStatus } from './lib/procs.js'
import {
  DIST_SERVER,
  FULL_INTERVIEW,
  REPO_DIR,
  serviceEnv,
  serviceHeaders,
  startSimulatorProcess,
} from './lib/stack.js'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  hitCount?: number
  children?: number[]
}

const args = process.argv.slice(2)
const scenario = args.find((a) => !a.startsWith('--')) ?? 'links'
const secondsAt = args.indexOf('--seconds')
const seconds = secondsAt >= 0 ? Number(args[secondsAt + 1]) : 10
if (!['links', 'base64'].includes(scenario) || !(seconds > 0 && seconds <= 120)) {
  console.error('usage: npm run bench:profile -- [links|base64] [--seconds 1..120]')
  process.exit(2)
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gateway-profile-'))
  const sim = await startSimulatorProcess({ fixedMs: 20, perMiBMs: 8 })
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const service = startChild(
    'service',
    process.execPath,
    ['--cpu-prof', '--cpu-prof-dir', dir, DIST_SERVER],
    {
      cwd: REPO_DIR,
      env: serviceEnv(sim.url, port),
    },
  )
  try {
    await waitForStatus(`${url}/readyz`, { timeoutMs: 20_000, intervalMs: 10, child: service })
    const target =
      scenario === 'links'
        ? { path: 'image-links', types: LINK_TYPES, connections: 50 }
        : { path: 'images', types: IMAGE_TYPES, connections: 10 }
    const options = {
      url: `${url}/v1/sessions/${FULL_INTERVIEW}/${target.path}`,
      method: 'POST' as const,
      headers: serviceHeaders(),
      body: JSON.stringify({ images: target.types }),
      connections: target.connections,
    }
    await autocannon({ ...options, amount: 10 * options.connections })
    const wrkBinary = findWrk()
    const cores = corePlan()
    if (wrkBinary) {
      pinGroup(service.pid, cores.serverCpus)
      const result = await wrk(wrkBinary, {
        ...options,
        durationSec: seconds,
        cpus: cores.loadCpus,
        workDir: dir,
      })
      console.log(
        `${scenario}: ${result.rps.toFixed(0)} req/s (wrk; ${cores.description}), p50 ${result.latency.p50} ms, ` +
          `p99 ${result.latency.p99} ms, ${result.non2xx} non-2xx, ${result.errors} errors`,
      )
    } else {
      const result = await autocannon({ ...options, durationSec: seconds })
      console.log(
        `${scenario}: ${result.rps.toFixed(0)} req/s (autocannon), p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, ` +
          `${result.non2xx} non-2xx, ${result.errors} errors`,
      )
    }
  } finally {
    // SIGTERM: the service closes gracefully and node writes the profile on exit.
    await stopChild(service, 10_000)
    await stopAll()
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (!file) throw new Error('no .cpuprofile was written')
  const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { nodes: ProfileNode[] }
  // The bundle is dist/server.js and its chunks (dist/chunks/*.js), each with its own source map.
  const maps = new Map<string, SourceMap | undefined>()
  const mapOf = (file: string): SourceMap | undefined => {
    if (!maps.has(file)) {
      let map: SourceMap | undefined
      try {
        map = new SourceMap(
          JSON.parse(readFileSync(path.join(REPO_DIR, `${file}.map`), 'utf8')) as SourceMapPayload,
        )
      } catch {
        map = undefined
      }
      maps.set(file, map)
    }
    return maps.get(file)
  }
  const self = new Map<string, number>()
  let total = 0
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0
    total += hits
    const { functionName, url: where, lineNumber, columnNumber } = node.callFrame
    let short = where.replace(/^file:\/\//, '').replace(REPO_DIR + '/', '')
    let line = lineNumber + 1
    const map = /^dist\/(chunks\/)?[^/]+\.js$/.test(short) ? mapOf(short) : undefined
    if (map) {
      // Through the bundle's source map to the original file (src/ or node_modules/).
      const entry = map.findEntry(lineNumber, columnNumber)
      if ('originalSource' in entry) {
        short = entry.originalSource
          .replace(/^(\.\.\/)+/, '')
          .replace(/^file:\/\//, '')
          .replace(REPO_DIR + '/', '')
        line = entry.originalLine + 1
      }
    }
    const key = `${functionName || '(anonymous)'} ${short ? `${short}:${line}` : ''}`.trim()
    self.set(key, (self.get(key) ?? 0) + hits)
  }
  // Shares of the busy samples: how long the service waited for work depends on the machine.
  const busy = total - (self.get('(idle)') ?? 0)
  self.delete('(idle)')
  console.log(`\nself time, top 30 of ${busy} busy samples (${total - busy} idle left out):`)
  for (const [key, hits] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`${((100 * hits) / busy).toFixed(1).padStart(5)}%  ${key}`)
  }
  console.log(`\nprofile: ${path.join(dir, file)}`)
}

main().catch(async (err: unknown) => {
  console.error(err)
  await stopAll()
  process.exit(1)
})
