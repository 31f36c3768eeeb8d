import { Semaphore } from 'async-mutex'
import { ClientClosedError, OverloadedError } from '../errors.js'

const KiB = 1024

export type Release = () => void

/**
 * A service-wide bound on the base64 answer bytes held in memory at once. Each upstream part
 * reserves its estimated size before it is asked for and gives it back once it has been written
 * to the caller, so 50 concurrent full-set requests queue for memory instead of each holding up
 * to a full set. Waiters are served in order (async-mutex's weighted semaphore); a part larger
 * than the whole budget reserves all of it and so runs alone.
 */
export class ByteBudget {
  readonly #semaphore: Semaphore
  /** In KiB: async-mutex's weights are plain counts, and KiB keeps them small. */
  readonly #capacity: number

  constructor(readonly maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < KiB) {
      throw new RangeError(`ByteBudget: maxBytes must be an integer >= 1024, got ${String(maxBytes)}`)
    }
    this.#capacity = Math.floor(maxBytes / KiB)
    this.#semaphore = new Semaphore(this.#capacity)
  }

  /** Bytes not reserved right now. */
  available(): number {
    return Math.max(0, this.#semaphore.getValue()) * KiB
  }

  /**
   * Reserves `bytes`, waiting for earlier reservations to be released. Rejects (and reserves
   * nothing) when `signal` aborts or `deadlineAt` passes first.
   */
  async reserve(
    bytes: number,
    options: { signal?: AbortSignal; deadlineAt?: number } = {},
  ): Promise<Release> {
    const { signal, deadlineAt } = options
    if (signal?.aborted) throw new ClientClosedError()
    const weight = Math.min(this.#capacity, Math.max(1, Math.ceil(bytes / KiB)))
    const acquiring = this.#semaphore.acquire(weight)
    let settled = false
    let timer: NodeJS.Timeout | undefined
    let onAbort: (() => void) | undefined
    const given = new Promise<never>((_, reject) => {
      onAbort = () => reject(new ClientClosedError())
      signal?.addEventListener('abort', onAbort, { once: true })
      if (deadlineAt !== undefined) {
        timer = setTimeout(
          () =>
            reject(
              new OverloadedError(
                'The service is holding as many images as it may; retry later',
                1,
                'MEMORY_BUDGET_EXHAUSTED',
              ),
            ),
          Math.max(0, deadlineAt - Date.now()),
        )
      }
    })
    try {
      const [, release] = await Promise.race([acquiring, given])
      settled = true
      let released = false
      return () => {
        if (released) return
        released = true
        release()
      }
    } finally {
      clearTimeout(timer)
      if (onAbort) signal?.removeEventListener('abort', onAbort)
      // Given up on: whenever the reservation comes through, hand it straight back.
      if (!settled) void acquiring.then(([, release]) => release())
    }
  }
}
