import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import type { HttpCall, LoopPlan, LoopResult } from './protocol.js'
import {
  cpuTimeMs,
  freePort,
  removeAtExit,
  runToEnd,
  startChild,
  stopChild,
  waitForStatus,
  type Child,
} from './procs.js'
import type { ChildScript } from './scripts.js'

/** Where things are. */
export const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
export const REPO_DIR = path.dirname(BENCH_DIR)
export const DIST_SERVER = path.join(REPO_DIR, 'dist', 'server.js')
export const DIST_SIMULATOR = path.join(REPO_DIR, 'dist', 'simulator', 'cli.js')

export const FULL_INTERVIEW = '662f1a3b9c4e5d6f7a8b9c01'
export const SIM_API_KEY = 'sim-api-key'
export const SIM_ADMIN_EMAIL = 'admin@example.com'
export const SIM_ADMIN_PASSWORD = 'sim-admin-password'

export interface LatencyModel {
  fixedMs: number
  perMiBMs: number
}

/** A minimal environment for children: nothing inherited from the shell but PATH, HOME, TMPDIR, LANG. */
export function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG']) {
    const value = process.env[name]
    if (value !== undefined) env[name] = value
  }
  return { ...env, ...extra }
}

export interface Server {
  name: string
  child: Child
  url: string
  pid: number
}

export async function stopServer(server: Server | undefined): Promise<void> {
  if (server) await stopChild(server.child)
}

// ---- the simulator -----------------------------------------------------------------------

export async function startSimulatorProcess(latency: LatencyModel): Promise<Server> {
  const useDist = existsSync(DIST_SIMULATOR)
  const args = useDist ? [DIST_SIMULATOR] : ['--import', 'tsx', path.join(REPO_DIR, 'src/simulator/cli.ts')]
  let resolveUrl: (url: string) => void = () => undefined
  const urlSeen = new Promise<string>((resolve) => (resolveUrl = resolve))
  let seen = ''
  const child = startChild('simulator', process.execPath, args, {
    cwd: REPO_DIR,
    env: baseEnv({
      SIMULATOR_HOST: '127.0.0.1',
      SIMULATOR_PORT: '0',
      SIMULATOR_QUIET: '1',
      SIMULATOR_LATENCY_FIXED_MS: String(latency.fixedMs),
      SIMULATOR_LATENCY_PER_MIB_MS: String(latency.perMiBMs),
    }),
    onStdout: (text) => {
      seen += text
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(seen)
      if (match?.[1]) resolveUrl(match[1])
    },
  })
  const url = await Promise.race([
    urlSeen,
    child.exited.then(() => {
      throw new Error(`the simulator exited while starting:\n${child.output()}`)
    }),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('the simulator did not start within 20 s')), 20_000).unref(),
    ),
  ])
  // The seeded sessions are generated right after the banner: wait until they answer.
  await waitForStatus(`${url}/__sim/sessions`, { timeoutMs: 20_000, child })
  return { name: 'simulator', child, url, pid: child.pid }
}

export async function setLatency(simUrl: string, latency: LatencyModel): Promise<void> {
  const res = await request(`${simUrl}/__sim/latency`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(latency),
  })
  await res.body.dump()
  if (res.statusCode !== 200) throw new Error(`PUT /__sim/latency answered ${res.statusCode}`)
}

export async function clearSimCalls(simUrl: string): Promise<void> {
  const res = await request(`${simUrl}/__sim/calls`, { method: 'DELETE' })
  await res.body.dump()
}

export interface SimCall {
  endpoint: string
  images?: string[]
  status: number
  responseBytes: number
}

export async function simCalls(simUrl: string, endpoint: string): Promise<SimCall[]> {
  const res = await request(`${simUrl}/__sim/calls?endpoint=${endpoint}`)
  return (await res.body.json()) as SimCall[]
}

