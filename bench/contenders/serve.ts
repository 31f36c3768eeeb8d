/**
 * How the Fastify contenders listen and stop: on `port`/`host`, closing on SIGTERM or SIGINT and
 * exiting, and saying `<name> listening on <address>` once ready (the bench waits for their ready
 * path, the line is for its log). Compiled beside them (bench/lib/scripts.ts), imported as a sibling.
 */
import type { FastifyInstance } from 'fastify'

export async function serve(app: FastifyInstance, name: string, port: number, host: string): Promise<void> {
  const stop = () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  const address = await app.listen({ port, host })
  process.stdout.write(`${name} listening on ${address}\n`)
}
