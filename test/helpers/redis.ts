import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import type { Test } from 'tap'

/** Where Debian's redis-server is, or undefined (tests then skip with a reason; .ci/run installs it). */
export function redisServerPath(): string | undefined {
  for (const candidate of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    if (spawnSync(candidate, ['--version']).status === 0) return candidate
  }
  return undefined
}

export const NO_REDIS = redisServerPath() === undefined ? 'redis-server is not installed' : false

/** A port free on 127.0.0.1 right now (redis-server cannot be told to pick one itself). */
async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

export interface RedisServer {
  url: string
  port: number
  /** Kills the server at once (SIGKILL), as a crash would. */
  kill(): Promise<void>
  /** Starts it again on the same port, empty (no persistence). */
  start(): Promise<void>
}

/**
 * A real redis-server of the test's own on a loopback port, with no persistence, stopped when
 * the test ends.
 */
export async function startRedis(t: Test): Promise<RedisServer> {
  const bin = redisServerPath()
  if (bin === undefined) throw new Error('redis-server is not installed')
  let port = 0
  let child: ChildProcess | undefined
  const launch = async (): Promise<void> => {
    const proc = spawn(
      bin,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'yes',
        '--loglevel',
        'warning',
        '--daemonize',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let output = ''
    proc.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    proc.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    // Ready when it answers PING on its port.
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited: ${output}`)
      const answered = await ping(port)
      if (answered) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    child = proc
  }
  for (let attempt = 0; ; attempt++) {
    port = await freePort()
    try {
      await launch()
      break
    } catch (err) {
      if (attempt >= 4) throw err
    }
  }
  const kill = async (): Promise<void> => {
    const proc = child
    child = undefined
    if (!proc || proc.exitCode !== null) return
    const exited = once(proc, 'exit')
    proc.kill('SIGKILL')
    await exited
  }
  t.teardown(kill)
  return { url: `redis://127.0.0.1:${String(port)}`, port, kill, start: launch }
}

async function ping(port: number): Promise<boolean> {
  const { Socket } = await import('node:net')
  return new Promise((resolve) => {
    const socket = new Socket()
    let reply = ''
    socket.once('error', () => {
      resolve(false)
    })
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'))
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString()
      if (reply.includes('\r\n')) {
        socket.destroy()
        resolve(reply.startsWith('+PONG'))
      }
    })
  })
}
