import { readFileSync } from 'node:fs'
import t from 'tap'
import { parseAllDocuments, parse } from 'yaml'
import { ConfigSchema } from '../../src/config.js'
import { build, PARTNER_KEY } from '../helpers/build.js'

// No container engine or cluster here: the deployment files are read as data and checked against
// the service they deploy, so that they cannot drift from it.

const SETTINGS = new Set(Object.keys(ConfigSchema.properties))
/** Settings whose values are secrets: they may only come from a Secret or an env file. */
const SECRET_SETTINGS = [
  'INCODE_API_KEY',
  'INCODE_ADMIN_PASSWORD',
  'INCODE_ADMIN_TOKEN',
  'API_KEYS',
  'FLEET_SECRET',
  'FLEET_OLD_SECRETS',
  'INCODE_ADMIN_EMAIL',
]

type Doc = Record<string, unknown>
const asDoc = (value: unknown): Doc => (typeof value === 'object' && value !== null ? (value as Doc) : {})
const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : [])

function k8sDocs(file: string): Doc[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => asDoc(d.toJS()))
}

const gateway = k8sDocs('deploy/k8s/gateway.yaml')
const byKind = (kind: string): Doc => {
  const doc = gateway.find((d) => d.kind === kind)
  if (!doc) throw new Error(`no ${kind} in deploy/k8s/gateway.yaml`)
  return doc
}
const podSpec = asDoc(asDoc(asDoc(byKind('Deployment').spec).template).spec)
const container = asDoc(asList(podSpec.containers)[0])

t.test('k8s: every variable set is a setting; secrets come from the Secret only', async (t) => {
  const env = asList(container.env).map(asDoc)
  t.ok(env.length > 5, 'the container has an environment')
  for (const variable of env) {
    const name = String(variable.name)
    t.ok(SETTINGS.has(name), `${name} is a setting of src/config.ts`)
    if (SECRET_SETTINGS.includes(name)) {
      t.notOk('value' in variable, `${name} has no inline value`)
      t.ok(asDoc(asDoc(variable.valueFrom).secretKeyRef).name, `${name} comes from a secretKeyRef`)
    }
  }
  const secret = k8sDocs('deploy/k8s/secret.example.yaml')[0] ?? {}
  for (const value of Object.values(asDoc(secret.stringData)))
    t.match(String(value), /^(<from your secret manager>|)$/, 'the example Secret holds placeholders only')
})

t.test('k8s: probes, port, security context, PDB, HPA', async (t) => {
  const port = asDoc(asList(container.ports)[0])
  const env = new Map(
    asList(container.env)
      .map(asDoc)
      .map((e) => [String(e.name), e.value]),
  )
  t.equal(String(env.get('PORT')), String(port.containerPort), 'PORT is the container port')
  t.equal(asDoc(asDoc(container.livenessProbe).httpGet).path, '/healthz', 'liveness on /healthz')
  t.equal(asDoc(asDoc(container.readinessProbe).httpGet).path, '/readyz', 'readiness on /readyz')
  t.equal(asDoc(asDoc(container.startupProbe).httpGet).path, '/healthz', 'start-up on /healthz')
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'])
    t.equal(asDoc(asDoc(container[probe]).httpGet).port, port.name, `${probe} on the named port`)
  const security = asDoc(container.securityContext)
  t.equal(security.readOnlyRootFilesystem, true, 'read-only root filesystem')
  t.equal(security.allowPrivilegeEscalation, false, 'no privilege escalation')
  t.equal(asDoc(podSpec.securityContext).runAsNonRoot, true, 'non-root')
  t.ok(asDoc(asDoc(container.resources).limits).memory, 'a memory limit')
  t.ok(asDoc(asDoc(container.resources).requests).cpu, 'a CPU request (the HPA needs it)')
  const grace = Number(podSpec.terminationGracePeriodSeconds)
  t.ok(
    grace * 1000 > Number(ConfigSchema.properties.SHUTDOWN_GRACE_MS.default),
    'the pod outlives the shutdown grace',
  )
  t.equal(
    asDoc(asDoc(byKind('PodDisruptionBudget').spec).selector).matchLabels !== undefined,
    true,
    'a PDB with a selector',
  )
  t.equal(
    asDoc(asDoc(byKind('HorizontalPodAutoscaler').spec).scaleTargetRef).name,
    asDoc(byKind('Deployment').metadata).name,
    'the HPA scales the Deployment',
  )
  const service = asDoc(asList(asDoc(byKind('Service').spec).ports)[0])
  t.equal(service.targetPort, port.name, 'the Service targets the named port')
})

t.test('compose: settings exist, secrets only from the env file, health check on /readyz', async (t) => {
  const compose = asDoc(parse(readFileSync('deploy/compose/compose.yaml', 'utf8'), { merge: true }))
  const services = asDoc(compose.services)
  const replicas = Object.keys(services).filter((name) => name.startsWith('gateway-'))
  t.equal(replicas.length, 3, 'three replicas')
  for (const name of replicas) {
    const service = asDoc(services[name])
    for (const variable of Object.keys(asDoc(service.environment))) {
      t.ok(SETTINGS.has(variable), `${name}: ${variable} is a setting`)
      t.notOk(SECRET_SETTINGS.includes(variable), `${name}: ${variable} is not inlined`)
    }
    t.equal(service.env_file, 'gateway.env', `${name}: secrets from gateway.env`)
    t.equal(service.read_only, true, `${name}: read-only root filesystem`)
    t.match(JSON.stringify(asDoc(service.healthcheck).test), /\/readyz/, `${name}: health check on /readyz`)
  }
  const example = readFileSync('deploy/compose/gateway.env.example', 'utf8')
  for (const line of example.split('\n').filter((l) => /^[A-Z_]+=/.test(l))) {
    const [name = '', value = ''] = line.split('=', 2)
    t.ok(SETTINGS.has(name), `gateway.env.example: ${name} is a setting`)
    if (SECRET_SETTINGS.includes(name)) t.equal(value, '', `gateway.env.example: ${name} is left empty`)
  }
  const nginx = readFileSync('deploy/compose/nginx.conf', 'utf8')
  for (const name of replicas)
    t.match(nginx, new RegExp(`server ${name}:3000`), `the balancer sends to ${name}`)
})

t.test('the probe paths the manifests use answer on a running service', async (t) => {
  const { app } = await build(t)
  for (const path of ['/healthz', '/readyz']) {
    const res = await app.inject({ url: path, headers: { 'x-api-key': PARTNER_KEY } })
    t.equal(res.statusCode, 200, `${path} answers 200`)
  }
})
