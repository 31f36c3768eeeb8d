/**
 * `npm run build`'s second step: bundles the service's entry (src/server.ts) and everything it
 * imports into one file, `dist/server.js`, replacing tsc's per-module output for that entry. Node
 * then reads and links one module instead of several hundred, which was most of the start-up
 * time. Everything else in dist/ (the simulator, the modules the benchmarks load) stays as tsc
 * wrote it.
 */
import { rmSync } from 'node:fs'
import path from 'node:path'
import { build, type Plugin } from 'esbuild'

/**
 * Node's built-in modules imported with `import` are loaded through `require` instead. An ESM
 * import of a built-in makes Node build its ES module facade, which reads every export, lazy
 * getters included: on Node 24 reading `node:http`'s loads Node's own copy of undici (for
 * `http.WebSocket`), about 50 ms of a start-up whose target is 300 ms. `require` reads nothing.
 */
const builtinsThroughRequire: Plugin = {
  name: 'builtins-through-require',
  setup(build) {
    build.onResolve({ filter: /^node:/ }, (args) =>
      args.kind === 'import-statement' || args.kind === 'dynamic-import'
        ? { path: args.path, namespace: 'builtin-require' }
        : undefined,
    )
    build.onLoad({ filter: /.*/, namespace: 'builtin-require' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)})`,
      loader: 'js',
    }))
  },
}

/**
 * The parts of undici the service uses, without the rest of undici's index (fetch, WebSocket,
 * EventSource, the cache stores, the mock agents): building all of that was the largest single
 * cost of loading the bundle (about 50 ms). The index's own set-up that these parts need (the
 * request API on every dispatcher) is repeated here. An import of any other undici export fails
 * the build ("No matching export"), so a new use is added here rather than silently undefined.
 */
const UNDICI_PARTS = `
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js'
import api from 'undici/lib/api/index.js'
import Client from 'undici/lib/dispatcher/client.js'
import Pool from 'undici/lib/dispatcher/pool.js'
import retry from 'undici/lib/interceptor/retry.js'
Object.assign(Dispatcher.prototype, api)
export const interceptors = { retry }
export { Client, Dispatcher, Pool }
`

const undiciParts: Plugin = {
  name: 'undici-parts',
  setup(build) {
    // Only the service's own imports: undici's files and other packages keep theirs.
    build.onResolve({ filter: /^undici$/ }, (args) =>
      args.importer.includes('/node_modules/') ? undefined : { path: 'undici', namespace: 'undici-parts' },
    )
    build.onLoad({ filter: /.*/, namespace: 'undici-parts' }, () => ({
      contents: UNDICI_PARTS,
      loader: 'js',
      resolveDir: process.cwd(),
    }))
  },
}

/**
 * `--untraced DIR` (the bench's `tracing` scenario): the same bundle written to DIR, with the
 * service's span helpers (src/tracing/spans.ts) replaced by bench/lib/untracedSpans.ts, which runs
 * each callback with an inert span and never touches the OpenTelemetry API: the service as it was
 * before tracing, to set beside "tracing off" in one run.
 */
const untracedAt = process.argv.indexOf('--untraced')
const untracedDir = untracedAt === -1 ? undefined : process.argv[untracedAt + 1]
if (untracedAt !== -1 && !untracedDir) throw new Error('bundle: --untraced needs a directory')
const outdir = untracedDir ?? 'dist'

const untracedSpans: Plugin = {
  name: 'untraced-spans',
  setup(build) {
    build.onResolve({ filter: /\/tracing\/spans\.js$/ }, (args) =>
      args.importer.includes('/node_modules/')
        ? undefined
        : { path: path.resolve('bench/lib/untracedSpans.ts') },
    )
  },
}

// Chunk names carry a hash of their content: the last build's chunks would otherwise pile up.
rmSync(`${outdir}/chunks`, { recursive: true, force: true })

await build({
  // dist/server.js is src/launch.ts (the compile cache), which imports the service (its own chunk).
  entryPoints: [{ in: 'src/launch.ts', out: 'server' }],
  outdir,
  // Code loaded by a dynamic import() gets its own chunk, read only when that import runs: the
  // OpenTelemetry SDK (only with tracing on, see server.ts) is not parsed at every start.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  legalComments: 'linked',
  // Everything is bundled; Swagger UI's static files are still read from its package folder
  // (src/plugins/external/swagger.ts finds them), so node_modules stays part of the install.
  // Bundled CommonJS packages call require(); give the ESM bundle one.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
  },
  plugins: [builtinsThroughRequire, undiciParts, ...(untracedDir ? [untracedSpans] : [])],
  logLevel: 'warning',
  // Less text for V8 to parse at start-up; names are kept, so stack traces stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
})
