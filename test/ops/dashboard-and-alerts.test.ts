import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import { SEEDED_INTERVIEW_IDS } from '../../src/simulator/index.js'
import { build, partnerHeaders } from '../helpers/build.js'
import { exportedTypes, isExported, metricNames, variableMetricNames } from './promql.js'

const root = new URL('../../', import.meta.url)
const DASHBOARD_PATH = 'deploy/grafana/gateway-dashboard.json'
const ALERTS_PATH = 'deploy/prometheus/alerts.yaml'

interface Target {
  expr?: string
  datasource?: { type?: string; uid?: string }
}
interface Panel {
  type: string
  title?: string
  datasource?: { type?: string; uid?: string }
  targets?: Target[]
  panels?: Panel[]
}
interface Variable {
  type: string
  name: string
  query?: string | { query?: string }
  datasource?: { type?: string; uid?: string }
}
interface Dashboard {
  schemaVersion: number
  panels: Panel[]
  templating: { list: Variable[] }
}
interface Rule {
  alert?: string
  record?: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[]
}

const dashboard = JSON.parse(readFileSync(new URL(DASHBOARD_PATH, root), 'utf8')) as Dashboard
const rules = (parse(readFileSync(new URL(ALERTS_PATH, root), 'utf8')) as RuleFile).groups.flatMap(
  (group) => group.rules,
)
/** Every panel, rows' collapsed panels included, rows themselves left out. */
const panels = dashboard.panels.flatMap((panel) => (panel.type === 'row' ? (panel.panels ?? []) : [panel]))

/** Each PromQL expression of the dashboard and the rules, with where it comes from. */
function expressions(): { where: string; names: string[] }[] {
  const found: { where: string; names: string[] }[] = []
  for (const panel of panels) {
    for (const target of panel.targets ?? []) {
      found.push({ where: `panel "${panel.title ?? '?'}"`, names: metricNames(target.expr ?? '') })
    }
  }
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue
    const query = typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '')
    found.push({ where: `variable $${variable.name}`, names: variableMetricNames(query) })
  }
  for (const rule of rules)
    found.push({ where: `rule ${rule.alert ?? rule.record ?? '?'}`, names: metricNames(rule.expr) })
  return found
}

void t.test('the PromQL reader finds metric names, and only them', async (t) => {
  t.same(
    metricNames(
      'sum by (route) (rate(a_total{job=~"$job", x="y{z}"}[$__rate_interval] offset 1d)) / on (job) group_left (le) b_seconds_bucket > bool 0.5 and c',
    ),
    ['a_total', 'b_seconds_bucket', 'c'],
    'functions, grouping labels, matchers, ranges, offsets and keywords are not names',
  )
  t.same(
    variableMetricNames('label_values(m_state{job=~"$job"}, instance)'),
    ['m_state'],
    "a label_values variable reads its first argument's metric",
  )
  const types = exportedTypes('# TYPE h histogram\n# TYPE s summary\n# TYPE c counter\n')
  t.ok(isExported('h_bucket', types) && isExported('s_count', types), "a histogram's and a summary's series")
  t.notOk(isExported('s_bucket', types) || isExported('c_count', types), 'no such series for others')
})

void t.test(
  'the dashboard: recent schema, a Prometheus datasource variable, a query per panel',
  async (t) => {
    t.ok(dashboard.schemaVersion >= 39, `schemaVersion ${String(dashboard.schemaVersion)} is 39 or later`)
    const datasource = dashboard.templating.list.find((variable) => variable.type === 'datasource')
    t.equal(datasource?.query, 'prometheus', 'a datasource variable of Prometheus datasources')
    const chosen = `\${${datasource?.name ?? 'datasource'}}`
    t.ok(panels.length >= 10, `${String(panels.length)} panels`)
    for (const panel of panels) {
      const exprs = (panel.targets ?? []).map((target) => target.expr?.trim() ?? '')
      t.ok(
        exprs.length > 0 && exprs.every((expr) => expr !== ''),
        `panel "${panel.title ?? '?'}" has queries`,
      )
      const uids = [panel.datasource?.uid, ...(panel.targets ?? []).map((target) => target.datasource?.uid)]
      t.ok(
        uids.every((uid) => uid === chosen),
        `panel "${panel.title ?? '?'}" queries the chosen datasource (${uids.join(', ')})`,
      )
    }
    for (const variable of dashboard.templating.list.filter((variable) => variable.type === 'query')) {
      t.equal(variable.datasource?.uid, chosen, `variable $${variable.name} queries the chosen datasource`)
    }
  },
)

