import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Test } from 'tap'
import type { Dispatcher } from 'undici'
import { loadConfig, type Config } from '../../src/config.js'
import type { Metrics } from '../../src/metrics.js'
import { UpstreamPolicy } from '../../src/upstream/policy.js'
import { retryInterceptors } from '../../src/upstream/retry.js'
import { Transport } from '../../src/upstream/transport.js'

/** What prom-client's `metric.get()` resolves to, as far as these tests read it. */
interface MetricReading {
  values: { value: number; labels: Partial<Record<string, string | number>>; metricName?: string }[]
}

export interface TestServer {
  url: string
  port: number
  server: Server
  /** Sockets the server accepted so far. */
  connections: () => number
  /** Requests the server received so far. */
  requests: IncomingMessage[]
}

/** A tiny upstream on 127.0.0.1 (`port` 0: any free one), closed with its connections when the test ends. */
export async function startServer(
  t: Test,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port = 0,
): Promise<TestServer> {
  const server = createServer()
  const requests: IncomingMessage[] = []
  const sockets = new Set<Socket>()
  let connections = 0
  server.on('connection', (socket: Socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    requests.push(req)
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const { port: bound } = server.address() as AddressInfo
  t.teardown(async () => {
    server.closeAllConnections()
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${bound}`, port: bound, server, connections: () => connections, requests }
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** A Config for tests: the given upstream URL plus overrides (env-style strings). */
export function testConfig(baseUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({ INCODE_BASE_URL: baseUrl, INCODE_API_KEY: 'test-api-key', ...env })
}

/**
 * The upstream line as the services plugin wires it: a transport (its dispatcher composed with the
 * retry interceptor, closed when the test ends) under the policy.
 */
export function upstreamPolicy(
  t: Test,
  config: Config,
  options: { dispatcher?: Dispatcher; metrics?: Metrics; random?: () => number } = {},
): UpstreamPolicy {
  const transport = new Transport(config, {
    interceptors: retryInterceptors(config.RETRY_MAX),
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
  })
  t.teardown(() => transport.close())
  return new UpstreamPolicy(config, {
    transport,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.random ? { random: options.random } : {}),
  })
}

/** A deadline `ms` from now, on the Date.now() clock. */
export function inMs(ms: number): number {
  return Date.now() + ms
}

/** `GET /` through the policy and the transport, within `deadlineMs` (10 s by default). */
export function getRoot(policy: UpstreamPolicy, options: { deadlineMs?: number; signal?: AbortSignal } = {}) {
  return policy.request({
    method: 'GET',
    path: '/',
    headers: {},
    deadlineAt: inMs(options.deadlineMs ?? 10_000),
    ...(options.signal ? { signal: options.signal } : {}),
  })
}

/**
 * Whether `req`'s connection closes (the client cancelled or dropped it) within `ms`: resolves as
 * soon as it closes; the bound, generous for a busy machine, only ends a wait that would hang.
 */
export function closedWithin(req: IncomingMessage | undefined, ms = 30_000): Promise<boolean> {
  return new Promise((resolve) => {
    if (req === undefined || req.socket.destroyed) {
      resolve(req !== undefined)
      return
    }
    const timer = setTimeout(() => resolve(false), ms)
    req.socket.once('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

/** The error a promise rejects with; fails loudly when it resolves instead. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (err) {
    if (err instanceof Error) return err
    throw new Error(`rejected with a non-Error: ${String(err)}`)
  }
  throw new Error('expected a rejection, but the promise resolved')
}

/**
 * The value of a counter or gauge for the given labels, summed over any other labels (0 when never
 * set). For a histogram, pass `sample: 'count'` to read how many observations it has.
 */
export async function metricValue(
  metric: { get(): Promise<MetricReading> | MetricReading },
  labels: Record<string, string> = {},
  sample?: 'count',
): Promise<number> {
  const { values } = await metric.get()
  return values
    .filter((v) => sample === undefined || v.metricName?.endsWith(`_${sample}`))
    .filter((v) => Object.entries(labels).every(([name, value]) => v.labels[name] === value))
    .reduce((sum, v) => sum + v.value, 0)
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
