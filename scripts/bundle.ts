/**
 * `npm run build`'s second step: bundles the service's entry (src/server.ts) and everything it
 * imports into one file, `dist/server.js`, replacing tsc's per-module output for that entry. Node
 * then reads and links one module instead of several hundred, which was most of the start-up
 * time. Everything else in dist/ (the simulator, the modules the benchmarks load) stays as tsc
 * wrote it.
 */
import { build } from 'esbuild'

await build({
  entryPoints: ['src/server.ts'],
  outfile: 'dist/server.js',
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
  logLevel: 'warning',
  // Less text for V8 to parse at start-up; names are kept, so stack traces stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
})
