import { createServer, request, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { AnswerBody } from '../../src/services/writeWatch.js'

/**
 * AnswerBody over a real loopback socket. The watch's own tick is set far beyond the test's
 * time, so whatever resolves here was seen without it.
 */
const NEVER_MS = 600_000
const KiB = 1024

/** Serves one answer per request with `onAnswer`; resolves with the port. */
async function serve(t: Test, onAnswer: (res: ServerResponse) => void): Promise<number> {
  const server = createServer((_req, res) => onAnswer(res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as AddressInfo).port
}

/** Reads an answer whole; resolves with its length. */
function readAll(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let length = 0
      res.on('data', (piece: Buffer) => (length += piece.length))
      res.on('end', () => resolve(length))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('written() sees the last bytes taken although no drain follows them (no tick needed)', async (t) => {
  // 64 KiB slices: the last one (100 bytes) fits under the response's high-water mark, so its
  // write is not followed by 'drain', and the answer is not ended, so nothing else reads on.
  const bytes = 512 * KiB + 100
  let taken!: () => void
  const wasTaken = new Promise<void>((resolve) => (taken = resolve))
  let body: AnswerBody | undefined
  const port = await serve(t, (res) => {
    body = new AnswerBody(res, {
      stallMs: NEVER_MS,
      deadlineAt: Date.now() + NEVER_MS,
      checkEveryMs: NEVER_MS,
    })
    body.pipe(res)
    body.add(Buffer.alloc(bytes, 0x61))
    const answer = body
    void answer.written().then(() => {
      taken()
      answer.end()
    })
  })
  const read = readAll(port)
  await wasTaken
  t.equal(body?.unwritten(), 0, 'every byte handed in was taken when written() resolved')
  t.equal(await read, bytes, 'the reader got the whole answer')
})
