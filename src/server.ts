import { once } from 'node:events'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { loadEnvFileIfPresent } from './envFile.js'
import { LazySchemaCompilers } from './schemaCompilers.js'
import { TracingConfigError, tracingSettings } from './tracing/settings.js'
import type { Tracing } from './tracing/setup.js'

/** Process concerns only: config, listen, graceful close. */
function readConfig(): Config {
  try {
    return loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write('Configuration error (every setting is described in .env.example):\n')
      for (const line of err.problems) process.stderr.write(`  ${line}\n`)
      process.exit(1)
    }
    throw err
  }
}

/**
 * The OpenTelemetry SDK is loaded only when the environment switches tracing on: it is a large
 * part of the bundle (its own chunk), and parsing it cost start-up time a service without tracing
 * does not need to spend.
 */
async function startTracingOrExit(): Promise<Tracing | undefined> {
  try {
    if (tracingSettings(process.env).exporters.length === 0) return undefined
    const { startTracing } = await import('./tracing/setup.js')
    return startTracing(process.env)
  } catch (err) {
    if (err instanceof TracingConfigError) {
      process.stderr.write(`Tracing configuration error: ${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
}

// Settings from .env when present; the real environment wins over it.
const envFileRead = loadEnvFileIfPresent()
const config = readConfig()
// Off unless OTEL_TRACES_EXPORTER names an exporter; before the app, whose Fastify it instruments.
const tracing = await startTracingOrExit()
// Schemas compile on first use, and in the background once listening: start-up stays short.
const lazySchemas = new LazySchemaCompilers()
const app = await buildApp(config, { lazySchemas })
if (envFileRead) app.log.info('settings read from .env (the environment wins over it)')

/** After the grace, how long the last answers get to be written before the process gives up (exit 1). */
const LAST_ANSWERS_MS = 5_000
/**
 * At most how long the first readiness check waits for Redis's first answer in fleet mode (a
 * refused connection ends the wait at once) before going on without it.
 */
const FLEET_CONNECT_WAIT_MS = 10_000

closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS + LAST_ANSWERS_MS }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an error')
  else app.log.info({ signal }, 'closing')
  // 'close' comes once the server is closed and its last connection has ended.
  const serverClosed = once(app.server, 'close')
  const closed = app.close()
  let graceTimer: NodeJS.Timeout | undefined
  const graceOver = new Promise<'grace over'>((resolve) => {
    graceTimer = setTimeout(resolve, config.SHUTDOWN_GRACE_MS, 'grace over')
  })
  if ((await Promise.race([closed, graceOver])) !== 'grace over') {
    clearTimeout(graceTimer)
    // The last spans are exported before the process ends.
    await tracing?.shutdown()
    return
  }
  // Requests that outlast the grace get an answer (503, Retry-After) or, when theirs has begun,
  // are cut. Once their connections have ended nothing is left to serve: the process ends (exit 0)
  // without waiting for the Incode calls those requests had under way.
  const ended = app.endInFlight()
  app.log.warn(ended, 'shutdown grace over: requests still in flight answered 503 or cut')
  await serverClosed
})

// Readiness asks Incode (and logs in as admin): begun here, while the server starts listening, the
// first /readyz finds it under way or done (results are kept a few seconds, src/readiness.ts). In
// fleet mode it waits for Redis first (bounded), so that the fleet logs in once, not each replica.
const firstCheck = async (): Promise<void> => {
  await app.fleet?.connected(FLEET_CONNECT_WAIT_MS)
  await app.readiness.check()
}
firstCheck().catch((err: unknown) => app.log.warn({ err }, 'first readiness check failed'))
await app.listen({ host: config.HOST, port: config.PORT })
// Tells a parent process (tests, benchmarks) where the service listens.
if (process.send) {
  process.send({ listening: app.server.address() })
  // A parent that goes away (npm run fleet stopped hard, a test runner killed) takes its service
  // processes with it, through the same graceful close as SIGTERM.
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'))
}
// The rest of the schemas compile once start-up is over, between requests.
setTimeout(() => void lazySchemas.warmUp(), 1_000).unref()
