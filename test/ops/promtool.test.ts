import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const deploy = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url))

/** promtool's answer to `args`, run in deploy/prometheus; undefined when promtool is not installed. */
async function promtool(...args: string[]): Promise<{ ok: boolean; output: string } | undefined> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: deploy })
    return { ok: true, output: stdout + stderr }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string }
    return { ok: false, output: stdout + stderr }
  }
}

const installed = (await promtool('--version')) !== undefined
const skip = installed ? false : 'promtool is not installed (Debian: apt-get install prometheus)'

void t.test('promtool accepts the alert rules', { skip }, async (t) => {
  const checked = await promtool('check', 'rules', 'alerts.yaml')
  t.ok(checked?.ok, `promtool check rules: ${checked?.output ?? ''}`)
})

void t.test("the rules' unit tests pass (deploy/prometheus/alerts.test.yaml)", { skip }, async (t) => {
  const tested = await promtool('test', 'rules', 'alerts.test.yaml')
  t.ok(tested?.ok, `promtool test rules: ${tested?.output ?? ''}`)
})
