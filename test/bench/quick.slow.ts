import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { canInstallNginx, findNginx } from '../../bench/lib/nginx.js'

/**
 * `npm run bench -- --quick` works: every scenario is measured and gives numbers. No timing
 * assertions: the figures of a quick run on a busy machine mean little; this only checks the harness.
 */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const SCENARIOS = [
  'linksWarm',
  'linksCold',
  'coalescing200',
  'base64FullSet',
  'memory50',
  'growth',
  'coldStart',
  'fleet',
] as const

const nginxMissing = findNginx() === undefined && !canInstallNginx()

// The bench is given 160 s (it stops itself at 150 s); the file needs a little more than tap's default.
t.setTimeout(240_000)

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Runs the command in its own process group, killed as a group (SIGTERM, then SIGKILL) after `timeoutMs`. */
function run(command: string, args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const kill = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal)
      } catch {
        // gone already
      }
    }
    // If this test process goes away first, the bench goes too (it stops its own children on SIGTERM).
    const onExit = () => kill('SIGTERM')
    process.once('exit', onExit)
    const term = setTimeout(() => kill('SIGTERM'), timeoutMs)
    const hard = setTimeout(() => kill('SIGKILL'), timeoutMs + 10_000)
    child.on('close', (code, signal) => {
      process.off('exit', onExit)
      clearTimeout(term)
      clearTimeout(hard)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

t.test(
  'npm run bench -- --quick measures every scenario',
  { timeout: 180_000, skip: nginxMissing ? 'nginx is not installed and cannot be installed here' : false },
  async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-quick-test-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    // Written apart from bench/results/latest.json, so a full run's figures are not overwritten.
    const out = path.join(dir, 'latest.json')
    const result = await run('npx', ['tsx', 'bench/run.ts', '--quick', '--out', out], 160_000)
    t.equal(result.code, 0, `exit 0\n${result.stderr.slice(-3000)}`)
    t.match(result.stdout, /\| scenario \| measure \|/, 'the results table is printed on stdout')
    t.match(result.stderr, /\[bench \d\d:\d\d\]/, 'progress lines on stderr')

    const json = JSON.parse(readFileSync(out, 'utf8')) as {
      mode: string
      scenarios: Record<string, { pass: boolean; figures: Record<string, unknown> }>
      errors: Record<string, string>
    }
    t.equal(json.mode, 'quick')
    t.same(json.errors, {}, 'no scenario failed to run')
    for (const name of SCENARIOS) {
      const scenario = json.scenarios[name]
      t.ok(scenario, `${name} is in the results`)
      if (!scenario) continue
      const figures = Object.entries(scenario.figures)
      t.ok(figures.length > 0, `${name} has figures`)
      for (const [key, value] of figures) {
        t.ok(
          typeof value === 'number' && Number.isFinite(value),
          `${name}.${key} is a number (${String(value)})`,
        )
      }
      t.type(scenario.pass, 'boolean', `${name} has a verdict`)
    }
    const calls = json.scenarios.coalescing200?.figures.upstreamCalls
    t.ok(typeof calls === 'number' && calls >= 1, 'the coalescing scenario counted the upstream calls')
  },
)
