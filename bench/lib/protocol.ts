/** What the bench hands its request-loop client (bench/clients/loop.ts), and what it gets back. Types only. */

export interface HttpCall {
  method: 'GET' | 'POST' | 'DELETE' | 'PUT'
  url: string
  headers?: Record<string, string>
  body?: string
}

/** One measured unit: `setup` runs untimed first; then `timed` runs one call after another, timed as a whole. */
export interface LoopTask {
  name: string
  setup?: HttpCall[]
  timed: HttpCall[]
  /** Send the timed calls all at once (timed until the last answer's last byte), not one after another. */
  parallel?: boolean
  /** Response headers of the last timed call to keep (lower case). */
  captureHeaders?: string[]
}

export interface LoopPlan {
  tasks: LoopTask[]
  /** Untimed rounds first (connections, JIT, caches of the service's size estimator). */
  warmupRounds: number
  rounds: number
  /** Stop early (with the rounds done so far) after this long. */
  maxMs: number
}

export interface TaskSamples {
  /** Wall time of the timed calls of each round, ms. */
  ms: number[]
  /** HTTP status of the last timed call of each round. */
  status: number[]
  /** Response bytes of the timed calls of each round. */
  bytes: number[]
  /** Captured headers of each round. */
  headers: Array<Record<string, string>>
  /** Status of setup calls that did not answer 2xx (should stay empty). */
  setupFailures: number[]
}

export interface LoopResult {
  rounds: number
  elapsedMs: number
  stoppedEarly: boolean
  tasks: Record<string, TaskSamples>
}
