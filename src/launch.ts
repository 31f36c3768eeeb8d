/**
 * The bundle's entry (`dist/server.js`, see scripts/bundle.ts): switches on Node's compile cache,
 * then loads the service. From Node 22.1 on, V8's compiled code for the bundle is kept on disk
 * (NODE_COMPILE_CACHE, else a folder in the system's temporary directory) and read back on the next
 * start instead of parsing the service's several megabytes of JavaScript again; on Node 20 there is
 * no such cache and this is a no-op. Only modules loaded after the call benefit, hence this file.
 */
import module from 'node:module'

interface CompileCache {
  enableCompileCache?: (directory?: string) => unknown
}

// A cache that cannot be written (read-only file system) is reported by the call, not thrown.
;(module as CompileCache).enableCompileCache?.()

await import('./server.js')
