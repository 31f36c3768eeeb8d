import type { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp, type BuildOptions } from '../../src/app.js'
import { LazySchemaCompilers } from '../../src/schemaCompilers.js'
import { sha256Hex } from '../../src/auth/apiKeys.js'
import { loadConfig, type Config } from '../../src/config.js'
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
    admin?: boolean
    logStream?: Writable
    now?: () => number
    listen?: boolean
    /** An already running simulator to point at (replicas sharing one), instead of a new one. */
    sharedSimulator?: Simulator
  } = {},
): Promise<Harness> {
  let simulator = options.sharedSimulator
  if (!simulator) {
    const started = await startSimulator({ port: 0, ...options.simulator })
    t.teardown(() => started.close())
    simulator = started
  }
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
  const app = await buildApp(config, buildOptions)
  t.teardown(() => app.close())
  let url = ''
  if (options.listen) url = await app.listen({ host: '127.0.0.1', port: 0 })
  else await app.ready()
  return { app, simulator, config, url }
}

/**
 * Headers a partner service sends with /v1 interview-ID requests. Every route test uses this, so
 * caller authentication can be added in one place.
 */
export function partnerHeaders(): Record<string, string> {
  return { 'content-type': 'application/json', 'x-api-key': PARTNER_KEY }
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
