import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { isExecutable } from './nginx.js'
import { runToEnd } from './procs.js'

/**
 * wrk, the throughput load generator (a C program: one thread drives 50 connections with a fraction
 * of the CPU autocannon needs, so the servers are measured, not the load tool). Found on PATH or
 * installed from Debian's package when running as root, like nginx. With two or more cores, wrk is
 * pinned to one core and the servers under load to the others (`taskset`).
 */
const WRK_CANDIDATES = ['/usr/bin/wrk', '/usr/local/bin/wrk']

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter))
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name)
  return undefined
}

export function findWrk(): string | undefined {
  return onPath('wrk') ?? WRK_CANDIDATES.find(isExecutable)
}

export function findTaskset(): string | undefined {
  return onPath('taskset') ?? ['/usr/bin/taskset', '/bin/taskset'].find(isExecutable)
}

export async function ensureWrk(log: (line: string) => void): Promise<string> {
  const found = findWrk()
  if (found) return found
  if (process.getuid?.() !== 0 || !isExecutable('/usr/bin/apt-get'))
    throw new Error('wrk is not installed, and installing it needs root and apt-get')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  log('installing wrk: apt-get update')
  await runToEnd('apt-get update', '/usr/bin/apt-get', ['update'], { env, timeoutMs: 300_000 })
  log('installing wrk: apt-get install -y wrk')
  await runToEnd('apt-get install', '/usr/bin/apt-get', ['install', '-y', 'wrk'], { env, timeoutMs: 600_000 })
  const installed = findWrk()
  if (!installed) throw new Error('apt-get installed wrk, but no wrk binary was found')
  return installed
}

export function wrkVersion(binary: string): string {
  try {
    // `wrk -v` prints its banner and exits 1.
    execFileSync(binary, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const stdout = (err as { stdout?: unknown }).stdout
    const out = typeof stdout === 'string' ? stdout : ''
    const match = /wrk (\S+)/.exec(out)
    if (match?.[1]) return match[1]
  }
  return 'unknown'
}

// ---- pinning ------------------------------------------------------------------------------------

/** How the cores are shared: the load generator on one, the servers on the rest (2+ cores), else none. */
export interface CorePlan {
  loadCpus: string | undefined
  serverCpus: string | undefined
  description: string
}

export function corePlan(): CorePlan {
  const cpus = os.availableParallelism()
  const taskset = findTaskset()
  if (cpus < 2 || !taskset)
    return {
      loadCpus: undefined,
      serverCpus: undefined,
      description: `not pinned (${cpus} core(s)${taskset ? '' : ', no taskset'}): wrk and the servers share every core`,
    }
  const serverCpus = cpus === 2 ? '1' : `1-${cpus - 1}`
  return {
    loadCpus: '0',
    serverCpus,
    description: `wrk pinned to core 0, the server under load (and its upstream when it has one) to core ${serverCpus} (taskset); other processes on the machine are not pinned and share both`,
  }
}

/** Every process in the process group led by `pid` (a child of the bench and what it started, e.g. nginx workers). */
function groupPids(pid: number): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[2]) === pid) pids.push(Number(entry))
    } catch {
      // gone
    }
  }
  return pids.length > 0 ? pids : [pid]
}

/** CPU time (user + system) used so far by every process of the group led by `pid`, ms. */
export function groupCpuMs(pid: number): number {
  let ticks = 0
  for (const p of groupPids(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {
      // gone
    }
  }
  // USER_HZ is 100 on Linux.
  return ticks * 10
}

/** Pins every thread of the one process `pid` (not its group) to `cpus` (all cores when undefined). */
export function pinProcess(pid: number, cpus: string | undefined): void {
  const taskset = findTaskset()
  if (!taskset) return
  try {
    execFileSync(taskset, ['-a', '-p', '-c', cpus ?? `0-${os.availableParallelism() - 1}`, String(pid)], {
      stdio: 'ignore',
    })
  } catch {
    // the process ended meanwhile
  }
}

/** Pins every thread of every process of the group led by `pid` to `cpus` (all cores when undefined). */
export function pinGroup(pid: number, cpus: string | undefined): void {
  const taskset = findTaskset()
  if (!taskset) return
  const list = cpus ?? `0-${os.availableParallelism() - 1}`
  for (const p of groupPids(pid)) {
    try {
      execFileSync(taskset, ['-a', '-p', '-c', list, String(p)], { stdio: 'ignore' })
    } catch {
      // the process ended meanwhile
    }
  }
}

// ---- one run ------------------------------------------------------------------------------------

export interface WrkOptions {
  url: string
  method: 'GET' | 'POST'
  headers: Record<string, string>
  body?: string
  connections: number
  durationSec: number
  threads?: number
  /** Cores for wrk (taskset -c), or undefined for no pinning. */
  cpus?: string | undefined
  workDir: string
}

export interface WrkResult {
  rps: number
  requests: number
  durationSec: number
  non2xx: number
  errors: number
  timeouts: number
  latency: { p50: number; p99: number; mean: number; max: number }
}

const luaString = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`

/** The request and a `done` hook that prints the figures as one JSON line. */
function script(o: WrkOptions): string {
  const headers = Object.entries(o.headers)
    .map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`)
    .join('\n')
  return `wrk.method = ${luaString(o.method)}
${o.body === undefined ? '' : `wrk.body = ${luaString(o.body)}`}
${headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p99":%d,"mean":%f,"max":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
`
}

let scriptCount = 0

export async function wrk(binary: string, o: WrkOptions): Promise<WrkResult> {
  const file = path.join(o.workDir, `wrk-${process.pid}-${scriptCount++}.lua`)
  writeFileSync(file, script(o))
  const wrkArgs = [
    '-t',
    String(o.threads ?? 1),
    '-c',
    String(o.connections),
    '-d',
    `${o.durationSec}s`,
    '--timeout',
    '10s',
    '-s',
    file,
    o.url,
  ]
  const taskset = findTaskset()
  const [command, args] =
    o.cpus !== undefined && taskset ? [taskset, ['-c', o.cpus, binary, ...wrkArgs]] : [binary, wrkArgs]
  try {
    const out = await runToEnd('wrk', command, args, { timeoutMs: o.durationSec * 1000 + 30_000 })
    const line = out.split('\n').find((l) => l.startsWith('WRKJSON '))
    if (!line) throw new Error(`wrk printed no figures:\n${out.slice(-2000)}`)
    const raw = JSON.parse(line.slice('WRKJSON '.length)) as Record<string, number>
    const n = (k: string) => raw[k] ?? 0
    const durationSec = n('durationUs') / 1e6
    const ok = n('requests') - n('status')
    return {
      rps: durationSec > 0 ? ok / durationSec : 0,
      requests: n('requests'),
      durationSec,
      non2xx: n('status'),
      errors: n('connect') + n('read') + n('write'),
      timeouts: n('timeout'),
      latency: { p50: n('p50') / 1000, p99: n('p99') / 1000, mean: n('mean') / 1000, max: n('max') / 1000 },
    }
  } finally {
    if (existsSync(file)) rmSync(file, { force: true })
  }
}
