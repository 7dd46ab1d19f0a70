// Metric names written outside the code are real: every metric the Grafana dashboard queries is one a running
// pgshard exports, and docs/operations.md documents every metric it exports (type and labels) and every
// admin console command.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ADMIN_COMMANDS } from '../src/admin/AdminCommands.js'
import { parseConfig } from '../src/config/ConfigLoader.js'
import { createLogger } from '../src/log/Logger.js'
import { ProxyApp } from '../src/proxy/ProxyApp.js'

const ROOT = join(import.meta.dirname, '..')

// A proxy in front of a port nothing listens on: it starts, exports every metric, and its checks fail quietly.
const app = await ProxyApp.start(
  parseConfig(
    JSON.stringify({
      listen: { port: 0 },
      users: [{ name: 'app', password: 'x' }],
      databases: [{ name: 'app' }],
      shards: [{ name: 's0', primary: { host: '127.0.0.1', port: 1 } }],
    }),
  ),
  { log: createLogger({ level: 'silent' }) },
)
t.teardown(() => app.stop(100))

const exported = new Map<string, { type: string; labels: string[] }>()
for (const m of await app.registry.getMetricsAsJSON()) {
  const labels = (app.registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] }).labelNames ?? []
  exported.set(m.name, { type: String(m.type), labels })
}
/** Every series name Prometheus will see: histograms and summaries add their suffixes. */
const seriesNames = new Set<string>()
for (const [name, { type }] of exported) {
  seriesNames.add(name)
  if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) seriesNames.add(name + s)
  if (type === 'summary') for (const s of ['_sum', '_count']) seriesNames.add(name + s)
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan'])

/** The metric names a PromQL expression selects (label matchers, ranges, grouping labels and functions left out). */
function metricNames(expr: string): string[] {
  const templated = /^label_values\(\s*([a-zA-Z_:][\w:]*)\s*,/.exec(expr)
  if (templated) return [templated[1]]
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
  return [...bare.matchAll(/([a-zA-Z_:][\w:]*)(\s*\()?/g)].filter((m) => !m[2] && !KEYWORDS.has(m[1].toLowerCase())).map((m) => m[1])
}

interface Panel {
  title: string
  type: string
  targets?: { expr: string }[]
  panels?: Panel[]
}

const dashboard = JSON.parse(readFileSync(join(ROOT, 'config/grafana-dashboard.json'), 'utf8')) as {
  panels: Panel[]
  templating: { list: { query?: unknown; definition?: string }[] }
  annotations: { list: { expr?: string }[] }
}

t.test('the metric-name extractor', async (t) => {
  t.same(metricNames('sum by (shard, role) (rate(pgshard_queries_total{instance=~"$i",outcome="error"}[$__rate_interval]))'), ['pgshard_queries_total'])
  t.same(metricNames('histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) / on(instance) group_left y'), ['x_bucket', 'y'])
  t.same(metricNames('count(up == 0) or vector(0)'), ['up'])
  t.same(metricNames('label_values(pgshard_config_info, instance)'), ['pgshard_config_info'])
  t.notOk(seriesNames.has('pgshard_no_such_metric_total'), 'a name pgshard does not export is caught')
})

t.test('every metric the dashboard queries is exported by pgshard', async (t) => {
  const exprs = [
    ...dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).flatMap((p) => (p.targets ?? []).map((x) => ({ where: `panel "${p.title}"`, expr: x.expr }))),
    ...dashboard.templating.list.flatMap((v) => (v.definition ? [{ where: 'a variable', expr: v.definition }] : [])),
    ...dashboard.annotations.list.flatMap((a) => (a.expr ? [{ where: 'an annotation', expr: a.expr }] : [])),
  ]
  t.ok(exprs.length > 30, `${exprs.length} queries`)
  const used = new Set<string>()
  for (const { where, expr } of exprs) {
    const names = metricNames(expr)
    t.ok(names.length > 0, `${where} queries a metric`)
    for (const n of names) {
      used.add(n)
      t.ok(seriesNames.has(n), `${where}: ${n} is exported`)
    }
  }
  for (const topic of [
    'pgshard_queries_total',
    'pgshard_query_duration_seconds_bucket',
    'pgshard_pool_waiting_clients',
    'pgshard_node_up',
    'pgshard_replica_lag_seconds',
    'pgshard_errors_total',
    'pgshard_routing_decisions_total',
    'pgshard_parse_cache_total',
  ])
    t.ok(used.has(topic), `the dashboard shows ${topic}`)
  t.ok(dashboard.panels.every((p) => p.type === 'row' || (p.targets?.length ?? 0) > 0), 'every panel has a query')
})

t.test('docs/operations.md documents every exported metric with its type and labels, and every console command', async (t) => {
  const doc = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8')
  const rows = new Map<string, { type: string; labels: string[] }>()
  for (const line of doc.split('\n')) {
    const m = /^\| `(pgshard_\w+)` \| (\w+) \| ([^|]*) \|/.exec(line)
    if (m) rows.set(m[1], { type: m[2], labels: m[3].trim() === '\u2014' ? [] : [...m[3].matchAll(/`(\w+)`/g)].map((l) => l[1]) })
  }
  const ours = [...exported].filter(([name]) => name.startsWith('pgshard_'))
  t.ok(ours.length >= 30, `${ours.length} pgshard metrics`)
  for (const [name, { type, labels }] of ours) {
    const row = rows.get(name)
    if (!t.ok(row, `${name} is documented`) || !row) continue
    t.equal(row.type, type, `${name} is a ${type}`)
    t.same([...row.labels].sort(), [...labels].sort(), `${name} labels`)
  }
  for (const name of rows.keys()) t.ok(exported.has(name), `documented ${name} is exported`)
  const headings = doc.split('\n').filter((l) => l.startsWith('### '))
  for (const c of ADMIN_COMMANDS) t.ok(headings.some((h) => h.includes(`\`${c.usage}\``)), `console command ${c.usage} has a section`)
})
