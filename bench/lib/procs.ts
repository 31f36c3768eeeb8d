import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Every process the bench starts goes through here. Each child leads a process group of its own
 * (detached), so that stopping it also stops what it started (nginx workers), and nothing else:
 * signals only ever go to the groups of children started by this process, by id.
 */
export interface Child {
  readonly name: string
  readonly pid: number
  readonly proc: ChildProcess
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** The last 64 KiB of its stdout and stderr, for error messages. */
  output(): string
  isRunning(): boolean
}

const live = new Set<Child>()
const OUTPUT_KEEP = 64 * 1024

export interface StartOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Called with each stdout chunk (text). */
  onStdout?: (text: string) => void
}

export function startChild(name: string, command: string, args: string[], options: StartOptions = {}): Child {
  const proc = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  if (proc.pid === undefined) throw new Error(`could not start ${name} (${command})`)
  let out = ''
  const keep = (chunk: Buffer) => {
    out += chunk.toString('utf8')
    if (out.length > OUTPUT_KEEP) out = out.slice(-OUTPUT_KEEP)
  }
  let running = true
  proc.stdout.on('data', (chunk: Buffer) => {
    keep(chunk)
    options.onStdout?.(chunk.toString('utf8'))
  })
  proc.stderr.on('data', keep)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      running = false
      resolve({ code, signal })
    })
    proc.once('error', () => {
      running = false
      resolve({ code: null, signal: null })
    })
  })
  const child: Child = {
    name,
    pid: proc.pid,
    proc,
    exited,
    output: () => out,
    isRunning: () => running,
  }
  live.add(child)
  void exited.then(() => live.delete(child))
  return child
}

function signalGroup(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid, signal)
  } catch {
    try {
      process.kill(child.pid, signal)
    } catch {
      // already gone
    }
  }
}

/** SIGTERM to the child's group, then SIGKILL after `graceMs`. */
export async function stopChild(child: Child, graceMs = 3000): Promise<void> {
  if (!child.isRunning()) return
  signalGroup(child, 'SIGTERM')
  const done = await Promise.race([child.exited.then(() => true), sleep(graceMs).then(() => false)])
  if (!done) {
    signalGroup(child, 'SIGKILL')
    await Promise.race([child.exited, sleep(2000)])
  }
  live.delete(child)
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((child) => stopChild(child)))
}

const dirs = new Set<string>()

/** A temp dir removed at exit, however the process exits (but SIGKILL). */
export function removeAtExit(dir: string): string {
  dirs.add(dir)
  return dir
}

/** Last resort on exit: SIGKILL whatever is still running, remove temp dirs (synchronous, for 'exit'). */
export function killAllSync(): void {
  for (const child of live) signalGroup(child, 'SIGKILL')
  live.clear()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  dirs.clear()
}

export function liveChildren(): string[] {
  return [...live].map((c) => `${c.name}(${c.pid})`)
}

/** Runs a command to completion and returns its stdout; rejects on a non-zero exit or after `timeoutMs`. */
export async function runToEnd(
  name: string,
  command: string,
  args: string[],
  options: StartOptions & { timeoutMs: number },
): Promise<string> {
  let stdout = ''
  const child = startChild(name, command, args, {
    ...options,
    onStdout: (text) => {
      stdout += text
      options.onStdout?.(text)
    },
  })
  const timer = setTimeout(() => void stopChild(child, 1000), options.timeoutMs)
  const { code, signal } = await child.exited
  clearTimeout(timer)
  if (code !== 0) {
    throw new Error(`${name} failed (exit ${code ?? signal ?? 'unknown'}):\n${child.output().slice(-4000)}`)
  }
  return stdout
}

/** A port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** One GET on a fresh connection; resolves with the status, or 0 when no answer came. */
export function probe(url: string, timeoutMs = 1000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', () => resolve(0))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(0))
  })
}

/** Polls `url` every `intervalMs` until it answers `status`; throws after `timeoutMs` or if `child` dies. */
export async function waitForStatus(
  url: string,
  options: { status?: number; timeoutMs: number; intervalMs?: number; child?: Child },
): Promise<void> {
  const until = Date.now() + options.timeoutMs
  const want = options.status ?? 200
  let last = 0
  while (Date.now() < until) {
    if (options.child && !options.child.isRunning()) {
      throw new Error(`${options.child.name} exited while starting:\n${options.child.output().slice(-4000)}`)
    }
    last = await probe(url)
    if (last === want) return
    await sleep(options.intervalMs ?? 20)
  }
  throw new Error(
    `${url} did not answer ${want} within ${options.timeoutMs} ms (last: ${last || 'no answer'})`,
  )
}

// ---- memory of a process, from /proc ---------------------------------------------------------

export interface MemoryStatus {
  rssKiB: number
  hwmKiB: number
}

export function readMemory(pid: number): MemoryStatus | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(status)
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status)
    if (!rss || !hwm) return undefined
    return { rssKiB: Number(rss[1]), hwmKiB: Number(hwm[1]) }
  } catch {
    return undefined
  }
}

/** CPU time (user + system) the process has used so far, ms; undefined if /proc cannot tell. */
export function cpuTimeMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS : undefined
  } catch {
    return undefined
  }
}

/** USER_HZ: 100 on every Linux that Node runs on in practice. */
const CLOCK_TICKS = 100

/** Resets the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0). False if not allowed. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

export interface RssSampler {
  /** Stops sampling; the peak is the larger of the sampled VmRSS and the kernel's VmHWM. */
  stop(): { peakMiB: number; samples: number; lastMiB: number; peakResetWorked: boolean }
}

/** Samples VmRSS (and VmHWM) of `pid` every `everyMs`, after resetting VmHWM. */
export function sampleRss(pid: number, everyMs = 20): RssSampler {
  const peakResetWorked = resetPeak(pid)
  let peakKiB = 0
  let lastKiB = 0
  let samples = 0
  const take = () => {
    const memory = readMemory(pid)
    if (!memory) return
    samples++
    lastKiB = memory.rssKiB
    peakKiB = Math.max(peakKiB, memory.rssKiB, peakResetWorked ? memory.hwmKiB : 0)
  }
  take()
  const timer = setInterval(take, everyMs)
  return {
    stop() {
      clearInterval(timer)
      take()
      return { peakMiB: peakKiB / 1024, samples, lastMiB: lastKiB / 1024, peakResetWorked }
    },
  }
}
