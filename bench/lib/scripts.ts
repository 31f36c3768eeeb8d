import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import ts from 'typescript'

/**
 * The bench's own child processes (contenders, load clients) are TypeScript; they are compiled
 * once per run into the run's temp dir and started with plain `node`, like the service's
 * `dist/server.js`, so that no TypeScript loader sits in a measured process (a loader thread
 * would add tens of MB to the RSS of the buffer-everything variant). A `node_modules` symlink
 * lets their package imports resolve to the repository's.
 */
export const CHILD_SCRIPTS = [
  'contenders/passThrough.ts',
  'contenders/bufferAll.ts',
  'contenders/bare.ts',
  'contenders/barePlugins.ts',
  'contenders/chunkPipe.ts',
  'contenders/upstreamSettings.ts',
  'contenders/serve.ts',
  'clients/loop.ts',
] as const
export type ChildScript = (typeof CHILD_SCRIPTS)[number]

export function compileChildScripts(
  benchDir: string,
  repoDir: string,
  outDir: string,
): Map<ChildScript, string> {
  mkdirSync(outDir, { recursive: true })
  writeFileSync(path.join(outDir, 'package.json'), '{"type":"module"}\n')
  symlinkSync(path.join(repoDir, 'node_modules'), path.join(outDir, 'node_modules'), 'dir')
  const compiled = new Map<ChildScript, string>()
  for (const script of CHILD_SCRIPTS) {
    const source = readFileSync(path.join(benchDir, script), 'utf8')
    const out = ts.transpileModule(source, {
      fileName: script,
      reportDiagnostics: true,
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
        sourceMap: false,
      },
    })
    const errors = (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error)
    if (errors.length > 0) {
      throw new Error(
        `cannot compile bench/${script}: ${errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('; ')}`,
      )
    }
    const target = path.join(outDir, script.replace(/\.ts$/, '.js'))
    mkdirSync(path.dirname(target), { recursive: true })
    writeFileSync(target, out.outputText)
    compiled.set(script, target)
  }
  return compiled
}
