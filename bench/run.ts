/**
 * `npm run bench` (tsx bench/run.ts): the service against nginx, a plain proxy, a naive client and
 * the simulator itself, on loopback, in one run. Progress goes to stderr; the results table (markdown)
 * to stdout; the figures to bench/results/latest.json.
 *
 *   --quick        every duration and count shrunk (< 1 minute); checks that the harness works
 *   --out FILE     where to write the JSON (default bench/results/latest.json)
 *   --build        run the TypeScript build first even when dist/ exists
 *   --write-doc    also write bench/PERFORMANCE.md (the README's Performance section) from this run
 *   --strict       exit 1 when a target is missed (default: only when something could not be measured)
 *   --only a,b     run only these scenarios (linksWarm, linksCold, coalescing200, base64FullSet,
 *                  memory50, growth, coldStart, tracing, fleet); for working on the harness
 *   --dist DIR     bench another build of the service (DIR/server.js), e.g. a patched copy
 *   --service-env K=V  extra environment for the service (repeatable), e.g. to try a setting
 *   --no-node24    measure under the bench's own Node only (else also under Node 24, `npx -y node@24`)
 *   --node24       with --quick, measure Node 24 too (a quick run skips it, to stay short)
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import * as prettier from 'prettier'
import { ensureNginx, nginxErrorLog, startNginx, stopNginx, type NginxInstance } from './lib/nginx.js'
import { freePort, killAllSync, liveChildren, runToEnd, stopAll } from './lib/procs.js'
import { errorRows, machine, machineLine, markdownReport } from './lib/report.js'
import { node24 } from './lib/runtimes.js'
import { compileChildScripts } from './lib/scripts.js'
import { corePlan, ensureWrk, wrkVersion } from './lib/wrk.js'
import {
  adminLogin,
  BENCH_DIR,
  DIST_SERVER,
  REPO_DIR,
  serviceSetup,
  startScript,
  startService,
  startSimulatorProcess,
  tempDir,
  type LatencyModel,
} from './lib/stack.js'
import {
  base64FullSet,
  coalescing,
  coldStart,
  fleet,
  FULL_PROFILE,
  growth,
  linksCold,
  linksWarm,
  memory,
  QUICK_PROFILE,
  type Ctx,
  type ScenarioResult,
} from './scenarios/index.js'
import { tracingOverhead } from './scenarios/tracingOverhead.js'

// ---- arguments --------------------------------------------------------------------------------

interface Args {
  quick: boolean
  out: string
  build: boolean
  writeDoc: boolean
  strict: boolean
  only: string[] | undefined
  dist: string | undefined
  serviceEnv: Record<string, string>
  node24: boolean
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    quick: false,
    out: path.join(BENCH_DIR, 'results', 'latest.json'),
    build: false,
    writeDoc: false,
    strict: false,
    only: undefined,
    dist: undefined,
    serviceEnv: {},
    node24: true,
  }
  let node24Asked = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--quick') args.quick = true
    else if (a === '--build') args.build = true
    else if (a === '--write-doc') args.writeDoc = true
    else if (a === '--strict') args.strict = true
    else if (a === '--no-node24') args.node24 = false
    else if (a === '--node24') node24Asked = true
    else if (a === '--out') args.out = path.resolve(argv[++i] ?? '')
    else if (a === '--only') args.only = (argv[++i] ?? '').split(',').filter(Boolean)
    else if (a === '--dist') args.dist = path.resolve(argv[++i] ?? '')
    else if (a === '--service-env') {
      const pair = argv[++i] ?? ''
      const eq = pair.indexOf('=')
      if (eq < 1) throw new Error(`--service-env wants NAME=VALUE, got ${pair}`)
      args.serviceEnv[pair.slice(0, eq)] = pair.slice(eq + 1)
    } else throw new Error(`unknown argument ${a}`)
  }
  // A quick run checks the harness: a second runtime's processes and cold starts double its time.
  if (args.quick && !node24Asked) args.node24 = false
  return args
}

const args = parseArgs(process.argv.slice(2))
if (args.dist) serviceSetup.serverJs = path.join(args.dist, 'server.js')
serviceSetup.extraEnv = args.serviceEnv
const profile = args.quick ? QUICK_PROFILE : FULL_PROFILE
/** The simulator's latency model in every scenario: a realistic upstream (fixed cost + transfer). */
const LATENCY: LatencyModel = { fixedMs: 20, perMiBMs: 8 }
/** The whole run stops by itself after this long, whatever happens. */
const RUN_LIMIT_MS = args.quick ? 150_000 : 30 * 60_000

