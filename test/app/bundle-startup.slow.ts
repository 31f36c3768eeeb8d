import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'

/**
 * What the bundle reads before the service is ready (scripts/bundle.ts): the entry, the service's
 * chunk and what they import statically. Code only some runs need (the OpenTelemetry SDK, undici's
 * fetch and WebSocket) stays out of it, and no Node built-in is imported as an ES module (on Node
 * 24, node:http's ES module facade loads Node's own undici: ~50 ms of start-up).
 */
const ENTRY = 'dist/server.js'

/** Relative chunk imports in a bundle file: static ones, and dynamic ones. */
function importsOf(code: string): { static: string[]; dynamic: string[] } {
  const found = (pattern: RegExp) => [...code.matchAll(pattern)].map((m) => m[1] ?? '')
  return {
    static: found(/(?:^|[;\s}])import\s*(?:[\w*{}\s,$]+from\s*)?["'](\.{1,2}\/[^"']+)["']/gm),
    dynamic: found(/\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g),
  }
}

/** The files read at start-up: the entry, the service chunk it imports, and their static imports. */
function startPath(entry: string): string[] {
  const seen = new Set<string>()
  const visit = (file: string, isEntry: boolean) => {
    if (seen.has(file)) return
    seen.add(file)
    const { static: fixed, dynamic } = importsOf(readFileSync(file, 'utf8'))
    const next = [...fixed, ...(isEntry ? dynamic : [])]
    for (const spec of next) visit(path.join(path.dirname(file), spec), false)
  }
  visit(entry, true)
  return [...seen]
}

function sourcesOf(file: string): string[] {
  const map = `${file}.map`
  if (!existsSync(map)) return []
  return (JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] }).sources
}

t.test(
  'the start-up path of the bundle leaves out what only some runs need',
  { skip: existsSync(ENTRY) ? false : `${ENTRY} is not built` },
  async (t) => {
    const files = startPath(ENTRY)
    t.ok(files.length >= 2, `the entry loads the service chunk (${files.join(', ')})`)
    const sources = files.flatMap(sourcesOf)
    t.ok(
      sources.some((s) => s.endsWith('src/app.ts')),
      'the service itself is on the start-up path',
    )
    t.notOk(
      sources.find((s) => s.includes('@opentelemetry/sdk-trace')),
      'no OpenTelemetry SDK: it is loaded when tracing is switched on',
    )
    t.notOk(
      sources.find((s) => s.includes('src/tracing/setup.ts')),
      'no tracing set-up: server.ts imports it when tracing is switched on',
    )
    t.notOk(
      sources.find((s) => /undici\/(index\.js|lib\/web\/websocket\/|lib\/mock\/)/.test(s)),
      "not undici's index, WebSocket or mocks: only the dispatcher parts the service uses",
    )
    for (const file of files) {
      const code = readFileSync(file, 'utf8')
      // The banner's createRequire import is the one allowed (node:module has no lazy getters).
      const builtins = [...code.matchAll(/from\s*["'](node:[\w/]+)["']/g)]
        .map((m) => m[1])
        .filter((name) => name !== 'node:module')
      t.same(builtins, [], `${file}: Node built-ins through require, not as ES modules`)
    }
  },
)
