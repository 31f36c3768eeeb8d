import { fork } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { findNginx, nginxPreamble, nginxVersion } from '../../bench/lib/nginx.js'
import {
  freePort,
  removeAtExit,
  startChild,
  stopChild,
  waitForStatus,
  type Child,
} from '../../bench/lib/procs.js'
import { startSimulator, type Simulator } from '../../src/simulator/index.js'

/**
 * A fleet on loopback, for `npm run fleet` and the multi-process tests: one Incode simulator (in
 * this process, so that its call log can be read), one redis-server of its own (no persistence),
 * N replicas, each a real `node dist/server.js` process, and Debian's nginx as the load balancer
 * in front of them (round robin). Everything listens on 127.0.0.1 and is stopped by `stop()`.
 */
export interface FleetOptions {
  replicas: number
  /** Environment of every replica (API keys, limits...), on top of the Incode and Redis settings. */
  env?: Record<string, string>
  /** Put nginx in front (default true when nginx is installed). */
  loadBalancer?: boolean
  /** The load balancer's port (0: any free one). */
  port?: number
  /** An existing simulator (else one is started on a free port). */
  simulator?: Simulator
  /** Without Redis: the replicas run as separate processes with local state only. */
  redis?: boolean
}

export interface Replica {
  name: string
  url: string
  pid: number
  /** The last of its stdout and stderr. */
  output(): string
  /** SIGTERM (graceful close), SIGKILL after 10 s. */
  stop(): Promise<void>
}

export interface RedisProcess {
  url: string
  port: number
  child: Child
  /** SIGKILLs it, as a crash would. */
  kill(): Promise<void>
  /** Starts it again, empty, on the same port. */
  restart(): Promise<void>
}

export interface RunningFleet {
  simulator: Simulator
  redis: RedisProcess | undefined
  replicas: Replica[]
  /** The load balancer's URL, or undefined without one. */
  url: string | undefined
  /** A secret shared by the replicas (FLEET_SECRET). */
  secret: string
  stop(): Promise<void>
}

export const BUNDLE = 'dist/server.js'

export function findRedisServer(): string | undefined {
  return ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p))
}

async function startRedisProcess(binary: string): Promise<RedisProcess> {
  const port = await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  const launch = async (): Promise<Child> => {
    const child = startChild('redis-server', binary, args)
    // redis-server answers no HTTP; ready when PING answers on its port, failed if it exits first.
    const { Redis } = await import('ioredis')
    for (;;) {
      if (!child.isRunning()) throw new Error(`redis-server exited while starting:\n${child.output()}`)
      const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null })
      client.on('error', () => {})
      const answered = await client
        .connect()
        .then(() => client.ping())
        .catch(() => undefined)
      client.disconnect()
      if (answered === 'PONG') break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return child
  }
  const redis: RedisProcess = {
    url: `redis://127.0.0.1:${String(port)}`,
    port,
    child: await launch(),
    async kill() {
      await stopChild(redis.child, 0)
    },
    async restart() {
      redis.child = await launch()
    },
  }
  return redis
}

async function startReplica(name: string, env: NodeJS.ProcessEnv): Promise<Replica> {
  // PORT=0 and the port told over IPC (src/server.ts does): no race for a free port. The IPC
  // channel also stops the replica when this process goes away however it ends.
  // execArgv: none of this process's own (fork passes them on by default): run under tsx, those
  // loaded tsx's hooks into every replica, which production's `node dist/server.js` never has
  // (sequential L1 hits took 0.54 ms with them, 0.42 ms without). REPLICA_NODE_ARGS adds flags
  // by hand, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the replicas.
  const proc = fork(BUNDLE, [], {
    env: { ...env, PORT: '0' },
    execArgv: (process.env.REPLICA_NODE_ARGS ?? '').split(' ').filter(Boolean),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  let output = ''
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-16_000)
  }
  proc.stdout?.on('data', keep)
  proc.stderr?.on('data', keep)
  const exited = once(proc, 'exit')
  const listening = await Promise.race([
    once(proc, 'message') as Promise<[{ listening: AddressInfo }]>,
    exited.then(() => {
      throw new Error(`${name} exited while starting:\n${output}`)
    }),
  ])
  const url = `http://127.0.0.1:${String(listening[0].listening.port)}`
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
  return { name, url, pid: proc.pid ?? 0, output: () => output, stop }
}