const startedAt = Date.now()
const stamp = () => {
  const s = Math.round((Date.now() - startedAt) / 1000)
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`
}
const progress = (message: string) => process.stderr.write(`[bench ${stamp()}] ${message}\n`)

// ---- every child is stopped, whatever happens ----------------------------------------------

process.on('exit', killAllSync)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping ${liveChildren().join(', ') || 'nothing'}`)
    void stopAll().finally(() => process.exit(130))
  })
}
const watchdog = setTimeout(() => {
  progress(`time limit of ${RUN_LIMIT_MS / 1000} s reached: stopping ${liveChildren().join(', ')}`)
  void stopAll().finally(() => process.exit(3))
}, RUN_LIMIT_MS)

// ---- the build --------------------------------------------------------------------------------

function newestMtime(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs)
  }
  return newest
}

async function ensureBuilt(): Promise<void> {
  if (args.dist) {
    if (!existsSync(serviceSetup.serverJs)) throw new Error(`${serviceSetup.serverJs} does not exist`)
    return
  }
  if (args.build || !existsSync(DIST_SERVER)) {
    progress('building the service (tsc -p tsconfig.build.json)')
    const tsc = path.join(REPO_DIR, 'node_modules', 'typescript', 'bin', 'tsc')
    await runToEnd('build', process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
      cwd: REPO_DIR,
      timeoutMs: 180_000,
    })
    return
  }
  if (newestMtime(path.join(REPO_DIR, 'src')) > statSync(DIST_SERVER).mtimeMs) {
    progress(
      'note: src/ has changed since dist/ was built; run with --build (or npm run build) to bench the latest code',
    )
  }
}

// ---- the run ----------------------------------------------------------------------------------

const SCENARIOS: Array<{ key: string; run: (ctx: Ctx) => Promise<ScenarioResult> }> = [
  { key: 'linksWarm', run: linksWarm },
  { key: 'linksCold', run: linksCold },
  { key: 'coalescing200', run: coalescing },
  { key: 'base64FullSet', run: base64FullSet },
  { key: 'memory50', run: memory },
  { key: 'growth', run: growth },
  { key: 'coldStart', run: coldStart },
  { key: 'tracing', run: tracingOverhead },
  { key: 'fleet', run: fleet },
]

/** The checkout's commit, whether src/ has uncommitted changes (read-only git), and the build's age. */
function sourceRevision(): string {
  let revision = 'commit unknown'
  try {
    const git = (...gitArgs: string[]) =>
      execFileSync('git', gitArgs, { cwd: REPO_DIR, encoding: 'utf8' }).trim()
    const head = git('rev-parse', '--short', 'HEAD')
    const dirty = git('status', '--porcelain', '--', 'src')
    revision = dirty === '' ? `commit ${head}` : `commit ${head} + uncommitted changes in src/`
  } catch {
    // not a git checkout
  }
  if (!args.dist && newestMtime(path.join(REPO_DIR, 'src')) > statSync(DIST_SERVER).mtimeMs)
    revision += ' (dist/ is older than src/)'
  return revision
}

