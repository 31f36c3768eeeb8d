/**
 * `npm run simulator`: starts the Incode simulator and prints how to use it.
 *
 * Environment: SIMULATOR_HOST (127.0.0.1), SIMULATOR_PORT (4010), SIMULATOR_API_KEY, SIMULATOR_ADMIN_EMAIL,
 * SIMULATOR_ADMIN_PASSWORD, SIMULATOR_SEED, SIMULATOR_LINK_TTL_MS, SIMULATOR_LATENCY_FIXED_MS,
 * SIMULATOR_LATENCY_PER_MIB_MS.
 */
import { SEEDED_SESSIONS, startSimulator, type SimulatorOptions } from './index.js'

function numberFromEnv(name: string): number | undefined {
  const raw = process.env[name]?.trim()
  if (!raw) return undefined
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`${name} must be a non-negative number, got ${raw}`)
  return value
}

function stringFromEnv(name: string): string | undefined {
  const raw = process.env[name]?.trim()
  return raw ? raw : undefined
}

async function main(): Promise<void> {
  const options: SimulatorOptions = {
    host: stringFromEnv('SIMULATOR_HOST') ?? '127.0.0.1',
    port: numberFromEnv('SIMULATOR_PORT') ?? 4010,
  }
  if (!process.env.SIMULATOR_QUIET) options.logger = (line) => console.log(line)
  const apiKey = stringFromEnv('SIMULATOR_API_KEY')
  if (apiKey) options.apiKey = apiKey
  const adminEmail = stringFromEnv('SIMULATOR_ADMIN_EMAIL')
  if (adminEmail) options.adminEmail = adminEmail
  const adminPassword = stringFromEnv('SIMULATOR_ADMIN_PASSWORD')
  if (adminPassword) options.adminPassword = adminPassword
  const seed = numberFromEnv('SIMULATOR_SEED')
  if (seed !== undefined) options.seed = seed
  const linkTtlMs = numberFromEnv('SIMULATOR_LINK_TTL_MS')
  if (linkTtlMs !== undefined) options.linkTtlMs = linkTtlMs
  const fixedMs = numberFromEnv('SIMULATOR_LATENCY_FIXED_MS')
  const perMiBMs = numberFromEnv('SIMULATOR_LATENCY_PER_MIB_MS')
  if (fixedMs !== undefined || perMiBMs !== undefined)
    options.latency = { fixedMs: fixedMs ?? 0, perMiBMs: perMiBMs ?? 0 }

  const sim = await startSimulator(options)
  const lines = [
    `Incode simulator listening on ${sim.url}`,
    `  API key (x-api-key):  ${sim.apiKey}`,
    `  Admin log-in:         ${sim.adminEmail} / ${sim.adminPassword}  (POST ${sim.paths.adminLogin})`,
    `  Paths:                ${Object.entries(sim.paths)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    `  Latency:              ${JSON.stringify(options.latency ?? { fixedMs: 0, perMiBMs: 0 })}`,
    '  Seeded sessions (session token goes in X-Incode-Hardware-Id):',
  ]
  for (const { interviewId, description } of SEEDED_SESSIONS) {
    lines.push(`  - ${interviewId}  ${description}`, `      token: ${sim.sessionToken(interviewId)}`)
  }
  lines.push('  Control: GET|DELETE /__sim/calls, PUT /__sim/faults, PUT /__sim/latency, GET /__sim/sessions')
  console.log(lines.join('\n'))

  // generate the seeded images now rather than on the first request
  for (const { interviewId } of SEEDED_SESSIONS) sim.session(interviewId)

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    console.log(`Received ${signal}, closing the simulator`)
    sim.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err)
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})
