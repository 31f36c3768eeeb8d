import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

/**
 * The second runtime: Node 24 (the Docker image's), fetched through the registry's `node` package
 * (`npx -y node@24`), so that one run measures the service under both. Undefined when it cannot be
 * had (no network, no npx): the run then measures Node 20 only and says so.
 */
export interface Runtime {
  label: string
  node: string
  version: string
}

export async function node24(log: (line: string) => void): Promise<Runtime | undefined> {
  try {
    const { stdout } = await promisify(execFile)(
      'npx',
      ['-y', 'node@24', '-p', 'process.execPath + " " + process.version'],
      { timeout: 300_000, encoding: 'utf8' },
    )
    const [node, version] = stdout.trim().split(' ')
    if (!node || !version?.startsWith('v24.')) throw new Error(`unexpected answer ${stdout.trim()}`)
    return { label: 'Node 24', node, version }
  } catch (err) {
    log(`Node 24 is not available (${err instanceof Error ? err.message : String(err)}); Node 20 only`)
    return undefined
  }
}