function versionOf(pkg: string): string {
  const require = createRequire(import.meta.url)
  return (JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')) as { version: string })
    .version
}

async function main(): Promise<number> {
  progress(`mode ${profile.name}; simulator latency ${LATENCY.fixedMs} ms + ${LATENCY.perMiBMs} ms/MiB`)
  await ensureBuilt()
  const nginxBinary = await ensureNginx(progress)
  const wrkBinary = await ensureWrk(progress)
  const cores = corePlan()
  const runtime24 = args.node24 ? await node24(progress) : undefined
  const workDir = tempDir()
  const results: Array<{ key: string; result: ScenarioResult }> = []
  const errors: Record<string, string> = {}
  let nginx: NginxInstance | undefined
  try {
    const scripts = compileChildScripts(BENCH_DIR, REPO_DIR, path.join(workDir, 'js'))
    progress('starting the simulator, nginx, the service and the pass-through proxy')
    const sim = await startSimulatorProcess(LATENCY)
    const simPort = Number(new URL(sim.url).port)
    const adminToken = await adminLogin(sim.url)
    const started = await Promise.all([
      startNginx(nginxBinary, await freePort(), simPort),
      startService(sim.url),
      startScript(
        'pass-through',
        scripts,
        'contenders/passThrough.ts',
        { UPSTREAM_URL: sim.url, UPSTREAM_CONNECTIONS: '32' },
        '/__sim/sessions',
      ),
    ])
    nginx = started[0]
    const [, service, passThrough] = started
    const service24 = runtime24 ? await startService(sim.url, runtime24.node, 'service (Node 24)') : undefined
    const info = machine(nginx.version, versionOf('autocannon'), wrkVersion(wrkBinary), runtime24?.version)
    const revision = sourceRevision()
    const ctx: Ctx = {
      profile,
      scripts,
      workDir,
      latency: LATENCY,
      sim,
      service,
      service24,
      runtime: { label: 'Node 20', node: process.execPath, version: process.version },
      runtime24,
      wrk: wrkBinary,
      cores,
      passThrough,
      nginx,
      adminToken,
      progress,
    }

    for (const scenario of SCENARIOS) {
      if (args.only && !args.only.includes(scenario.key)) continue
      progress(`— ${scenario.key}`)
      try {
        results.push({ key: scenario.key, result: await scenario.run(ctx) })
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err)
        errors[scenario.key] = message
        progress(`${scenario.key} failed: ${message}`)
        const log = nginxErrorLog(nginx)
        if (log) progress(`nginx error log:\n${log}`)
        if (!service.child.isRunning())
          throw new Error(`the service died:\n${service.child.output().slice(-4000)}`)
      }
    }

    const conditions = [
      `Mode ${profile.name}, ${Math.round((Date.now() - startedAt) / 1000)} s, ${new Date(startedAt).toISOString()}; checkout at ${revision}.`,
      `Machine: ${machineLine(info)}.`,
      `Upstream: the Incode simulator (its own process), latency model fixed ${LATENCY.fixedMs} ms + ${LATENCY.perMiBMs} ms per MiB of answer on every image and link call, in every scenario.`,
      `Service: \`node ${path.relative(REPO_DIR, serviceSetup.serverJs)}\` (the esbuild bundle \`npm run build\` writes), NODE_ENV=production, LOG_LEVEL=warn, default settings (UPSTREAM_CONNECTIONS 32, FANOUT_CONCURRENCY 4, CHUNK_BUDGET_BYTES 8000000, SPLIT_PLAN parallel, ANSWER_MEMORY_BYTES 64000000) but RATE_LIMIT_MAX=10000000${Object.entries(
        args.serviceEnv,
      )
        .map(([k, v]) => `, ${k}=${v}`)
        .join('')}; a partner key in x-api-key.`,
      'nginx: 1 worker, `proxy_cache` + `proxy_cache_lock`, `proxy_cache_methods POST`, `proxy_cache_key "$request_uri|$request_body"`, `proxy_cache_valid 200 50m`, body in memory (64k buffer). Pass-through: Fastify + @fastify/reply-from, raw bodies, 32 upstream connections. Buffer-everything: Fastify, same chunks fetched in parallel, JSON.parse, merge, JSON.stringify.',
      `Throughput (links, warm): wrk 1 thread, 50 connections; ${cores.description}.`,
      runtime24
        ? `Runtimes: the service under the bench's Node (${process.version}) and under Node ${runtime24.version.slice(1)} (\`npx -y node@24\`) side by side in links warm, links cold, the full set and cold start; the memory and growth scenarios under ${process.version} only.`
        : `Runtimes: Node ${process.version} only (Node 24 was not measured in this run).`,
      'Load: autocannon in its own process for memory and growth; sequential loops (links cold, base64) in a separate Node process (undici, keep-alive), contenders alternating round by round; medians of rounds; RSS from /proc/<pid>/status (VmHWM reset before each burst, VmRSS sampled every 20 ms).',
    ]
    const extraRows = Object.entries(errors).map(([key, message]) => errorRows(key, message))
    const report = markdownReport(results, extraRows, conditions)
    process.stdout.write(`${report.join('\n')}\n`)

    const json = {
      version: 1,
      mode: profile.name,
      startedAt: new Date(startedAt).toISOString(),
      durationSec: Math.round((Date.now() - startedAt) / 1000),
      machine: info,
      revision,
      conditions: {
        latencyModel: LATENCY,
        profile,
        nginxConfig: nginx.config,
        service: {
          serverJs: path.relative(REPO_DIR, serviceSetup.serverJs),
          env: { NODE_ENV: 'production', LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '10000000', ...args.serviceEnv },
        },
      },
      scenarios: Object.fromEntries(
        results.map(({ key, result }) => [
          key,
          {
            title: result.title,
            pass: result.pass,
            figures: result.figures,
            targets: result.rows.map((r) => ({ measure: r.measure, target: r.target, pass: r.pass })),
            details: result.details ?? {},
          },
        ]),
      ),
      errors,
      markdown: report.join('\n'),
    }
    mkdirSync(path.dirname(args.out), { recursive: true })
    writeFileSync(args.out, `${JSON.stringify(json, null, 2)}\n`)
    progress(`wrote ${path.relative(process.cwd(), args.out)}`)
    if (args.writeDoc) {
      const docPath = path.join(BENCH_DIR, 'PERFORMANCE.md')
      const options = (await prettier.resolveConfig(docPath)) ?? {}
      writeFileSync(
        docPath,
        await prettier.format(performanceDoc(report), { ...options, parser: 'markdown' }),
      )
      progress('wrote bench/PERFORMANCE.md')
    }
    const missed = results.some((r) => !r.result.pass)
    if (Object.keys(errors).length > 0) return 1
    return args.strict && missed ? 1 : 0
  } finally {
    if (nginx) await stopNginx(nginx)
    await stopAll()
    rmSync(workDir, { recursive: true, force: true })
  }
}

