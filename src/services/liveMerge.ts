import { FlatJsonError } from '../domain/flatJson.js'
import { type FlatJsonEvent, FlatJsonStream } from '../domain/flatJsonStream.js'
import type { ImageType } from '../domain/imageTypes.js'
import type { MergedImagesWriter } from '../domain/imagesMerge.js'
import { foldTypes } from '../domain/requestedTypes.js'
import { UpstreamBadResponseError } from '../errors.js'
import type { PartStream } from './splitFetch.js'

const BACKSLASH = 0x5c

function badAnswer(message: string, cause?: unknown): UpstreamBadResponseError {
  return new UpstreamBadResponseError(
    `Incode sent an invalid answer (${message})`,
    'UPSTREAM_BAD_RESPONSE',
    cause === undefined ? undefined : { cause },
  )
}

/** One image of one part on its way into the answer. */
class Value {
  /** Bytes ready for the answer while another image holds it (views of the upstream pieces). */
  readonly waiting: Buffer[] = []
  /** From the value's first backslash on: held until its end, then written decoded and re-encoded. */
  escaped: Buffer[] | undefined
  /** Bytes of the value as Incode sent them (between its quotes), for the size estimator. */
  rawLength = 0
  /** Bytes written or ready for the answer: 0 at the end means an empty value (missing). */
  readyLength = 0
  complete = false
  state: 'arriving' | 'queued' | 'live' | 'written' | 'dropped' = 'arriving'

  constructor(
    readonly type: ImageType,
    readonly part: LivePart,
  ) {}
}

/**
 * The images of a split request, written into one answer while their parts arrive. Nothing is
 * written until one part has arrived whole and well-formed: the answer's status line goes with
 * its first byte, and until then a failure (a call refused, an answer broken off or malformed)
 * can still be answered with its own status, as a request of one call always is. From then on
 * an image is one JSON string in the answer, so one image at a time holds it ("live"): its bytes
 * go to the answer as they come from Incode. Images of other parts that arrive meanwhile wait,
 * their bytes held (within their parts' memory reservations), and take the answer in turn once
 * it is free: first any that are complete (written at once), else the one with the most bytes
 * waiting, which then goes on live.
 *
 * Base64 passes through as Incode sent it. A value holding escapes is written from its first
 * backslash on only once complete, decoded and re-encoded (JSON.stringify), as the whole-answer
 * path did (`\/` becomes `/`); the bytes before that backslash are the same either way.
 */
export class LiveMerge {
  readonly #writer: MergedImagesWriter
  #live: Value | undefined
  readonly #queue: Value[] = []
  readonly #parts: LivePart[] = []
  /** Whether images may be written: once one part has arrived whole (see partEnded). */
  #open = false
  #closed: Error | undefined

  constructor(writer: MergedImagesWriter) {
    this.#writer = writer
  }

  /** A part's answer, streamed in: `requested` are the types its call asked for. */
  part(requested: readonly ImageType[]): LivePart {
    const part = new LivePart(this, requested)
    this.#parts.push(part)
    return part
  }

  /** No more writing (the answer is cut, or ends): every part still waiting to be handed on is told so. */
  close(err: Error): void {
    this.#closed ??= err
    this.#queue.length = 0
    for (const part of this.#parts.splice(0)) part.settle(err)
  }

  get closedWith(): Error | undefined {
    return this.#closed
  }

  /** Bytes of `value` ready for the answer. */
  ready(value: Value, bytes: Buffer): void {
    if (bytes.length === 0 || this.#closed) return
    value.readyLength += bytes.length
    if (this.#live === value) {
      this.#writer.imageBytes(bytes)
      return
    }
    value.waiting.push(bytes)
    if (value.state !== 'arriving') return
    if (this.#live === undefined && this.#open) this.#goLive(value)
    else {
      value.state = 'queued'
      this.#queue.push(value)
    }
  }

  /**
   * A part's answer has arrived whole and well-formed. The first one opens the answer: before
   * that nothing is written, so a request whose every part fails still gets its own status.
   */
  partEnded(): void {
    if (this.#open || this.#closed) return
    this.#open = true
    if (this.#live === undefined) {
      const next = this.#nextInQueue()
      if (next) this.#goLive(next)
    }
  }

  /** `value` has all its bytes. */
  complete(value: Value): void {
    value.complete = true
    if (this.#live === value && !this.#closed) this.#finishLive()
  }

  /** Takes the part's values out of the queue; true when one of them is on the wire unfinished. */
  drop(part: LivePart): boolean {
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const value = this.#queue[i]
      if (value?.part === part) {
        this.#queue.splice(i, 1)
        value.state = 'dropped'
        value.waiting.length = 0
      }
    }
    return this.#live?.part === part
  }

  #goLive(value: Value): void {
    this.#live = value
    value.state = 'live'
    this.#writer.openImage(value.type)
    for (const bytes of value.waiting.splice(0)) this.#writer.imageBytes(bytes)
    if (value.complete) this.#finishLive()
  }

  #finishLive(): void {
    const done = this.#live
    if (!done) return
    this.#live = undefined
    this.#writer.closeImage()
    done.state = 'written'
    done.part.written(done)
    const next = this.#nextInQueue()
    if (next) this.#goLive(next)
  }

  /** The queued value to write next: a complete one, else the one with most bytes waiting. */
  #nextInQueue(): Value | undefined {
    let best = -1
    let bestBytes = -1
    for (let i = 0; i < this.#queue.length; i++) {
      const value = this.#queue[i] as Value
      if (value.complete) {
        best = i
        break
      }
      if (value.readyLength > bestBytes) {
        best = i
        bestBytes = value.readyLength
      }
    }
    return best === -1 ? undefined : this.#queue.splice(best, 1)[0]
  }
}

/**
 * One part's answer streamed through the scanner into a LiveMerge: the upstream body's sink.
 * Types it was not asked for are ignored; a requested type sent twice refuses the answer (the
 * first may already be on its way out, so "the last one wins" cannot hold).
 */
export class LivePart implements PartStream {
  readonly #merge: LiveMerge
  readonly #requested: ReadonlySet<string>
  readonly #scanner = new FlatJsonStream()
  readonly #seen = new Set<string>()
  readonly #values: Value[] = []
  #current: Value | undefined
  #ended = false
  #unwritten = 0
  #settled: { err: Error | undefined } | undefined
  #onSettled: ((err: Error | undefined) => void) | undefined
  /** Requested types the answer lacked, or gave as null, "" or a non-string. */
  readonly missing: ImageType[] = []
  /** Requested types whose image is whole in the answer. */
  readonly delivered = new Set<ImageType>()