export function loadBalancerConfig(prefix: string, port: number, replicas: Replica[]): string {
  return `# written by scripts/fleet/launch.ts
${nginxPreamble(prefix)}
  upstream gateway {
${replicas.map((r) => `    server ${r.url.replace('http://', '')};`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${String(port)};
    client_max_body_size 64k;
    location = /__lb_ping { return 200 "ok"; }
    location / {
      proxy_pass http://gateway;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_buffering off;
      proxy_next_upstream off;
    }
  }
}
`
}

async function startLoadBalancer(
  binary: string,
  port: number,
  replicas: Replica[],
): Promise<{ url: string; child: Child; prefix: string }> {
  const prefix = removeAtExit(mkdtempSync(path.join(os.tmpdir(), 'incode-fleet-nginx-')))
  chmodSync(prefix, 0o755)
  mkdirSync(path.join(prefix, 'tmp'), { recursive: true, mode: 0o755 })
  const configPath = path.join(prefix, 'nginx.conf')
  const lbPort = port === 0 ? await freePort() : port
  writeFileSync(configPath, loadBalancerConfig(prefix, lbPort, replicas))
  const args = ['-p', prefix, '-c', configPath, '-g', 'daemon off;']
  if (/nginx\/1\.(19\.[5-9]|[2-9]\d)/.test(nginxVersion(binary)))
    args.push('-e', path.join(prefix, 'error.log'))
  const child = startChild('nginx', binary, args)
  const url = `http://127.0.0.1:${String(lbPort)}`
  try {
    await waitForStatus(`${url}/__lb_ping`, { timeoutMs: 10_000, child })
  } catch (err) {
    await stopChild(child)
    throw err
  }
  return { url, child, prefix }
}

export async function startFleet(options: FleetOptions): Promise<RunningFleet> {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npm run build first`)
  const ownSimulator = options.simulator === undefined
  const simulator = options.simulator ?? (await startSimulator({ host: '127.0.0.1', port: 0 }))
  let redis: RedisProcess | undefined
  let lb: { url: string; child: Child; prefix: string } | undefined
  const replicas: Replica[] = []
  const secret = `fleet-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}-secret-0000`
  const stop = async (): Promise<void> => {
    // Every stop signal goes out in the same tick, so a parent killed soon after leaves nothing behind.
    const balancer = lb
    const lbGone = balancer
      ? stopChild(balancer.child).then(() => {
          rmSync(balancer.prefix, { recursive: true, force: true })
        })
      : undefined
    await Promise.all([lbGone, ...replicas.map((r) => r.stop()), redis ? stopChild(redis.child) : undefined])
    if (ownSimulator) await simulator.close()
  }
  try {
    if (options.redis !== false) {
      const binary = findRedisServer()
      if (binary === undefined)
        throw new Error('redis-server is not installed (apt-get install redis-server)')
      redis = await retryOnPortRace(true, () => startRedisProcess(binary))
    }
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      INCODE_BASE_URL: simulator.url,
      INCODE_API_KEY: simulator.apiKey,
      INCODE_ADMIN_EMAIL: simulator.adminEmail,
      INCODE_ADMIN_PASSWORD: simulator.adminPassword,
      ...(redis ? { REDIS_URL: redis.url, FLEET_SECRET: secret } : {}),
      ...options.env,
    }
    const starts = await Promise.allSettled(
      Array.from({ length: options.replicas }, (_, i) => startReplica(`replica-${String(i + 1)}`, env)),
    )
    for (const start of starts) if (start.status === 'fulfilled') replicas.push(start.value)
    const failed = starts.find((start) => start.status === 'rejected')
    if (failed) throw failed.reason
    const nginx = options.loadBalancer === false ? undefined : findNginx()
    if (options.loadBalancer === true && nginx === undefined) throw new Error('nginx is not installed')
    if (nginx !== undefined) {
      const port = options.port ?? 0
      lb = await retryOnPortRace(port === 0, () => startLoadBalancer(nginx, port, replicas))
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { simulator, redis, replicas, url: lb?.url, secret, stop }
}

/** A free port can be taken by another process before ours binds it: try again, a few times. */
async function retryOnPortRace<T>(retry: boolean, start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start()
    } catch (err) {
      if (!retry || attempt >= 3) throw err
    }
  }
}