function performanceDoc(report: string[]): string {
  return `## Performance

\`npm run bench\` measures the service on loopback against what it replaces or competes with, in one
run: **direct** (the client calls Incode — here the simulator — itself: the floor; for the full set
also **the same chunks fetched directly in parallel**, the floor of any split fetch), **bare
Fastify** (one route answering the service's own links answer, pre-serialised: the absolute ceiling
of a Node service), **Fastify + the same plugins** (that route under what every request of the
service must pay, each done the standard way with the library the service uses: the partner key's
SHA-256 looked up in a Map, @fastify/rate-limit with the same limit keyed by the partner, helmet's
security headers, a prom-client latency histogram observed on response, a request id, the same
TypeBox schemas validated, Fastify's logger at the same level; not the service's own work: no link
cache lookup, access trail or cache scoping. The warm-links target, 0.85 × "a bare Fastify route
answering the same bytes, under the same plugins that must run on every request", is read against
this contender, as its words say; bare Fastify stays beside it as the absolute ceiling, nginx as the
reference line), **nginx** caching the links endpoint the way a user would configure it,
**pass-through** (a plain Fastify proxy with @fastify/reply-from, no splitting or caching),
**naive** (one image type per call, one after another), and a **buffer-everything** variant of the
split-and-merge route (the obvious implementation: hold every part, \`JSON.parse\`, merge,
\`JSON.stringify\`). The service runs under Node 20 and Node 24 side by side. Contenders run in the
same run, alternating round by round; figures are medians and ratios between them. Throughput comes
from wrk pinned to one core with the servers on the other (\`taskset\`), with each server's CPU time
per answered request beside it; memory and growth load from autocannon in a separate process. The
lines under the tables give the machine, the settings and the load average during the run: the
machine is small and shared, so absolute figures move from run to run, and a busy machine (a load
average well above its 2 cores) inflates every latency and the cold start; the ratios between
contenders measured in the same run are what the targets are about. \`bench/results/latest.json\`
holds every figure of the last run.

${report.join('\n')}

### Reproduce

\`\`\`sh
npm ci && npm run build
npm run bench             # about 15 minutes; the table on stdout, figures in bench/results/latest.json
npm run bench -- --quick  # about a minute and a half, for checking the harness (the test suite runs this)
\`\`\`

The harness needs nginx and wrk: it uses the ones on PATH (or /usr/sbin, /usr/bin), and otherwise
installs Debian's packages itself when run as root (\`apt-get update && apt-get install -y nginx\`,
likewise \`wrk\`); Node 24 comes from the registry (\`npx -y node@24\`; \`--no-node24\` skips it). It starts its own
nginx instance (own config and prefix in a temp dir, 127.0.0.1 only), never the system service.
Everything it starts — the simulator, the service, nginx, the contenders, the load tool — listens
on or talks to 127.0.0.1 only, is bounded in time, and is stopped at the end, also on failure or
Ctrl-C. \`--build\` rebuilds \`dist/\` first; \`--write-doc\` rewrites this section from the run.
`
}

main().then(
  (code) => {
    clearTimeout(watchdog)
    process.exitCode = code
  },
  (err: unknown) => {
    clearTimeout(watchdog)
    progress(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    void stopAll().finally(() => process.exit(1))
  },
)
