import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { loadEnvFileIfPresent } from './envFile.js'
import { LazySchemaCompilers } from './schemaCompilers.js'

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

// Settings from .env when present; the real environment wins over it.
const envFileRead = loadEnvFileIfPresent()
const config = readConfig()
// Schemas compile on first use, and in the background once listening: start-up stays short.
const lazySchemas = new LazySchemaCompilers()
const app = await buildApp(config, { lazySchemas })
if (envFileRead) app.log.info('settings read from .env (the environment wins over it)')

closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an error')
  else app.log.info({ signal }, 'closing')
  await app.close()
})

await app.listen({ host: config.HOST, port: config.PORT })
// Tells a parent process (tests, benchmarks) where the service listens.
if (process.send) process.send({ listening: app.server.address() })
// The rest of the schemas compile once start-up is over, between requests.
setTimeout(() => void lazySchemas.warmUp(), 1_000).unref()
