/**
 * Contender "bare Fastify": the ceiling of a Node service on this machine. One POST route that
 * answers the bytes in BODY_FILE (the service's own warm links answer, pre-serialised) with the
 * same content type, and nothing else: no auth, limits, metrics, headers or lookup.
 *
 * Environment: BODY_FILE, PORT, HOST (127.0.0.1). Runs as its own process, compiled to JS by the bench.
 */
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import { serve } from './serve.js'

const file = process.env.BODY_FILE
if (!file) throw new Error('BODY_FILE is required')
const answer = readFileSync(file)
const port = Number(process.env.PORT ?? 0)
const host = process.env.HOST ?? '127.0.0.1'

const app = Fastify({ logger: false })
app.post('/*', (_request, reply) => {
  void reply.header('content-type', 'application/json; charset=utf-8').send(answer)
})
app.get('/ready', (_request, reply) => {
  void reply.send('ok')
})

await serve(app, 'bare', port, host)
