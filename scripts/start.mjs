// `npm start`: runs the built service (dist/server.js), or says how to build it when it is missing,
// instead of Node's "Cannot find module" stack trace. Plain JavaScript: it runs where only the
// production dependencies are installed.
import { existsSync } from 'node:fs'
import process from 'node:process'
import { URL } from 'node:url'

const entry = new URL('../dist/server.js', import.meta.url)

if (!existsSync(entry)) {
  process.stderr.write(
    'dist/server.js is missing: run `npm run build` first, then `npm start`\n' +
      '(or `npm run dev` to run the service from source, `npm run demo` to try it with the Incode simulator).\n',
  )
  process.exit(1)
}

await import(entry.href)
