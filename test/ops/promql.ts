/**
 * Just enough PromQL reading for the ops tests: the metric names an expression selects (not its
 * functions, label names, label values, durations or Grafana variables).
 */

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
])

/** The metric names `expr` selects, each once, in order of appearance. */
export function metricNames(expr: string): string[] {
  const bare = expr
    // Grafana's interval variables stand for durations; other variables only for label values.
    .replace(/\$__\w+/g, '5m')
    .replace(/\$\{[^}]*\}|\$\w+/g, 'x')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?\w+/g, ' ')
  const names: string[] = []
  for (const match of bare.matchAll(/(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()/g)) {
    const name = match[1] ?? ''
    if (!KEYWORDS.has(name.toLowerCase()) && !names.includes(name)) names.push(name)
  }
  return names
}

/** The metric a Grafana variable query reads: `label_values(metric{…}, label)`; none for other forms. */
export function variableMetricNames(query: string): string[] {
  const args = /^\s*label_values\((.*),\s*\w+\s*\)\s*$/.exec(query)?.[1]
  return args === undefined ? [] : metricNames(args)
}

/** Metric types from a Prometheus exposition text's `# TYPE` lines. */
export function exportedTypes(exposition: string): Map<string, string> {
  const types = new Map<string, string>()
  for (const match of exposition.matchAll(/^# TYPE (\S+) (\w+)$/gm)) types.set(match[1] ?? '', match[2] ?? '')
  return types
}

/**
 * Whether `name` is exported: a metric of its own, or a histogram's `_bucket`, `_sum` or `_count`
 * series (a summary's `_sum` or `_count`).
 */
export function isExported(name: string, types: Map<string, string>): boolean {
  if (types.has(name)) return true
  const series = /^(.+)_(bucket|sum|count)$/.exec(name)
  if (!series) return false
  const type = types.get(series[1] ?? '')
  return type === 'histogram' || (type === 'summary' && series[2] !== 'bucket')
}
