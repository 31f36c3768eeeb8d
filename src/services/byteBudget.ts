import { ClientClosedError, OverloadedError } from '../errors.js'
import { WeightedQueue } from './weightedQueue.js'

const KiB = 1024

export type Release = () => void

export interface ReserveOptions {
  /** The caller left: stop waiting (ClientClosedError). */
  signal?: AbortSignal
  /** Stop waiting then (epoch ms): 503 MEMORY_BUDGET_EXHAUSTED. */
  deadlineAt?: number
  /**
   * Who the memory is for (see auth/callerKey.ts). Reservations of one caller wait in that
   * caller's own queue while it holds its share; without a key only the service-wide bound applies.
   */
  caller?: string
}

/** Reservations on behalf of one caller (or of none: the budget itself). */
export interface Reserver {
  reserve(bytes: number, options?: Omit<ReserveOptions, 'caller'>): Promise<Release>
}

/** One reservation's place in its caller's share: queued, then admitted, then left. */
interface Ticket {
  /** In KiB, at most the share. */
  weight: number
  state: 'queued' | 'admitted' | 'left'
  admit: () => void
}

/** What one caller holds (admitted tickets, in KiB) and what waits behind it. */
interface CallerShare {
  held: number
  queue: Ticket[]
}

/**
 * A service-wide bound on the base64 answer bytes held in memory at once, with a share per
 * caller. Each upstream part reserves its estimated size before it is asked for and gives it back
 * once it has been written to the caller, so 50 concurrent full-set requests queue for memory
 * instead of each holding up to a full set.
 *
 * Service-wide, waiters are served in order (a weighted FIFO semaphore); a part larger than
 * the whole budget reserves all of it and so runs alone. Per caller, no one caller may have more
 * than `perCallerBytes` reserved or waiting in that order: its further reservations wait in its
 * own queue, in order, and join the service-wide one only as its earlier ones are given back. So
 * a caller that opens many answers and never reads them holds one share, and any other caller
 * finds the rest of the budget, or is next in line for it, rather than behind all of that
 * caller's answers. A reservation larger than the share takes the whole share (the caller's
 * others wait for it); it still counts its full size, up to the budget, service-wide.
 *
 * A caller's entry exists only while it holds or waits for memory: the keys kept are bounded by
 * the reservations in flight, whatever keys callers make up.
 */
export class ByteBudget {
  readonly #semaphore: WeightedQueue
  /** In KiB: the semaphore's weights are plain counts, and KiB keeps them small. */
  readonly #capacity: number
  readonly #shareCapacity: number
  readonly #callers = new Map<string, CallerShare>()

  /**
   * @param maxBytes the service-wide bound
   * @param perCallerBytes one caller's share (at most `maxBytes`; default: all of it, so no
   *   per-caller bound beyond the order of its own queue)
   * @param onExhausted told of each reservation refused with MEMORY_BUDGET_EXHAUSTED (metrics)
   */
  constructor(
    readonly maxBytes: number,
    perCallerBytes = maxBytes,
    readonly onExhausted: () => void = () => {},
  ) {
    for (const [name, value] of [
      ['maxBytes', maxBytes],
      ['perCallerBytes', perCallerBytes],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < KiB) {
        throw new RangeError(`ByteBudget: ${name} must be an integer >= 1024, got ${String(value)}`)
      }
    }
    this.#capacity = Math.floor(maxBytes / KiB)
    this.#shareCapacity = Math.min(this.#capacity, Math.floor(perCallerBytes / KiB))
    this.#semaphore = new WeightedQueue(this.#capacity)
  }

  /** One caller's share, in bytes. */
  get perCallerBytes(): number {
    return this.#shareCapacity * KiB
  }

