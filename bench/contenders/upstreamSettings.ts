/**
 * What the split-fetching contenders (bufferAll, chunkPipe) read from their environment: the
 * upstream (the simulator) with its credentials, where to listen, the chunk plan, and one undici
 * pool to the upstream. Compiled beside them (bench/lib/scripts.ts), imported as a sibling.
 */
import { Pool } from 'undici'

const upstream = process.env.UPSTREAM_URL
if (!upstream) throw new Error('UPSTREAM_URL is required')

export const settings = {
  upstream,
  apiKey: process.env.INCODE_API_KEY ?? 'sim-api-key',
  email: process.env.INCODE_ADMIN_EMAIL ?? 'admin@example.com',
  password: process.env.INCODE_ADMIN_PASSWORD ?? 'sim-admin-password',
  port: Number(process.env.PORT ?? 0),
  host: process.env.HOST ?? '127.0.0.1',
  plan: JSON.parse(process.env.BENCH_CHUNKS ?? '[]') as string[][],
}

export const pool = new Pool(upstream, {
  connections: Number(process.env.UPSTREAM_CONNECTIONS ?? 32),
  keepAliveTimeout: 30_000,
})
