import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import t from 'tap'

const root = fileURLToPath(new URL('../../', import.meta.url))

void t.test('the CLI starts the simulator, prints how to use it and stops on SIGTERM', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/simulator/cli.ts'], {
    cwd: root,
    env: {
      ...process.env,
      SIMULATOR_PORT: '0',
      SIMULATOR_API_KEY: 'cli-key',
      SIMULATOR_ADMIN_EMAIL: 'cli@example.com',
      SIMULATOR_ADMIN_PASSWORD: 'cli-password',
      SIMULATOR_SEED: '3',
      SIMULATOR_LATENCY_FIXED_MS: '1',
      SIMULATOR_QUIET: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()))
  const deadline = Date.now() + 30_000
  while (!/token: \S+\n[\s\S]*Control:/.test(out) && Date.now() < deadline && child.exitCode === null) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
  t.ok(url, 'it prints the URL')
  t.match(out, /cli-key/, 'it prints the API key')
  t.match(out, /cli@example\.com \/ cli-password/, 'it prints the admin credentials')
  const tokens = [...out.matchAll(/- ([0-9a-f]{24}) +(.+)\n +token: (\S+)/g)]
  t.equal(tokens.length, 4, 'it prints every seeded interview with a description and a token')
  const [, interviewId, , token] = tokens[1] ?? []
  const res = await fetch(`${url}/omni/get/images`, {
    method: 'POST',
    headers: { 'x-api-key': 'cli-key', 'X-Incode-Hardware-Id': token ?? '' },
    body: JSON.stringify({ images: ['signature'] }),
  })
  t.equal(res.status, 200, `a printed token works (${interviewId})`)
  await res.arrayBuffer()
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'it exits cleanly on SIGTERM')
})
