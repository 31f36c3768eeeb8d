import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { IMAGE_TYPES, type ImageType } from '../../src/domain/imageTypes.js'
import { SizeEstimator } from '../../src/domain/sizeEstimator.js'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { partnerHeaders } from '../helpers/build.js'
import { forwardTo } from '../hardening/proxy.js'
import { buildForRoutes, waitUntil, warmSeededSessions, type Json } from './fixtures/helpers.js'

/**
 * A split /v1 request one of whose parts Incode refuses for the whole request (404: no such
 * interview, as for a token or interview that went away between two calls) fails, whichever part
 * Incode answers first: before the status line with Incode's status, after it by a cut answer. It
 * is never a complete 200 that lists the refused types as errors, and never an answer left open.
 */

warmSeededSessions()

const { full } = SEEDED_INTERVIEW_IDS
const TYPES = [...IMAGE_TYPES]
/** The type whose part Incode refuses. */
const REFUSED: ImageType = 'signature'
const WAIT_MS = 30_000
const KiB = 1024

/** What the answer memory reserves for `bytes` (whole KiB). */
const reserved = (bytes: number) => Math.max(1, Math.ceil(bytes / KiB)) * KiB

interface Gate {
  open: () => void
  opened: Promise<void>
}

function gate(): Gate {
  let open = () => {}
  const opened = new Promise<void>((resolve) => (open = resolve))
  return { open, opened }
}

/**
 * A loopback proxy in front of the simulator that refuses (404) the image call whose part holds
 * REFUSED once `refusal` opens, and forwards every other image call once `others` opens.
 */
async function orderingProxy(t: Test, gates: { refusal: Gate; others: Gate }) {
  const proxy = {
    url: '',
    target: '',
    refused: 0,
    forwarded: 0,
    othersAborted: 0,
    refusedPart: [] as ImageType[],
  }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const forward = () => forwardTo(proxy.target, req, res).end(body)
      if (!(req.url ?? '').startsWith('/omni/get/images')) {
        forward()
        return
      }
      const asked = (JSON.parse(body.toString()) as { images: string[] }).images
      if (asked.includes(REFUSED)) {
        proxy.refusedPart = asked as ImageType[]
        void gates.refusal.opened.then(() => {
          proxy.refused++
          res.writeHead(404, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ status: 404, message: 'Interview not found' }))
        })
        return
      }
      res.once('close', () => {
        if (!res.writableFinished) proxy.othersAborted++
      })
      void gates.others.opened.then(() => {
        if (res.destroyed) return
        proxy.forwarded++
        forward()
      })
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

interface Answer {
  status: number
  contentType: string
  /** The whole body arrived (the answer was not cut). */
  complete: boolean
  text: string
}

/** Asks for every type of the full session; `onStatus` is called when the status line arrives. */
function askAll(url: string, onStatus: (status: number) => void): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/sessions/${full}/images`,
      { method: 'POST', headers: partnerHeaders(), agent: false },
      (res) => {
        onStatus(res.statusCode ?? 0)
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', () => {})
        res.once('close', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type']),
            complete: res.complete,
            text: Buffer.concat(chunks).toString(),
          }),
        )
      },
    )
    req.on('error', reject)
    req.end(JSON.stringify({ images: TYPES }))
  })
}

async function refusedWhen(t: Test, first: 'refusal' | 'others') {
  const gates = { refusal: gate(), others: gate() }
  const proxy = await orderingProxy(t, gates)
  const h = await buildForRoutes(t, {
    listen: true,
    env: {
      INCODE_BASE_URL: proxy.url,
      // Every part is asked at once, so that holding some back never keeps the others from starting.
      FANOUT_CONCURRENCY: String(TYPES.length),
      RATE_LIMIT_MAX: '1000000',
      // Far beyond the test's time: an answer left open is not cut by the deadline or the stall
      // watch within it, so only the service cutting it ends it.
      REQUEST_DEADLINE_MS: '600000',
      WRITE_STALL_MS: '600000',
    },
  })
  proxy.target = h.simulator.url
  const capacity = h.app.answerMemory.available()

  // The part that is let through second waits until the first has decided the answer: the
  // refusal's status line has reached the caller, or every other part has been answered and
  // written to the caller (then only the refused part still holds answer memory).
  const refusedPartHeld = () =>
    capacity - h.app.answerMemory.available() ===
    reserved(new SizeEstimator().estimateTotal(proxy.refusedPart))
  gates[first].open()
  const answer = await askAll(h.url, () => {
    if (first === 'refusal') gates.others.open()
    else void waitUntil(refusedPartHeld, WAIT_MS).then(() => gates.refusal.open())
  })
  t.equal(proxy.refused, 1, 'the part holding the refused type was refused')
  t.ok(
    await waitUntil(() => h.app.answerMemory.available() === capacity, WAIT_MS),
    'all answer memory is back',
  )
  return { answer, proxy }
}

/** What the caller got, as far as the test compares the two orders. */
function verdict(answer: Answer): string {
  if (answer.status === 200 && answer.complete) return 'complete 200'
  return 'request failed'
}

t.test('the refusal arrives first: 404, and the other parts are not waited for', async (t) => {
  const { answer, proxy } = await refusedWhen(t, 'refusal')
  t.equal(answer.status, 404, "Incode's status")
  t.match(answer.contentType, /^application\/problem\+json/, 'a problem')
  const problem: Json = JSON.parse(answer.text)
  t.equal(problem.code, 'INTERVIEW_NOT_FOUND', 'the problem names the refusal: the interview is unknown')
  t.ok(proxy.forwarded + proxy.othersAborted > 0, 'the other parts were asked for')
  t.equal(verdict(answer), 'request failed', 'the request failed')
})

t.test('the refusal arrives after parts were streamed: the 200 answer is cut, not completed', async (t) => {
  const { answer, proxy } = await refusedWhen(t, 'others')
  t.equal(proxy.othersAborted, 0, 'no other part was cancelled')
  t.ok(proxy.forwarded > 0, 'every other part was answered and written to the caller first')
  t.equal(answer.status, 200, 'the status line was already out')
  t.equal(answer.complete, false, 'the answer was cut: its socket closed before its end')
  t.throws(() => JSON.parse(answer.text) as unknown, 'what arrived is no complete JSON document')
  t.notMatch(answer.text, /"errors"/, 'no errors list: the refusal is not reported as a per-type error')
  t.equal(verdict(answer), 'request failed', 'the request failed, as when the refusal comes first')
})
