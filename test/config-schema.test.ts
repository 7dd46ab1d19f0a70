import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isMap, isScalar, isSeq, parse, parseDocument, type Node } from 'yaml'
import { parseConfig } from '../src/config/ConfigLoader.js'
import { duration } from '../src/config/ConfigSchema.js'
import { configJsonSchema, configJsonSchemaText, JSON_SCHEMA_FILE } from '../src/config/JsonSchema.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const committed = JSON.parse(readFileSync(join(ROOT, JSON_SCHEMA_FILE), 'utf8')) as JsonSchema

/** The parts of JSON Schema that config/pgshard.schema.json uses. */
interface JsonSchema {
  $id?: string
  type?: string
  properties?: Record<string, JsonSchema>
  required?: string[]
  additionalProperties?: boolean
  items?: JsonSchema
  anyOf?: JsonSchema[]
  enum?: unknown[]
  const?: unknown
  minimum?: number
  maximum?: number
  minLength?: number
  maxLength?: number
  minItems?: number
  pattern?: string
  default?: unknown
}

/** A small structural validator: enough to prove a YAML file matches what editors and CI will check. */
function violations(schema: JsonSchema, value: unknown, path = '$'): string[] {
  if (schema.anyOf) {
    return schema.anyOf.some((option) => violations(option, value, path).length === 0) ? [] : [`${path}: matches no anyOf option`]
  }
  if (schema.const !== undefined && value !== schema.const) return [`${path}: not ${JSON.stringify(schema.const)}`]
  if (schema.enum && !schema.enum.includes(value)) return [`${path}: not one of ${schema.enum.join(', ')}`]
  switch (schema.type) {
    case 'object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return [`${path}: not an object`]
      const record = value as Record<string, unknown>
      const properties = schema.properties ?? {}
      return [
        ...(schema.required ?? []).filter((k) => !(k in record)).map((k) => `${path}.${k}: required`),
        ...Object.entries(record).flatMap(([k, v]) =>
          k in properties
            ? violations(properties[k], v, `${path}.${k}`)
            : schema.additionalProperties === false
              ? [`${path}.${k}: not allowed`]
              : [],
        ),
      ]
    }
    case 'array':
      if (!Array.isArray(value)) return [`${path}: not an array`]
      return [
        ...(value.length < (schema.minItems ?? 0) ? [`${path}: fewer than ${schema.minItems} items`] : []),
        ...value.flatMap((item, i) => (schema.items ? violations(schema.items, item, `${path}[${i}]`) : [])),
      ]
    case 'string':
      if (typeof value !== 'string') return [`${path}: not a string`]
      if (value.length < (schema.minLength ?? 0) || value.length > (schema.maxLength ?? Infinity)) return [`${path}: bad length`]
      return schema.pattern && !new RegExp(schema.pattern).test(value) ? [`${path}: does not match ${schema.pattern}`] : []
    case 'integer':
    case 'number':
      if (typeof value !== 'number' || (schema.type === 'integer' && !Number.isInteger(value))) return [`${path}: not an ${schema.type}`]
      return value < (schema.minimum ?? -Infinity) || value > (schema.maximum ?? Infinity) ? [`${path}: out of range`] : []
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${path}: not a boolean`]
    default:
      return []
  }
}

/** Every pgshard config in config/ (a YAML file with a `shards` list); other YAML there is someone else's. */
function exampleConfigs(dir = join(ROOT, 'config')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = join(dir, entry.name)
    if (entry.isDirectory()) return exampleConfigs(file)
    if (!/\.ya?ml$/.test(entry.name)) return []
    const value: unknown = parse(readFileSync(file, 'utf8'))
    return value !== null && typeof value === 'object' && 'shards' in value ? [file] : []
  })
}

/** Any variable a file names is set, so that only the file's structure is under test. */
const ANY_ENV: NodeJS.ProcessEnv = new Proxy({}, { get: (_, name) => (typeof name === 'string' ? `value-of-${name}` : undefined) })

t.test('the committed JSON Schema is what ConfigSchema generates now', async (t) => {
  t.equal(
    readFileSync(join(ROOT, JSON_SCHEMA_FILE), 'utf8'),
    configJsonSchemaText(),
    'regenerate it: node --no-warnings --loader @isaacs/ts-node-temp-fork-for-pr-2009/esm scripts/gen-schema.ts',
  )
  t.equal(committed.$id, 'urn:pgshard:config:1')
  t.same(committed.required, ['users', 'databases', 'shards'])
  t.equal(committed.properties?.pool.properties?.checkout_timeout.default, 5000, 'duration defaults are published')
  t.same(configJsonSchema(), committed)
})

t.test('every example config validates with parseConfig and against the JSON Schema', async (t) => {
  const files = exampleConfigs().map((f) => relative(ROOT, f))
  for (const expected of ['config/pgshard.example.yaml', 'config/examples/four-shards.yaml', 'config/examples/five-shards.yaml']) {
    t.ok(files.includes(expected), `${expected} is checked`)
  }
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    t.doesNotThrow(() => parseConfig(text, file, ANY_ENV), `${file} passes parseConfig`)
    t.same(violations(committed, parse(text)), [], `${file} matches the JSON Schema`)
  }
  const four = parseConfig(readFileSync(join(ROOT, 'config/examples/four-shards.yaml'), 'utf8'), undefined, {})
  const five = parseConfig(readFileSync(join(ROOT, 'config/examples/five-shards.yaml'), 'utf8'), undefined, {})
  t.same(four.shards.map((s) => s.name), ['shard1', 'shard2', 'shard3', 'shard4'])
  t.same(five.shards.map((s) => s.name), ['shard1', 'shard2', 'shard3', 'shard4', 'shard5'])
  t.same(five.shards.slice(0, 4), four.shards, 'the first four shards are unchanged')
  t.same(five.sharding, four.sharding, 'same tables and ring')
  t.same(
    four.sharding.tables.map((x) => [x.name, x.key, x.type]),
    [['accounts', 'id', 'bigint'], ['events', 'tenant', 'text'], ['sessions', 'id', 'uuid']],
  )
  t.same(four.sharding.reference_tables, ['countries'])
})

t.test('the structural check catches what editors should flag', async (t) => {
  const example = parse(readFileSync(join(ROOT, 'config/pgshard.example.yaml'), 'utf8')) as Record<string, any>
  const broken = structuredClone(example)
  broken.shards[1].primary.port = '5432'
  broken.pool.checkout_timeout = 'soon'
  broken.routing.read_from = 'nearest'
  broken.listen.hots = 'x'
  delete broken.databases
  t.same(violations(committed, broken).sort(), [
    '$.databases: required',
    '$.listen.hots: not allowed',
    '$.pool.checkout_timeout: matches no anyOf option',
    '$.routing.read_from: not one of replica, primary',
    '$.shards[1].primary.port: not an integer',
  ])
})

/** Key paths of the schema (`users[].password`), with the schema of each. */
function schemaKeys(schema: JsonSchema, prefix = ''): [string, JsonSchema][] {
  const own = prefix === '' ? [] : ([[prefix, schema]] as [string, JsonSchema][])
  if (schema.properties) {
    return [
      ...own,
      ...Object.entries(schema.properties).flatMap(([k, s]) => schemaKeys(s, prefix === '' ? k : `${prefix}.${k}`)),
    ]
  }
  if (schema.items) return [...own, ...schemaKeys(schema.items, `${prefix}[]`).filter(([p]) => p !== `${prefix}[]`)]
  return own
}

/**
 * The comments written for each key path of a YAML file. A comment above the first key of a mapping belongs to
 * the mapping (or the list holding it) in yaml's tree, so it is credited to that first key.
 */
function keyComments(node: unknown, prefix = '', inherited = '', out = new Map<string, string[]>()): Map<string, string[]> {
  if (isMap(node)) {
    node.items.forEach((pair, i) => {
      if (!isScalar(pair.key)) return
      const path = prefix === '' ? String(pair.key.value) : `${prefix}.${String(pair.key.value)}`
      const own = [i === 0 ? inherited + (node.commentBefore ?? '') : '', pair.key.commentBefore ?? '']
      const value = pair.value as Node | null
      out.set(path, [...(out.get(path) ?? []), own.join('\n') + (value?.comment ?? '')])
      keyComments(value, path, '', out)
    })
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => keyComments(item, `${prefix}[]`, i === 0 ? (node.commentBefore ?? '') : '', out))
  }
  return out
}

t.test('pgshard.example.yaml shows every key, each with a comment, and states the defaults', async (t) => {
  const doc = parseDocument(readFileSync(join(ROOT, 'config/pgshard.example.yaml'), 'utf8'))
  const comments = keyComments(doc.contents)
  const durationOf = duration('a duration')
  for (const [path, schema] of schemaKeys(committed)) {
    const written = comments.get(path)
    if (!t.ok(written, `${path} appears in the example`) || !written) continue
    t.ok(written.some((c) => c.trim() !== ''), `${path} has a comment`)
    if (schema.default === undefined || schema.type === 'object') continue
    const stated = written.map((c) => /Default: (\S+(?: \(\[\]\))?)/.exec(c)?.[1]?.replace(/[.,]$/, '')).find(Boolean)
    if (Array.isArray(schema.default)) t.equal(stated, 'none ([])', `${path} states its default`)
    else if (schema.anyOf?.some((option) => option.pattern)) t.equal(durationOf.parse(/^\d+$/.test(stated ?? '') ? Number(stated) : stated), schema.default, `${path} states its default`)
    else if (typeof schema.default === 'string' && schema.default.includes(' ')) t.ok(written.some((c) => c.includes(`Default: ${schema.default}`)), `${path} states its default`)
    else t.equal(stated, String(schema.default), `${path} states its default`)
  }
})
