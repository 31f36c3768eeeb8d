import type { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp, type BuildOptions } from '../../src/app.js'
import { LazySchemaCompilers } from '../../src/schemaCompilers.js'
import { sha256Hex } from '../../src/auth/apiKeys.js'
import { loadConfig, type Config } from '../../src/config.js'
import type { AccessEvent } from '../../src/domain/accessEvent.js'
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/index.js'

/** A partner key with every scope, configured (as its hash) in every app the harness builds. */
export const PARTNER_KEY = 'test-partner-key-0123456789'
export const TEST_API_KEYS = JSON.stringify([
  {
    name: 'test-partner',
    scopes: ['images:read', 'links:read', 'cache:write', 'metrics:read', 'docs:read', 'incode:proxy'],
    sha256: sha256Hex(PARTNER_KEY),
  },
])

export interface Harness {
  app: FastifyInstance
  simulator: Simulator
  config: Config
  /** Base URL of the app listening on loopback (for tests that need real sockets). */
  url: string
  /** The access events the app has written so far (captured in memory unless `captureTrail: false`). */
  trail: () => AccessEvent[]
}

/**
 * What no access event may hold: a link (any URL, or the simulator's signed-file path), a JWT, a
 * long base64 run (image data, a key). Credentials the test used are checked by value as well.
 */
const NEVER_IN_TRAIL: readonly RegExp[] = [
  /https?:\/\//,
  /\/files\//,
  /X-Amz-/i,
  /eyJ[A-Za-z0-9_-]{8,}/,
  /[A-Za-z0-9+/]{40,}/,
  /[A-Za-z0-9_-]{40,}/,
]

/**
 * The scan every app built here gets at teardown: its access events must hold none of
 * NEVER_IN_TRAIL and none of `secrets`. One pass of a few regular expressions over short lines.
 */
export function trailLeaks(lines: readonly string[], secrets: readonly string[]): string[] {
  const leaks: string[] = []
  for (const line of lines) {
    const pattern = NEVER_IN_TRAIL.find((p) => p.test(line))
    const secret = secrets.find((s) => line.includes(s))
    // Named by request ID: the message must not print what it found.
    const { requestId } = JSON.parse(line) as { requestId?: string }
    if (pattern || secret)
      leaks.push(`${pattern ? String(pattern) : 'a credential'} in the event of request ${String(requestId)}`)
  }
  return leaks
}

/**
 * Starts a simulator on 127.0.0.1:0 and builds the app exactly as server.ts does, pointed at it.
 * Both are closed when the test ends.
 */
export async function build(
  t: Test,
  options: {
    env?: Record<string, string>
    simulator?: SimulatorOptions
    /** A simulator already started (several apps sharing one); its owner closes it. */
    sharedSimulator?: Simulator
    admin?: boolean
    logStream?: Writable
    now?: () => number
    listen?: boolean
    /** false: the trail goes where ACCESS_TRAIL says, not to the in-memory capture. */
    captureTrail?: boolean
  } = {},
): Promise<Harness> {
  const simulator = options.sharedSimulator ?? (await startSimulator({ port: 0, ...options.simulator }))
  if (!options.sharedSimulator) t.teardown(() => simulator.close())
  const config = loadConfig({
    INCODE_BASE_URL: simulator.url,
    INCODE_API_KEY: simulator.apiKey,
    LOG_LEVEL: 'silent',
    API_KEYS: TEST_API_KEYS,
    // Many apps share a loaded test machine: event-loop shedding is tested on its own.
    SHED_EVENT_LOOP_DELAY_MS: '60000',
    ...(options.admin === false
      ? {}
      : { INCODE_ADMIN_EMAIL: simulator.adminEmail, INCODE_ADMIN_PASSWORD: simulator.adminPassword }),
    ...options.env,
  })
  // Schemas compile on first use, as in server.ts.
  const buildOptions: BuildOptions = { lazySchemas: new LazySchemaCompilers() }
  if (options.logStream) buildOptions.logStream = options.logStream
  if (options.now) buildOptions.overrides = { now: options.now }
  const lines: string[] = []
  if (options.captureTrail !== false) buildOptions.accessTrail = { write: (line: string) => lines.push(line) }
  const app = await buildApp(config, buildOptions)
  t.teardown(() => app.close())
  // Every suite built here checks its trail: no link, base64 or credential in any event.
  const secrets = [PARTNER_KEY, simulator.apiKey, simulator.adminPassword]
  t.teardown(() => {
    const leaks = trailLeaks(lines, secrets)
    if (leaks.length > 0) throw new Error(`the access trail holds what it never may: ${leaks.join('; ')}`)
  })
  let url = ''
  if (options.listen) url = await app.listen({ host: '127.0.0.1', port: 0 })
  else await app.ready()
  const trail = () => lines.map((line) => JSON.parse(line) as AccessEvent)
  return { app, simulator, config, url, trail }
}

/**
 * Headers a partner service sends with /v1 interview-ID requests. Every route test uses this, so
 * caller authentication can be added in one place.
 */
export function partnerHeaders(): Record<string, string> {
  return { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY }
}

/** Headers of a direct call to the simulator with its executive token, as the gateway sends them. */
export function simulatorAdminHeaders(simulator: Simulator): Record<string, string> {
  return {
    'content-type': 'application/json',
    'api-version': '1.0',
    'x-api-key': simulator.apiKey,
    'x-incode-hardware-id': simulator.adminToken(),
  }
}

/** The environment of a service process (src/server.ts or the bundle) pointed at `simulator`. */
export function serviceProcessEnv(
  simulator: Simulator,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '',
    PORT: '0',
    LOG_LEVEL: 'silent',
    INCODE_BASE_URL: simulator.url,
    INCODE_API_KEY: simulator.apiKey,
    INCODE_ADMIN_EMAIL: simulator.adminEmail,
    INCODE_ADMIN_PASSWORD: simulator.adminPassword,
    API_KEYS: TEST_API_KEYS,
    // As in build(): a process starting on a loaded machine stalls, and must not shed for it.
    SHED_EVENT_LOOP_DELAY_MS: '60000',
    ...extra,
  }
}
