/**
 * A weighted semaphore served strictly in order: a waiter is admitted once every earlier one has
 * been and its weight fits in what is free (a large waiter at the head holds back smaller ones
 * behind it, so it is never starved). Acquiring and releasing cost the same whatever the
 * capacity (async-mutex's weighted Semaphore, used before, walks every weight from the free
 * amount down to 1 on each acquire and release: 62,500 steps for 64 MB counted in KiB).
 */
export class WeightedQueue {
  #value: number
  readonly #capacity: number
  /** Waiters in order (as many as reservations in flight: a few hundred at most). */
  readonly #queue: Array<{ weight: number; resolve: (release: () => void) => void }> = []

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new RangeError(`WeightedQueue: capacity must be a positive integer, got ${String(capacity)}`)
    this.#value = capacity
    this.#capacity = capacity
  }

  /** Free weight right now. */
  getValue(): number {
    return this.#value
  }

  /**
   * Resolves with a release function once `weight` (a positive integer, at most the capacity)
   * is admitted; calling the release more than once gives the weight back once.
   */
  acquire(weight: number): Promise<() => void> {
    if (!Number.isSafeInteger(weight) || weight < 1 || weight > this.#capacity)
      throw new RangeError(
        `WeightedQueue: weight must be a positive integer up to ${String(this.#capacity)}, got ${String(weight)}`,
      )
    return new Promise((resolve) => {
      this.#queue.push({ weight, resolve })
      this.#dispatch()
    })
  }

  #dispatch(): void {
    for (let next = this.#queue[0]; next && next.weight <= this.#value; next = this.#queue[0]) {
      this.#queue.shift()
      this.#value -= next.weight
      next.resolve(this.#releaser(next.weight))
    }
  }

  #releaser(weight: number): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      this.#value += weight
      this.#dispatch()
    }
  }
}