  /** Bytes not reserved right now. */
  available(): number {
    return Math.max(0, this.#semaphore.getValue()) * KiB
  }

  /** Bytes reserved right now (what `available()` lacks of the whole budget). */
  reserved(): number {
    return (this.#capacity - Math.max(0, this.#semaphore.getValue())) * KiB
  }

  /** Bytes of `caller`'s share taken by its reservations (held, or waiting service-wide). */
  heldBy(caller: string): number {
    return (this.#callers.get(caller)?.held ?? 0) * KiB
  }

  /** Callers holding or waiting for memory right now (the entries kept). */
  get callers(): number {
    return this.#callers.size
  }

  /** Reservations waiting in their caller's own queue (not yet in the service-wide one). */
  get waiting(): number {
    let waiting = 0
    for (const share of this.#callers.values()) waiting += share.queue.length
    return waiting
  }

  /** Reservations made for `caller`: each waits behind that caller's own first. */
  forCaller(caller: string): Reserver {
    return { reserve: (bytes, options = {}) => this.reserve(bytes, { ...options, caller }) }
  }

  /**
   * Reserves `bytes`, waiting for earlier reservations to be released (the caller's own first,
   * then everyone's). Rejects (and reserves nothing) when `signal` aborts or `deadlineAt` passes
   * first.
   */
  async reserve(bytes: number, options: ReserveOptions = {}): Promise<Release> {
    const { signal, deadlineAt, caller } = options
    if (signal?.aborted) throw new ClientClosedError()
    const weight = Math.min(this.#capacity, Math.max(1, Math.ceil(bytes / KiB)))
    let timer: NodeJS.Timeout | undefined
    let onAbort: (() => void) | undefined
    let inShare = false
    const given = new Promise<never>((_, reject) => {
      onAbort = () => reject(new ClientClosedError())
      signal?.addEventListener('abort', onAbort, { once: true })
      if (deadlineAt !== undefined) {
        timer = setTimeout(
          () => {
            this.onExhausted()
            reject(
              new OverloadedError(
                inShare
                  ? 'The service is holding as many images as it may; retry later'
                  : 'The service is holding as many images as it may for this caller; retry later',
                1,
                'MEMORY_BUDGET_EXHAUSTED',
              ),
            )
          },
          Math.max(0, deadlineAt - Date.now()),
        )
      }
    })
    const ticket = caller === undefined ? undefined : this.#enter(caller, weight)
    const leaveShare = () => {
      if (caller !== undefined && ticket) this.#leave(caller, ticket)
    }
    let acquiring: Promise<Release> | undefined
    let settled = false
    try {
      if (ticket && ticket.state === 'queued') {
        await Promise.race([new Promise<void>((resolve) => (ticket.admit = resolve)), given])
      }
      inShare = true
      acquiring = this.#semaphore.acquire(weight)
      const release = await Promise.race([acquiring, given])
      settled = true
      let released = false
      return () => {
        if (released) return
        released = true
        release()
        leaveShare()
      }
    } finally {
      clearTimeout(timer)
      if (onAbort) signal?.removeEventListener('abort', onAbort)
      if (!settled) {
        // Given up on: whenever the service-wide reservation comes through, hand it straight
        // back. The caller's share stays taken until then, so that a caller giving up again and
        // again cannot fill the service-wide queue.
        if (acquiring) {
          void acquiring.then((release) => {
            release()
            leaveShare()
          })
        } else {
          leaveShare()
        }
      }
    }
  }

  /** Queues a ticket in `caller`'s share, admitting it at once if the share has room. */
  #enter(caller: string, weight: number): Ticket {
    let share = this.#callers.get(caller)
    if (!share) {
      share = { held: 0, queue: [] }
      this.#callers.set(caller, share)
    }
    const ticket: Ticket = { weight: Math.min(weight, this.#shareCapacity), state: 'queued', admit: () => {} }
    share.queue.push(ticket)
    this.#admit(share)
    return ticket
  }

  /** Gives a ticket's place back (whether it was admitted or still queued). */
  #leave(caller: string, ticket: Ticket): void {
    const share = this.#callers.get(caller)
    if (!share || ticket.state === 'left') return
    if (ticket.state === 'admitted') share.held -= ticket.weight
    else share.queue.splice(share.queue.indexOf(ticket), 1)
    ticket.state = 'left'
    this.#admit(share)
    if (share.held === 0 && share.queue.length === 0) this.#callers.delete(caller)
  }

  /** Admits the caller's waiters in order while its share has room for the first. */
  #admit(share: CallerShare): void {
    for (let next = share.queue[0]; next; next = share.queue[0]) {
      if (share.held + next.weight > this.#shareCapacity) return
      share.queue.shift()
      share.held += next.weight
      next.state = 'admitted'
      next.admit()
    }
  }
}
