import type { ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { callerKey } from '../auth/callerKey.js'
import { ClientClosedError } from '../errors.js'
import type { Release, Reserver } from './byteBudget.js'

/**
 * Bytes handed to the socket per write. One large write shows no progress until all of it has
 * gone (Node reports a write only once it is complete), so a slow reader of a 14 MB answer would
 * look stalled; 64 KiB pieces show its progress, and cost no copy (they are views).
 */
const SLICE_BYTES = 64 * 1024

export type CutReason = 'stall' | 'deadline'

export interface AnswerBodyOptions {
  /** Longest time the socket may take no byte of the answer before the answer is cut. */
  stallMs: number
  /** When the whole answer, writing included, must be done (epoch ms, as the request's deadline). */
  deadlineAt: number
  /** Wall clock (tests drive a fake one); the request deadline is on Date.now's. */
  now?: () => number
  /** How often write progress is looked at; default a quarter of `stallMs`, 10 ms to 1 s. */
  checkEveryMs?: number
  /** Told why an answer was cut, before its socket is destroyed. */
  onCut?: (reason: CutReason) => void
}

interface Waiter {
  upTo: number
  resolve: () => void
  reject: (err: Error) => void
}

/**
 * The body of one answer, written to the caller under watch. Bytes handed in stay counted as
 * held until the socket has taken them (not merely buffered them): `written()` waits for that,
 * and `hold()` keeps a memory reservation until the answer has ended. An answer whose socket
 * takes no byte for `stallMs`, or that is still being written at its deadline, is cut (its socket
 * destroyed), which ends every wait and gives back what it held. A slow reader that keeps taking
 * bytes is never cut for being slow, only by the deadline.
 *
 * Pass it to `reply.send()`; fastify pipes it into the response with backpressure, so the bytes
 * not yet taken are this body's queue plus what the response and its socket buffer.
 */
export class AnswerBody extends Readable {
  readonly #res: ServerResponse
  readonly #stallMs: number
  readonly #deadlineAt: number
  readonly #now: () => number
  readonly #checkEveryMs: number
  readonly #onCut: ((reason: CutReason) => void) | undefined
  readonly #timer: NodeJS.Timeout
  readonly #queue: Buffer[] = []
  #queued = 0
  /** Bytes handed in so far, and of those the socket has taken (a lower bound: headers and framing count as not taken). */
  #added = 0
  #taken = 0
  #ending = false
  #wanted = false
  #over = false
  #finished = false
  #progressed = false
  #stalledFor = 0
  #lastTickAt: number
  readonly #waiters: Waiter[] = []
  readonly #held: Release[] = []
  readonly #onDrain = () => this.#check()
  /** A quick re-check is scheduled (see #nudge), and its delay so far. */
  #nudge: NodeJS.Timeout | undefined
  #nudgeMs = 0

  constructor(res: ServerResponse, options: AnswerBodyOptions) {
    super()
    this.#res = res
    this.#stallMs = options.stallMs
    this.#deadlineAt = options.deadlineAt
    this.#now = options.now ?? Date.now
    this.#checkEveryMs =
      options.checkEveryMs ?? Math.min(1_000, Math.max(10, Math.floor(options.stallMs / 4)))
    this.#onCut = options.onCut
    this.#lastTickAt = this.#now()
    res.on('drain', this.#onDrain)
    res.once('finish', () => this.#settle(true))
    res.once('close', () => this.#settle(res.writableFinished))
    this.#timer = setInterval(() => this.#tick(), this.#checkEveryMs)
    this.#timer.unref()
  }

  /** Appends bytes to the answer (ignored once it has ended). */
  add(bytes: Buffer | string): void {
    const chunk = typeof bytes === 'string' ? Buffer.from(bytes) : bytes
    if (this.#over || this.#ending || chunk.length === 0) return
    for (let offset = 0; offset < chunk.length; offset += SLICE_BYTES) {
      this.#queue.push(chunk.subarray(offset, offset + SLICE_BYTES))
    }
    this.#queued += chunk.length
    this.#added += chunk.length
    if (this.#wanted) this.#pushQueued()
  }

  /** No more bytes: the answer ends once the queued ones are out. */
  end(): void {
    if (this.#ending) return
    this.#ending = true
    if (this.#wanted) this.#pushQueued()
  }

  /** Keeps `release` until the answer has ended: finished, cut, or closed by the caller. */
  hold(release: Release): void {
    if (this.#over) release()
    else this.#held.push(release)
  }

  /**
   * Resolves once the socket has taken every byte added so far; rejects with ClientClosedError
   * when the answer is cut or the caller leaves first.
   */
  written(): Promise<void> {
    if (this.#over) return this.#finished ? Promise.resolve() : Promise.reject(new ClientClosedError())
    return this.#waitFor(this.#added)
  }

  #waitFor(upTo: number): Promise<void> {
    this.#check()
    if (this.#taken >= upTo) return Promise.resolve()
    const waiting = new Promise<void>((resolve, reject) => this.#waiters.push({ upTo, resolve, reject }))
    this.#scheduleNudge()
    return waiting
  }

  /** Bytes handed in and not yet taken by the socket. */
  unwritten(): number {
    if (this.#over) return 0
    return this.#queued + this.readableLength + this.#res.writableLength
  }

  override _read(): void {
    this.#wanted = true
    this.#pushQueued()
    // Asked for more: what was pushed before has moved on.
    this.#check()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#queue.length = 0
    this.#queued = 0
    callback(err)
  }

  #pushQueued(): void {
    while (this.#wanted) {
      const slice = this.#queue.shift()
      if (slice === undefined) {
        if (this.#ending) {
          this.#wanted = false
          this.push(null)
        }
        return
      }
      this.#queued -= slice.length
      this.#wanted = this.push(slice)
    }
  }

  #check(): void {
    if (this.#over) return
    const taken = this.#added - this.unwritten()
    if (taken > this.#taken) {
      this.#taken = taken
      this.#progressed = true
      // Moving again: the next quick look comes soon again.
      this.#nudgeMs = 0
    }
    while (this.#waiters[0] !== undefined && this.#waiters[0].upTo <= this.#taken) {
      this.#waiters.shift()?.resolve()
    }
    if (this.#waiters.length === 0) this.#stopNudge()
  }

  /**
   * Progress that no event reports: the last bytes handed to the response fit under its
   * high-water mark, so no 'drain' follows when the socket takes them, and nothing else would
   * look before the next tick (up to a second). While someone waits on `written()`, look again
   * soon: at once, then after 1, 2, 4 … ms up to the tick's interval.
   */
  #scheduleNudge(): void {
    if (this.#nudge !== undefined || this.#over) return
    this.#nudge = setTimeout(() => {
      this.#nudge = undefined
      this.#check()
      if (this.#waiters.length === 0 || this.#over) return
      this.#nudgeMs = Math.min(this.#checkEveryMs, Math.max(1, this.#nudgeMs * 2))
      this.#scheduleNudge()
    }, this.#nudgeMs)
    this.#nudge.unref()
  }

  #stopNudge(): void {
    clearTimeout(this.#nudge)
    this.#nudge = undefined
    this.#nudgeMs = 0
  }

  #tick(): void {
    if (this.#over) return
    const now = this.#now()
    // A late tick (a blocked event loop) counts for at most two intervals: the reader cannot
    // have taken bytes while this process was not writing them.
    const elapsed = Math.min(Math.max(0, now - this.#lastTickAt), 2 * this.#checkEveryMs)
    this.#lastTickAt = now
    if (now >= this.#deadlineAt) {
      this.#cut('deadline')
      return
    }
    this.#check()
    if (this.#progressed || this.unwritten() === 0) this.#stalledFor = 0
    else this.#stalledFor += elapsed
    this.#progressed = false
    if (this.#stalledFor >= this.#stallMs) this.#cut('stall')
  }

  #cut(reason: CutReason): void {
    this.#onCut?.(reason)
    this.#res.destroy()
    // 'close' follows asynchronously; give the memory back now.
    this.#settle(false)
  }

  #settle(finished: boolean): void {
    if (this.#over) return
    this.#over = true
    this.#finished = finished
    clearInterval(this.#timer)
    this.#stopNudge()
    this.#res.off('drain', this.#onDrain)
    for (const release of this.#held.splice(0)) release()
    for (const waiter of this.#waiters.splice(0)) {
      if (finished) waiter.resolve()
      else waiter.reject(new ClientClosedError())
    }
    if (!finished) this.destroy()
  }
}

/**
 * An answer body for `reply`, watched with the service's settings: cut after WRITE_STALL_MS
 * without write progress, or at `deadlineAt` (the request deadline).
 */
export function watchedAnswer(reply: FastifyReply, deadlineAt: number): AnswerBody {
  const { server } = reply
  return new AnswerBody(reply.raw, {
    stallMs: server.config.WRITE_STALL_MS,
    deadlineAt,
    onCut: (reason) =>
      reply.log.warn(
        { reason },
        reason === 'stall'
          ? 'answer cut: the caller took no byte of it for WRITE_STALL_MS'
          : 'answer cut: still being written at the request deadline',
      ),
  })
}

/**
 * The answer memory as `request`'s caller may use it: the service-wide ANSWER_MEMORY_BYTES, of
 * which one caller (as the rate limit counts callers) holds at most ANSWER_MEMORY_PER_CALLER_BYTES.
 */
export function callerMemory(request: FastifyRequest): Reserver {
  const { answerMemory, tokenVerdicts } = request.server
  return answerMemory.forCaller(callerKey(request, tokenVerdicts))
}
