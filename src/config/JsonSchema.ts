import { z } from 'zod'
import { ConfigSchema } from './ConfigSchema.js'

/** The committed file `config/pgshard.schema.json`; a test fails when it drifts from ConfigSchema. */
export const JSON_SCHEMA_FILE = 'config/pgshard.schema.json'

/**
 * The JSON Schema of the config file as a DBA writes it (the input side: durations as "30s", defaults optional),
 * for editors and CI. Its `$id` follows the file's `version`.
 */
export function configJsonSchema(): Record<string, unknown> {
  const { $schema, ...rest } = z.toJSONSchema(ConfigSchema, { io: 'input', override: addMissingDefault })
  return {
    $schema,
    $id: 'urn:pgshard:config:1',
    title: 'pgshard configuration',
    description: 'The pgshard proxy configuration and shard map (YAML). Strings may hold ${ENV_VAR} or ${ENV_VAR:-default}.',
    ...rest,
  }
}

/** The schema exactly as committed: two-space JSON with a final newline. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`
}

/**
 * zod leaves out the default of a field whose schema transforms (every duration), since the default is given on
 * the output side. Duration defaults are milliseconds, which the input side accepts too, so editors can show them.
 */
function addMissingDefault(ctx: { zodSchema: unknown; jsonSchema: { default?: unknown } }): void {
  if (ctx.zodSchema instanceof z.ZodDefault && ctx.jsonSchema.default === undefined) {
    ctx.jsonSchema.default = ctx.zodSchema.def.defaultValue
  }
}