  constructor(merge: LiveMerge, requested: readonly ImageType[]) {
    this.#merge = merge
    this.#requested = new Set(requested)
  }

  write(piece: Buffer): void {
    let events: FlatJsonEvent[]
    try {
      events = this.#scanner.push(piece)
    } catch (err) {
      throw err instanceof FlatJsonError ? badAnswer(err.message, err) : err
    }
    for (const event of events) this.#on(event)
  }

  end(): void {
    try {
      this.#scanner.end()
    } catch (err) {
      throw err instanceof FlatJsonError ? badAnswer(err.message, err) : err
    }
    for (const type of foldTypes([...this.#requested] as ImageType[])) {
      if (!this.#seen.has(type)) this.missing.push(type)
    }
    this.#ended = true
    this.#merge.partEnded()
    this.#maybeSettle()
  }

  /** Raw sizes of the images this answer held, by type (for the size estimator). */
  sizes(): Map<ImageType, number> {
    return new Map(this.#values.map((value) => [value.type, value.rawLength]))
  }

  /** Resolves once every image of the answer is in the merged answer; rejects when it is closed first. */
  handedOn(): Promise<void> {
    if (this.#settled) return this.#settled.err ? Promise.reject(this.#settled.err) : Promise.resolve()
    return new Promise((resolve, reject) => {
      this.#onSettled = (err) => (err ? reject(err) : resolve())
    })
  }

  abandon(): { delivered: ReadonlySet<ImageType>; broken: boolean } {
    const broken = this.#merge.drop(this)
    this.settle(undefined)
    return { delivered: this.delivered, broken }
  }

  /** Called by the merge once one of this part's images is whole in the answer. */
  written(value: Value): void {
    this.delivered.add(value.type)
    this.#unwritten--
    this.#maybeSettle()
  }

  /** Called by the merge when this part can no longer be handed on (or is given up). */
  settle(err: Error | undefined): void {
    if (this.#settled) return
    this.#settled = { err }
    this.#onSettled?.(err)
  }

  #maybeSettle(): void {
    if (this.#ended && this.#unwritten === 0) this.settle(this.#merge.closedWith)
  }

  #on(event: FlatJsonEvent): void {
    switch (event.type) {
      case 'string-start':
        this.#current = this.#take(event.key) ? new Value(event.key as ImageType, this) : undefined
        if (this.#current) {
          this.#values.push(this.#current)
          this.#unwritten++
        }
        return
      case 'string-data': {
        const value = this.#current
        if (value) this.#data(value, event.bytes)
        return
      }
      case 'string-end': {
        const value = this.#current
        this.#current = undefined
        if (value) this.#end(value)
        return
      }
      case 'value':
        if (this.#take(event.entry.key)) this.missing.push(event.entry.key as ImageType)
        return
    }
  }

  /** Whether `key` is a requested type seen for the first time; refuses a requested type seen twice. */
  #take(key: string): boolean {
    if (!this.#requested.has(key)) return false
    if (this.#seen.has(key)) throw badAnswer(`${key} given twice`)
    this.#seen.add(key)
    return true
  }

  #data(value: Value, bytes: Buffer): void {
    value.rawLength += bytes.length
    if (value.escaped) {
      value.escaped.push(bytes)
      return
    }
    const backslash = bytes.indexOf(BACKSLASH)
    if (backslash === -1) {
      this.#merge.ready(value, bytes)
      return
    }
    this.#merge.ready(value, bytes.subarray(0, backslash))
    value.escaped = [bytes.subarray(backslash)]
  }

  #end(value: Value): void {
    if (value.escaped) {
      let text: string
      try {
        text = JSON.parse(`"${Buffer.concat(value.escaped).toString('utf8')}"`) as string
      } catch (err) {
        throw badAnswer(`the value of ${value.type} is not a JSON string`, err)
      }
      value.escaped = undefined
      const json = JSON.stringify(text)
      this.#merge.ready(value, Buffer.from(json.slice(1, -1)))
    }
    if (value.readyLength === 0) {
      // An empty value: missing, and nothing of it was written.
      this.missing.push(value.type)
      this.#unwritten--
      value.state = 'dropped'
      return
    }
    this.#merge.complete(value)
  }
}