export async function adminLogin(simUrl: string): Promise<string> {
  const res = await request(`${simUrl}/executive/log-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'api-version': '1.0', 'x-api-key': SIM_API_KEY },
    body: JSON.stringify({ email: SIM_ADMIN_EMAIL, password: SIM_ADMIN_PASSWORD }),
  })
  const body = (await res.body.json()) as { token?: string }
  if (res.statusCode !== 200 || !body.token) throw new Error(`admin log-in answered ${res.statusCode}`)
  return body.token
}

// ---- the service, in its production configuration -----------------------------------------

/** The bench's partner key: only its SHA-256 is configured (API_KEYS), the key goes in x-api-key. */
export const BENCH_API_KEY = `bench-${randomBytes(16).toString('hex')}`

/** What `startService` runs: dist/server.js by default; `--dist` and `--service-env` change it. */
export const serviceSetup: { serverJs: string; extraEnv: Record<string, string> } = {
  serverJs: DIST_SERVER,
  extraEnv: {},
}

export function serviceEnv(simUrl: string, port: number): NodeJS.ProcessEnv {
  return baseEnv({
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    INCODE_BASE_URL: simUrl,
    INCODE_API_KEY: SIM_API_KEY,
    INCODE_ADMIN_EMAIL: SIM_ADMIN_EMAIL,
    INCODE_ADMIN_PASSWORD: SIM_ADMIN_PASSWORD,
    API_KEYS: JSON.stringify([
      {
        name: 'bench',
        scopes: ['images:read', 'links:read', 'cache:write', 'metrics:read'],
        sha256: createHash('sha256').update(BENCH_API_KEY).digest('hex'),
      },
    ]),
    RATE_LIMIT_MAX: '10000000',
    ...serviceSetup.extraEnv,
  })
}

export const serviceHeaders = (): Record<string, string> => ({
  'content-type': 'application/json',
  'x-api-key': BENCH_API_KEY,
})

/** `node dist/server.js`; resolves when /readyz answers 200, with the time from spawn to that answer. */
export async function startService(
  simUrl: string,
  node: string = process.execPath,
  name = 'service',
): Promise<Server & { readyMs: number; readyCpuMs: number }> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const t0 = performance.now()
  const child = startChild(name, node, [serviceSetup.serverJs], {
    cwd: REPO_DIR,
    env: serviceEnv(simUrl, port),
  })
  await waitForStatus(`${url}/readyz`, { timeoutMs: 20_000, intervalMs: 2, child })
  const readyMs = performance.now() - t0
  // CPU time used until ready: close to the wall time on an idle machine, whatever the load now.
  const readyCpuMs = cpuTimeMs(child.pid) ?? Number.NaN
  return { name, child, url, pid: child.pid, readyMs, readyCpuMs }
}

// ---- the bench's own contenders (compiled TypeScript, plain node) --------------------------

export async function startScript(
  name: string,
  scripts: Map<ChildScript, string>,
  script: ChildScript,
  env: Record<string, string>,
  readyPath: string,
  node: string = process.execPath,
): Promise<Server> {
  const file = scripts.get(script)
  if (!file) throw new Error(`${script} was not compiled`)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const child = startChild(name, node, [file], {
    cwd: REPO_DIR,
    env: baseEnv({ NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port), ...env }),
  })
  await waitForStatus(`${url}${readyPath}`, { timeoutMs: 20_000, child })
  return { name, child, url, pid: child.pid }
}

// ---- the request-loop client ---------------------------------------------------------------

export async function runLoop(
  scripts: Map<ChildScript, string>,
  workDir: string,
  plan: LoopPlan,
): Promise<LoopResult> {
  const file = scripts.get('clients/loop.ts')
  if (!file) throw new Error('clients/loop.ts was not compiled')
  const dir = mkdtempSync(path.join(workDir, 'loop-'))
  const planPath = path.join(dir, 'plan.json')
  const resultPath = path.join(dir, 'result.json')
  writeFileSync(planPath, JSON.stringify(plan))
  await runToEnd('loop client', process.execPath, [file, planPath, resultPath], {
    cwd: REPO_DIR,
    env: baseEnv({}),
    timeoutMs: plan.maxMs + 60_000,
  })
  const result = JSON.parse(readFileSync(resultPath, 'utf8')) as LoopResult
  rmSync(dir, { recursive: true, force: true })
  return result
}

/** One request from the bench itself (set-up and checks only, never a measurement). */
export async function call(
  c: HttpCall,
): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const res = await request(c.url, {
    method: c.method,
    ...(c.headers === undefined ? {} : { headers: c.headers }),
    ...(c.body === undefined ? {} : { body: c.body }),
    bodyTimeout: 60_000,
  })
  const body = Buffer.from(await res.body.arrayBuffer())
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(res.headers))
    if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v
  return { status: res.statusCode, headers, body }
}

export function tempDir(): string {
  return removeAtExit(mkdtempSync(path.join(os.tmpdir(), 'incode-bench-')))
}

/** The environment of a split-fetching contender (bufferAll, chunkPipe): the simulator and a plan. */
export function splitContenderEnv(simUrl: string, chunks: string[][]): Record<string, string> {
  return {
    UPSTREAM_URL: simUrl,
    INCODE_API_KEY: SIM_API_KEY,
    INCODE_ADMIN_EMAIL: SIM_ADMIN_EMAIL,
    INCODE_ADMIN_PASSWORD: SIM_ADMIN_PASSWORD,
    UPSTREAM_CONNECTIONS: '32',
    BENCH_CHUNKS: JSON.stringify(chunks),
  }
}
