import os from 'node:os'
import type { Row, ScenarioResult } from '../scenarios/index.js'

export interface Machine {
  cpuModel: string
  cpus: number
  memoryGiB: number
  os: string
  node: string
  nginx: string
  autocannon: string
  wrk: string
  node24: string | undefined
  loadAverageAtStart: number[]
}

export function machine(nginx: string, autocannon: string, wrk: string, node24: string | undefined): Machine {
  const cpus = os.cpus()
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    nginx: nginx.replace(/^nginx version:\s*(nginx\/)?/, ''),
    autocannon,
    wrk,
    node24,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  }
}

const escape = (text: string) => text.replace(/\|/g, '\\|')

export function resultsTable(rows: Row[]): string[] {
  return [
    '| scenario | measure | this service | comparison | ratio | target | result |',
    '|---|---|---:|---|---:|---|---|',
    ...rows.map(
      (r) =>
        `| ${escape(r.scenario)} | ${escape(r.measure)} | ${escape(r.service)} | ${escape(r.comparison)} | ${escape(r.ratio)} | ${escape(r.target)} | ${r.pass ? 'PASS' : '**MISS**'} |`,
    ),
  ]
}

export function errorRows(name: string, message: string): Row {
  return {
    scenario: name,
    measure: 'could not be measured',
    service: 'error',
    comparison: message.split('\n')[0]?.slice(0, 160) ?? '',
    ratio: '—',
    target: '—',
    pass: false,
  }
}

export function machineLine(m: Machine): string {
  const load = os.loadavg().map((x) => Math.round(x * 100) / 100)
  return `${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}${m.node24 ? ` and ${m.node24}` : ''}, nginx ${m.nginx}, wrk ${m.wrk}, autocannon ${m.autocannon}; load average (1/5/15 min) ${m.loadAverageAtStart.join(' / ')} at the start, ${load.join(' / ')} at the end`
}

/** The whole markdown report: the table, the growth tables, the conditions. */
export function markdownReport(
  results: Array<{ key: string; result: ScenarioResult }>,
  extraRows: Row[],
  conditions: string[],
): string[] {
  const rows = [...results.flatMap((r) => r.result.rows), ...extraRows]
  const tables = results.flatMap((r) => r.result.tables ?? [])
  return [...resultsTable(rows), '', ...tables, ...(tables.length > 0 ? [''] : []), ...conditions]
}
