/**
 * Contender "pass-through": a plain Fastify proxy in front of the simulator with
 * @fastify/reply-from, and nothing else: no splitting, no merging, no caching. Request bodies are
 * streamed on as raw bytes (not parsed and re-serialised), and so are the answers.
 *
 * Environment: UPSTREAM_URL (the simulator), PORT, HOST (127.0.0.1), UPSTREAM_CONNECTIONS (32,
 * the service's pool size). Runs as its own process, compiled to JS by the bench.
 */
import replyFrom from '@fastify/reply-from'
import Fastify from 'fastify'
import { serve } from './serve.js'

const upstream = process.env.UPSTREAM_URL
if (!upstream) throw new Error('UPSTREAM_URL is required')
const port = Number(process.env.PORT ?? 0)
const host = process.env.HOST ?? '127.0.0.1'
const connections = Number(process.env.UPSTREAM_CONNECTIONS ?? 32)

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 })
// The request body stays a stream that reply-from pipes upstream as it is (a parsed or buffered JSON
// body would be re-serialised by reply-from).
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', (_request, payload, done) => done(null, payload))
await app.register(replyFrom, {
  base: upstream,
  undici: { connections, pipelining: 1, keepAliveTimeout: 30_000 },
})
app.all('/*', (request, reply) => reply.from(request.url))

await serve(app, 'pass-through', port, host)
