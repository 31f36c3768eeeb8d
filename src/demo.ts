/**
 * `npm run demo`: the Incode simulator and the service together on loopback, so a newcomer sees
 * the gateway working without any Incode account. Ports come from PORT and SIMULATOR_PORT.
 */
import { buildApp } from './app.js'
import { sha256Hex } from './auth/apiKeys.js'
import { ConfigError, loadConfig } from './config.js'
import { SEEDED_SESSIONS, startSimulator } from './simulator/index.js'

const host = '127.0.0.1'
/** The demo's partner key (only its SHA-256 is configured, as in production). */
const DEMO_PARTNER_KEY = 'demo-partner-key'
const simulatorPort = Number(process.env.SIMULATOR_PORT ?? 4010)
const simulator = await startSimulator({ host, port: simulatorPort })

let config
try {
  config = loadConfig({
    ...process.env,
    HOST: process.env.HOST ?? host,
    INCODE_BASE_URL: simulator.url,
    INCODE_API_KEY: simulator.apiKey,
    INCODE_ADMIN_EMAIL: simulator.adminEmail,
    INCODE_ADMIN_PASSWORD: simulator.adminPassword,
    API_KEYS:
      process.env.API_KEYS ??
      JSON.stringify([
        {
          name: 'demo',
          scopes: ['images:read', 'links:read', 'cache:write', 'metrics:read', 'docs:read'],
          sha256: sha256Hex(DEMO_PARTNER_KEY),
        },
      ]),
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
await app.listen({ host: config.HOST, port: config.PORT })
const address = `http://${config.HOST}:${config.PORT}`
const [full, small] = SEEDED_SESSIONS
const smallId = small?.interviewId ?? ''

process.stdout.write(
  [
    '',
    `Incode simulator  ${simulator.url}`,
    `Image gateway     ${address}`,
    `Swagger UI        ${address}/docs   (Authorize with the partner key below)`,
    `Partner API key   ${DEMO_PARTNER_KEY}   (send as x-api-key)`,
    '',
    'Seeded sessions (interview IDs):',
    ...SEEDED_SESSIONS.map((s) => `  ${s.interviewId}  ${s.description}`),
    '',
    'Try:',
    `  curl -s -X POST ${address}/v1/sessions/${smallId}/images -H 'x-api-key: ${DEMO_PARTNER_KEY}' -H 'content-type: application/json' -d '{"images":["selfie","signature"]}' | head -c 300; echo`,
    `  curl -s -X POST ${address}/v1/sessions/${full?.interviewId ?? ''}/image-links -H 'x-api-key: ${DEMO_PARTNER_KEY}' -H 'content-type: application/json' -d '{"images":["selfie","fullFrameFrontID"]}'`,
    `  curl -s -X POST ${address}/v1/session/image-links -H 'content-type: application/json' -H 'x-incode-session-token: ${simulator.sessionToken(smallId)}' -d '{"images":["selfie"]}'`,
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
      .then(() => process.exit(0))
  })
}
