import type { FastifyBaseLogger } from 'fastify'
import type { Bindings, ChildLoggerOptions } from 'pino'

type LogArgs = unknown[]
type Method = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'

/** What is read of Fastify's root logger (pino's): its level, and how to make a child. */
interface ParentLogger {
  level: string
  levelVal: number
  levels: { values: Record<string, number | undefined> }
  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger
}

/**
 * A request's logger that becomes pino's child logger only when a line is written at an enabled
 * level. Fastify makes a child logger per request (its request-id binding serialised, its own
 * object), ~1.5% of a cached links answer, and at the usual levels (info, warn) most requests
 * never log a line. What a line holds is unchanged: it is written by the same child, made with
 * the same bindings and options, on first use.
 */
class LazyChildLogger {
  readonly #parent: ParentLogger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions
  #child: FastifyBaseLogger | undefined

  constructor(parent: ParentLogger, bindings: Bindings, options: ChildLoggerOptions) {
    // Nothing worked out here: most request loggers are never written to.
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  /** Whether a line at `method` is written: at or above the route's `logLevel`, else the parent's. */
  #enabled(method: Method): boolean {
    const { values } = this.#parent.levels
    const threshold =
      this.#options.level === undefined ? this.#parent.levelVal : (values[this.#options.level] ?? 0)
    return (values[method] ?? 0) >= threshold
  }

  #real(): FastifyBaseLogger {
    return (this.#child ??= this.#parent.child(this.#bindings, this.#options))
  }

  #write(method: Method, args: LogArgs): void {
    if (this.#child === undefined && !this.#enabled(method)) return
    const real = this.#real()
    Reflect.apply(real[method], real, args)
  }

  get level(): string {
    return this.#child?.level ?? this.#options.level ?? this.#parent.level
  }

  set level(level: string) {
    this.#real().level = level
  }

  trace(...args: LogArgs): void {
    this.#write('trace', args)
  }
  debug(...args: LogArgs): void {
    this.#write('debug', args)
  }
  info(...args: LogArgs): void {
    this.#write('info', args)
  }
  warn(...args: LogArgs): void {
    this.#write('warn', args)
  }
  error(...args: LogArgs): void {
    this.#write('error', args)
  }
  fatal(...args: LogArgs): void {
    this.#write('fatal', args)
  }
  silent(): void {
    // pino's silent level writes nothing.
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options)
  }
}

/** Fastify's `childLoggerFactory`: the request's logger, made on its first line. */
export function lazyChildLogger(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  return new LazyChildLogger(logger as unknown as ParentLogger, bindings, options)
}
