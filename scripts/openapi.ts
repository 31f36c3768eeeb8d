/**
 * `npm run openapi`: writes openapi/openapi.json from the running routes (never by hand).
 * `--check` exits 1 when the committed file differs.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'

export const OPENAPI_FILE = new URL('../openapi/openapi.json', import.meta.url)

/** The document for the default settings; the upstream address is never contacted. */
export async function generateOpenApi(): Promise<string> {
  const config = loadConfig({
    INCODE_BASE_URL: 'http://127.0.0.1:4010',
    INCODE_API_KEY: 'unused',
    LOG_LEVEL: 'silent',
  })
  const app = await buildApp(config)
  try {
    await app.ready()
    return `${JSON.stringify(app.swagger(), null, 2)}\n`
  } finally {
    await app.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const doc = await generateOpenApi()
  if (process.argv.includes('--check')) {
    const committed = await readFile(OPENAPI_FILE, 'utf8').catch(() => '')
    if (committed !== doc) {
      process.stderr.write('openapi/openapi.json is out of date: run npm run openapi\n')
      process.exit(1)
    }
  } else {
    await writeFile(OPENAPI_FILE, doc)
    process.stdout.write(`wrote ${OPENAPI_FILE.pathname}\n`)
  }
}
