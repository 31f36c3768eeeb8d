/**
 * `npm test`: the fast suite (test/**\/*.test.ts), bundled by esbuild before tap runs it.
 *
 * Each test file runs in its own process, and on Node 20 tap's own loader hooks (process info,
 * mocks) and tsx's run off-thread: every module a test loads (~1,000 files of src and
 * node_modules) crossed to the hooks' thread and back, which cost more CPU than most tests
 * themselves (about 1.5 s per file). Bundled, a test file is a few modules read at once. The
 * bundles go to .tap/build/ (git-ignored) with source maps, so failures point at the TypeScript
 * lines; `import.meta.url` and `import.meta.dirname` keep naming each source file, so paths
 * relative to a test still resolve. Other arguments are passed to tap (`npm test -- --bail`).
 *
 * `npx tap test/some/file.test.ts` still runs one file from source, through tsx (package.json).
 */
import { spawn } from 'node:child_process'
import { readdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { build, type Plugin } from 'esbuild'

const OUT = '.tap/build'

/** Each source file keeps its own import.meta.url and import.meta.dirname, not the bundle's. */
const ownImportMeta: Plugin = {
  name: 'own-import-meta',
  setup(build) {
    build.onLoad({ filter: /\.[cm]?ts$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8')
      if (!source.includes('import.meta.')) return undefined
      const contents = source
        .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href))
        .replaceAll('import.meta.dirname', JSON.stringify(path.dirname(args.path)))
        .replaceAll('import.meta.filename', JSON.stringify(args.path))
      return { contents, loader: 'ts' }
    })
  },
}

// Test files named on the command line run alone (`npm test -- test/app/openapi.test.ts`).
const isTestFile = (arg: string) => arg.endsWith('.test.ts')
const named = process.argv.slice(2).filter(isTestFile)
const tapArgs = process.argv.slice(2).filter((arg) => !isTestFile(arg))
const files =
  named.length > 0
    ? named
    : (await readdir('test', { recursive: true }))
        .filter(isTestFile)
        .map((name) => path.join('test', name))
        .sort()
await rm(OUT, { recursive: true, force: true })
const started = performance.now()
await build({
  entryPoints: files,
  outdir: OUT,
  outbase: '.',
  bundle: true,
  // Shared code (the app, Fastify, undici) is written once and loaded by each test that needs it.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  // tap itself is the runner's: its plugins and loader hooks are set up around each test process.
  // Tools some tests run read their own files beside their code (__filename, lib/*.d.ts).
  external: [
    'tap',
    '@tapjs/*',
    'typescript',
    'openapi-typescript',
    '@redocly/*',
    'esbuild',
    'playwright-core',
  ],
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
  },
  plugins: [ownImportMeta],
  logLevel: 'warning',
})

process.stderr.write(`bundled in ${Math.round(performance.now() - started)} ms\n`)
const bundles = files.map((file) => path.join(OUT, file.replace(/\.ts$/, '.js')))
// tap's own node-arg (tsx's loader, in package.json) is for running sources: the bundles need none.
const child = spawn('npx', ['tap', ...tapArgs, ...bundles], {
  stdio: 'inherit',
  env: { ...process.env, TAP_NODE_ARG: '--no-warnings=ExperimentalWarning' },
})
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
