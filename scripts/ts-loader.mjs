// Runs TypeScript sources directly (bench scripts, the schema generator) with the same ts-node loader tap uses.
import { register } from 'node:module'
import { fileURLToPath } from 'node:url'

process.env.TS_NODE_TRANSPILE_ONLY ??= '1'
// Resolved from the repository, not the working directory: bench children run in temp dirs.
process.env.TS_NODE_PROJECT ??= fileURLToPath(new URL('../tsconfig.json', import.meta.url))
register('@isaacs/ts-node-temp-fork-for-pr-2009/esm', import.meta.url)
