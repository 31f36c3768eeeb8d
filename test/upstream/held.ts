import type { ServerResponse } from 'node:http'
import type { Test } from 'tap'
import { startServer, type TestServer } from './helpers.js'

export interface HeldUpstream extends TestServer {
  /** The most requests the server held unanswered at once. */
  maxHeld: () => number
  /** Resolves once the server has received `count` requests in all. */
  received: (count: number) => Promise<void>
  /** Answers 200 to every held request, and to every later one at once. */
  release: () => void
}

/**
 * An upstream that holds every request unanswered until `release()`: what a test asserts before
 * releasing happened while the calls were still in flight, however slow the machine is.
 */
export async function heldUpstream(t: Test): Promise<HeldUpstream> {
  const held = new Set<ServerResponse>()
  const waiters: Array<{ count: number; resolve: () => void }> = []
  let maxHeld = 0
  let released = false
  const upstream = await startServer(t, (_req, res) => {
    if (released) {
      res.end('ok')
    } else {
      held.add(res)
      res.on('close', () => held.delete(res))
      maxHeld = Math.max(maxHeld, held.size)
    }
    for (const waiter of waiters.filter((w) => upstream.requests.length >= w.count)) {
      waiters.splice(waiters.indexOf(waiter), 1)
      waiter.resolve()
    }
  })
  return {
    ...upstream,
    maxHeld: () => maxHeld,
    received: (count) =>
      upstream.requests.length >= count
        ? Promise.resolve()
        : new Promise((resolve) => waiters.push({ count, resolve })),
    release: () => {
      released = true
      for (const res of held) res.end('ok')
    },
  }
}

/**
 * Whether `promise` settles within the current turn of the event loop, before any timer or I/O
 * callback can run: "at once", measured without a clock.
 */
export async function settlesThisTurn(promise: Promise<unknown>): Promise<boolean> {
  let nextTurn = false
  const turn = new Promise<void>((resolve) =>
    setImmediate(() => {
      nextTurn = true
      resolve()
    }),
  )
  await Promise.race([promise.then(noop, noop), turn])
  return !nextTurn
}

function noop(): void {}

/** Resolves once `condition` holds, checking every few milliseconds (the test's timeout bounds it). */
export async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 5))
}
