import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { pipeline } from 'node:stream'
import type { Test } from 'tap'

export interface SeenRequest {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
}

export interface RecordingProxy {
  /** http://127.0.0.1:<port>; give it to the app as INCODE_BASE_URL. */
  url: string
  /** Where requests are forwarded; set once the simulator is up. */
  target: string
  /** Every request the app sent, in order. */
  seen: SeenRequest[]
}

/**
 * Sends `req` on to `base` (same method, path and headers) and pipes the answer back into `res`;
 * an answer cut short upstream is cut short here too, never left hanging. Returns the upstream
 * request for the caller to write the body into.
 */
export function forwardTo(
  base: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): http.ClientRequest {
  const target = new URL(req.url ?? '/', base)
  const upstream = http.request(
    target,
    { method: req.method, headers: { ...req.headers, host: target.host } },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      pipeline(answer, res, (err) => {
        if (err) res.destroy()
      })
    },
  )
  upstream.on('error', () => res.destroy())
  return upstream
}

/**
 * A loopback HTTP proxy between the app and the simulator that records the request line and
 * headers of every upstream call (the simulator's call log keeps no headers), so that tests can
 * see exactly which credentials reached "Incode". Closed when the test ends.
 */
export async function recordingProxy(t: Test): Promise<RecordingProxy> {
  const proxy: RecordingProxy = { url: '', target: '', seen: [] }
  const server = http.createServer((req, res) => {
    proxy.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } })
    const upstream = forwardTo(proxy.target, req, res)
    pipeline(req, upstream, (err) => {
      if (err) upstream.destroy()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  return proxy
}
