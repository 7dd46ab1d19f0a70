// Regenerates config/pgshard.schema.json from ConfigSchema; commit the result (test/config-schema.test.ts checks it).
// Run from the repository root:
//   node --no-warnings --loader @isaacs/ts-node-temp-fork-for-pr-2009/esm scripts/gen-schema.ts
import { writeFileSync } from 'node:fs'
import { configJsonSchemaText, JSON_SCHEMA_FILE } from '../src/config/JsonSchema.js'

writeFileSync(JSON_SCHEMA_FILE, configJsonSchemaText())
console.log(`wrote ${JSON_SCHEMA_FILE}`)
