/**
 * `npm run fleet`: the simulator, a Redis, three replicas of the built service and nginx as the
 * load balancer in front of them, all on 127.0.0.1, for trying fleet mode by hand. Ctrl-C stops
 * everything. PORT chooses the load balancer's port (default 3000), REPLICAS their number.
 */
import { sha256Hex } from '../src/auth/apiKeys.js'
import { SEEDED_SESSIONS } from '../src/simulator/index.js'
import { killAllSync } from '../bench/lib/procs.js'
import { startFleet } from './fleet/launch.js'

const PARTNER_KEY = 'demo-partner-key'
const apiKeys = JSON.stringify([
  {
    name: 'demo',
    scopes: ['images:read', 'links:read', 'cache:write', 'metrics:read', 'docs:read', 'incode:proxy'],
    sha256: sha256Hex(PARTNER_KEY),
  },
])

const fleet = await startFleet({
  replicas: Number(process.env.REPLICAS ?? 3),
  port: Number(process.env.PORT ?? 3000),
  loadBalancer: true,
  env: { API_KEYS: apiKeys },
})
process.once('exit', killAllSync)
const [full] = SEEDED_SESSIONS
const id = full?.interviewId ?? ''
const lb = fleet.url ?? ''
process.stdout.write(
  [
    '',
    `Load balancer (nginx)   ${lb}   round robin over:`,
    ...fleet.replicas.map((r) => `  ${r.name}             ${r.url}`),
    `Redis                   ${fleet.redis?.url ?? '(none)'}`,
    `Incode simulator        ${fleet.simulator.url}`,
    `Partner API key         ${PARTNER_KEY}`,
    '',
    'Try: the first call is a MISS on one replica, the next ones HITs on the others (shared cache):',
    `  for i in 1 2 3; do curl -s -o /dev/null -w '%{http_code} %header{x-cache}\\n' -X POST ${lb}/v1/sessions/${id}/image-links \\`,
    `    -H 'x-api-key: ${PARTNER_KEY}' -H 'content-type: application/json' -d '{"images":["selfie"]}'; done`,
    `  curl -s ${lb}/readyz   # "fleet": shared state in Redis, or degraded`,
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n'),
)

let closing = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (closing) return
    closing = true
    void fleet.stop().then(() => process.exit(0))
  })
}
