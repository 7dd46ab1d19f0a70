// docs/configuration.md documents every key of the JSON Schema, with the schema's default, and nothing else.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { duration } from '../src/config/ConfigSchema.js'
import { JSON_SCHEMA_FILE } from '../src/config/JsonSchema.js'

const ROOT = join(import.meta.dirname, '..')

interface SchemaNode {
  type?: string
  properties?: Record<string, SchemaNode>
  items?: SchemaNode
  anyOf?: SchemaNode[]
  pattern?: string
  default?: unknown
}

/** Every key path of the schema (`shards[].primary.host`), with its node. */
function keyPaths(node: SchemaNode, prefix = ''): [string, SchemaNode][] {
  const out: [string, SchemaNode][] = prefix === '' ? [] : [[prefix, node]]
  if (node.properties) for (const [k, v] of Object.entries(node.properties)) out.push(...keyPaths(v, prefix === '' ? k : `${prefix}.${k}`))
  else if (node.items?.properties) for (const [k, v] of Object.entries(node.items.properties)) out.push(...keyPaths(v, `${prefix}[].${k}`))
  return out
}

/** The reference tables' rows: key → the Default cell, as written. */
function documentedKeys(markdown: string): Map<string, string> {
  const rows = new Map<string, string>()
  for (const line of markdown.split('\n')) {
    const m = /^\| `([^`]+)` \| .* \| (.*?) \| [^|]*\|$/.exec(line)
    if (!m) continue
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim())
    rows.set(m[1], cells[3])
  }
  return rows
}

const isDuration = (n: SchemaNode) => n.anyOf?.some((o) => o.pattern?.includes('ms|s|m|h')) ?? false
const durationOf = duration('a duration')

const schema = JSON.parse(readFileSync(join(ROOT, JSON_SCHEMA_FILE), 'utf8')) as SchemaNode
const doc = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8')

t.test('every schema key is documented with its default', async (t) => {
  const rows = documentedKeys(doc)
  const paths = keyPaths(schema)
  t.ok(paths.length > 80, `the schema has ${paths.length} keys`)
  for (const [path, node] of paths) {
    const cell = rows.get(path)
    if (!t.ok(cell !== undefined, `${path} is documented`) || cell === undefined) continue
    if (node.default === undefined || node.type === 'object') {
      t.equal(cell, '\u2014', `${path} has no default`)
      continue
    }
    const written = /^`(.*)`$/.exec(cell)?.[1]
    if (isDuration(node)) t.equal(durationOf.parse(/^\d+$/.test(written ?? '') ? Number(written) : written), node.default, `${path}: default ${cell}`)
    else if (Array.isArray(node.default)) t.equal(written, JSON.stringify(node.default), `${path}: default ${cell}`)
    else t.equal(written, String(node.default), `${path}: default ${cell}`)
  }
})

t.test('every documented key exists in the schema', async (t) => {
  const known = new Set(keyPaths(schema).map(([p]) => p))
  for (const key of documentedKeys(doc).keys()) t.ok(known.has(key), `${key} is a key of the schema`)
})

t.test('the check can fail: a missing key and a wrong default are caught', async (t) => {
  const rows = documentedKeys(doc.replace(/^\| `pool\.size` .*$/m, '').replace('| `listen.port` | integer | `6432` |', '| `listen.port` | integer | `5432` |'))
  t.notOk(rows.has('pool.size'))
  t.equal(rows.get('listen.port'), '`5432`')
})
