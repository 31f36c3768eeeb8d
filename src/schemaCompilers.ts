import { AjvCompiler } from '@fastify/ajv-compiler'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import type { FastifyServerOptions } from 'fastify'

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>
type ValidatorFactory = NonNullable<CompilersFactory['buildValidator']>
type SerializerFactory = NonNullable<CompilersFactory['buildSerializer']>
type Validate = ((data: unknown, context?: unknown) => unknown) & { errors?: unknown; schemaEnv?: unknown }

/**
 * Fastify's own compilers (Ajv for validation, fast-json-stringify for responses), compiled on
 * first use instead of all at start-up. Every route's body, params, headers and each of its
 * response codes is a compilation: done eagerly they were most of the start-up time. What
 * `warmUp()` compiles after the server listens is the same work, off the path to ready.
 */
export class LazySchemaCompilers {
  readonly #pending: Array<() => void> = []
  /** One pool each, as Fastify's defaults keep: one Ajv instance per set of shared schemas. */
  readonly #validators = AjvCompiler()
  readonly #serializers = SerializerSelector()

  readonly factory: CompilersFactory = {
    buildValidator: ((externalSchemas, options) => {
      // Even the Ajv instance is made on first use: adding the shared schemas compiles Ajv's meta-schema.
      let compile: ReturnType<ValidatorFactory> | undefined
      return (routeSchema) => {
        let compiled: Validate | undefined
        const get = (): Validate =>
          (compiled ??= (compile ??= this.#validators(externalSchemas, options))(routeSchema) as Validate)
        const validate: Validate = (data, context) => {
          const real = get()
          // Fastify passes the parent context only to Ajv validators (so root defaults apply).
          const result = real.schemaEnv !== undefined ? real(data, context) : real(data)
          validate.errors = real.errors
          return result
        }
        // Truthy, so Fastify always passes the context; forwarded only to validators that use it.
        validate.schemaEnv = true
        this.#pending.push(get)
        return validate as ReturnType<ReturnType<ValidatorFactory>>
      }
    }) as ValidatorFactory,
    buildSerializer: ((externalSchemas, options) => {
      let compile: ReturnType<SerializerFactory> | undefined
      return (routeSchema) => {
        let compiled: ((data: unknown) => string) | undefined
        const get = () =>
          (compiled ??= (compile ??= this.#serializers(externalSchemas, options))(routeSchema))
        this.#pending.push(get)
        return (data: unknown) => get()(data)
      }
    }) as SerializerFactory,
  }

  /** Compiles what is still pending, a few at a time between other work; resolves when done. */
  async warmUp(batch = 4): Promise<void> {
    while (this.#pending.length > 0) {
      for (const compile of this.#pending.splice(0, batch)) compile()
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }

  pending(): number {
    return this.#pending.length
  }
}