void t.test('the alert rules: for, severity, summary, description and a runbook paragraph', async (t) => {
  const readme = readFileSync(new URL('README.md', root), 'utf8')
  // GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens.
  const anchors = new Set(
    [...readme.matchAll(/^#{1,6} (.+)$/gm)].map((heading) =>
      (heading[1] ?? '')
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, '')
        .replace(/ /g, '-'),
    ),
  )
  t.ok(anchors.has('operating'), 'the README has an "Operating" section')
  const alerts = rules.filter((rule) => rule.alert !== undefined)
  for (const name of [
    'GatewayUpstreamBreakerOpen',
    'GatewayUpstreamErrorRatioHigh',
    'GatewayAnswerMemoryExhausted',
    'GatewayShedding',
    'GatewayLinkCacheHitRatioCollapsed',
    'GatewayAdminLoginFailing',
  ]) {
    t.ok(
      alerts.some((rule) => rule.alert === name),
      `an alert ${name}`,
    )
  }
  for (const rule of alerts) {
    const name = rule.alert ?? '?'
    t.match(rule.for ?? '', /^\d+[smh]$/, `${name} waits (for: ${rule.for ?? 'none'})`)
    t.ok(['critical', 'warning', 'info'].includes(rule.labels?.severity ?? ''), `${name} has a severity`)
    for (const key of ['summary', 'description', 'runbook']) {
      t.ok((rule.annotations?.[key] ?? '').trim() !== '', `${name} has a ${key}`)
    }
    const anchor = /^README\.md#(.+)$/.exec(rule.annotations?.runbook ?? '')?.[1] ?? ''
    t.ok(anchors.has(anchor), `${name}'s runbook (${rule.annotations?.runbook ?? ''}) is a README heading`)
  }
})

void t.test('every metric the dashboard and the rules name is exported by a running service', async (t) => {
  const { app } = await build(t)
  const headers = partnerHeaders()
  const asked = [
    // Images of the > 10 MB session: split, and bisected after Incode's 502.
    {
      url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.full}/images`,
      payload: {
        images: ['selfie', 'fullFrameFrontID', 'fullFrameBackID', 'document', 'croppedFace', 'signature'],
      },
      status: 200,
    },
    // Links twice: a miss, then a hit.
    {
      url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.full}/image-links`,
      payload: { images: ['selfie'] },
      status: 200,
    },
    {
      url: `/v1/sessions/${SEEDED_INTERVIEW_IDS.full}/image-links`,
      payload: { images: ['selfie'] },
      status: 200,
    },
    // A failing one: an interview Incode does not know.
    { url: '/v1/sessions/000000000000000000000000/images', payload: { images: ['selfie'] }, status: 404 },
  ]
  for (const { url, payload, status } of asked) {
    const res = await app.inject({ method: 'POST', url, headers, payload })
    t.equal(res.statusCode, status, `POST ${url} answers ${String(status)}`)
  }
  const res = await app.inject({ method: 'GET', url: '/metrics', headers })
  t.equal(res.statusCode, 200, '/metrics answers')
  const types = exportedTypes(res.body)
  let checked = 0
  for (const { where, names } of expressions()) {
    t.ok(names.length > 0, `${where} names a metric`)
    for (const name of names) {
      checked++
      t.ok(isExported(name, types), `${where}: ${name} is on /metrics`)
    }
  }
  t.ok(checked > 40, `${String(checked)} metric names checked`)
})
