/**
 * `npm run demo`: the Incode simulator and the service together on loopback, so a newcomer sees
 * the gateway working without any Incode account. Ports come from PORT and SIMULATOR_PORT (0: any
 * free port); other settings from the environment or .env, the Incode ones pointing at the simulator.
 */
import { buildApp } from './app.js'
import { sha256Hex } from './auth/apiKeys.js'
import { ConfigError, loadConfig } from './config.js'
import { loadEnvFileIfPresent } from './envFile.js'
import { SEEDED_SESSIONS, startSimulator } from './simulator/index.js'
import { startTracing } from './tracing/setup.js'

/** Loopback only: the demo's keys and passwords are printed and well known. */
const host = '127.0.0.1'
/** The demo's partner key (only its SHA-256 is configured, as in production). */
const DEMO_PARTNER_KEY = 'demo-partner-key'
const DEMO_KEY = {
  name: 'demo',
  scopes: ['images:read', 'links:read', 'cache:write', 'metrics:read', 'docs:read', 'incode:proxy'],
  sha256: sha256Hex(DEMO_PARTNER_KEY),
}

/** The demo key, and the keys of API_KEYS (from the environment or .env) when it is a JSON list. */
function apiKeys(configured: string | undefined): string {
  if (configured === undefined || configured.trim() === '') return JSON.stringify([DEMO_KEY])
  try {
    const keys: unknown = JSON.parse(configured)
    return Array.isArray(keys) ? JSON.stringify([DEMO_KEY, ...(keys as unknown[])]) : configured
  } catch {
    return configured // not JSON: the config check below says so
  }
}

loadEnvFileIfPresent()
// Tracing as in server.ts (off unless OTEL_TRACES_EXPORTER is set; `console` prints the spans).
const tracing = startTracing(process.env)
const simulatorPort = Number(process.env.SIMULATOR_PORT ?? 4010)
const simulator = await startSimulator({ host, port: simulatorPort })

let config
try {
  config = loadConfig({
    ...process.env,
    HOST: host,
    INCODE_BASE_URL: simulator.url,
    INCODE_API_KEY: simulator.apiKey,
    INCODE_ADMIN_EMAIL: simulator.adminEmail,
    INCODE_ADMIN_PASSWORD: simulator.adminPassword,
    API_KEYS: apiKeys(process.env.API_KEYS),
  })
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`Configuration error:\n  ${err.problems.join('\n  ')}\n`)
    await simulator.close()
    process.exit(1)
  }
  throw err
}

const app = await buildApp({ ...config, LOG_LEVEL: process.env.LOG_LEVEL ? config.LOG_LEVEL : 'warn' })
// The address listened on (PORT=0 picks a free port).
const address = await app.listen({ host, port: config.PORT })
const [full, small] = SEEDED_SESSIONS
const fullId = full?.interviewId ?? ''
const smallId = small?.interviewId ?? ''
const smallToken = simulator.sessionToken(smallId)
const json = "-H 'content-type: application/json'"
const partner = `-H 'x-api-key: ${DEMO_PARTNER_KEY}'`

process.stdout.write(
  [
    '',
    `Image gateway       ${address}`,
    `  Swagger UI        ${address}/docs   (press Authorize, enter the partner key)`,
    `  partner API key   ${DEMO_PARTNER_KEY}   (x-api-key, for /v1/sessions/{interviewId}/...)`,
    `Incode simulator    ${simulator.url}`,
    `  API key           ${simulator.apiKey}   (x-api-key, for the simulator itself)`,
    `  executive log-in  ${simulator.adminEmail} / ${simulator.adminPassword}   (POST ${simulator.url}${simulator.paths.adminLogin})`,
    '',
    'Seeded sessions, each with a session token (X-Incode-Session-Token on /v1/session/...,',
    'X-Incode-Hardware-Id on the drop-in Incode paths /omni/get/...):',
    ...SEEDED_SESSIONS.flatMap((s) => [
      `  ${s.interviewId}  ${s.description}`,
      `    token: ${simulator.sessionToken(s.interviewId)}`,
    ]),
    '',
    'Try:',
    '  # base64 images, split and merged (partner key)',
    `  curl -s -X POST ${address}/v1/sessions/${smallId}/images ${partner} ${json} \\`,
    `    -d '{"images":["selfie","signature"]}' | head -c 300; echo`,
    '  # image links, cached: X-Cache says MISS, then HIT (partner key)',
    `  curl -si -X POST ${address}/v1/sessions/${fullId}/image-links ${partner} ${json} \\`,
    `    -d '{"images":["selfie","fullFrameFrontID"]}'`,
    "  # a frontend's own session (session token)",
    `  curl -s -X POST ${address}/v1/session/image-links ${json} \\`,
    `    -H 'X-Incode-Session-Token: ${smallToken}' -d '{"images":["selfie"]}'`,
    "  # Incode's own path and answer (drop-in: an Incode client changes its base URL for image calls)",
    `  curl -s -X POST ${address}${config.INCODE_PATH_IMAGES} ${json}${config.DROPIN_KEY_REQUIRED ? ` ${partner}` : ''} \\`,
    `    -H 'X-Incode-Hardware-Id: ${smallToken}' -d '{"images":["selfie","signature"]}' | head -c 300; echo`,
    '',
    'Ctrl-C stops both.',
    '',
  ].join('\n'),
)

let closing = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (closing) return
    closing = true
    void app
      .close()
      .then(() => simulator.close())
      .then(() => tracing?.shutdown())
      .then(() => process.exit(0))
  })
}
