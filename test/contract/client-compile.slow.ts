/**
 * The README's typed client compiles against the generated types, and its mistakes do not: each
 * `@ts-expect-error` line in client-example.ts must be an error, or tsc fails. (npm run typecheck
 * checks the same file as part of the whole tree; this names the failure.)
 */
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const project = fileURLToPath(new URL('tsconfig.client.json', import.meta.url))

t.test('the example client compiles, and its mistakes do not', async (t) => {
  const run = await promisify(execFile)(process.execPath, [tsc, '-p', project], {
    encoding: 'utf8',
  }).then(
    () => ({ code: 0, output: '' }),
    (err: unknown) => {
      const failed = err as { code?: number; stdout?: string }
      return { code: failed.code ?? 1, output: failed.stdout ?? '' }
    },
  )
  t.equal(run.code, 0, `tsc accepts client-example.ts, every @ts-expect-error an error:\n${run.output}`)
})
