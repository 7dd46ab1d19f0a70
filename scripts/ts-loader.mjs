// Runs TypeScript sources directly (bench scripts, the schema generator) with the same ts-node loader tap uses.
import { register } from 'node:module'
import { fileURLToPath } from 'node:url'

process.env.TS_NODE_TRANSPILE_ONLY ??= '1'
// ts-node caches the TypeScript compiler's V8 code in one directory under /tmp for every process: two processes
// started together (the ring test's children, bench targets) can write it at once, and a process that later
// reads the torn blob dies in V8's deserializer (SIGILL, seen once in the suite). These processes do without it.
process.env.DISABLE_V8_COMPILE_CACHE ??= '1'
// Resolved from the repository, not the working directory: bench children run in temp dirs.
process.env.TS_NODE_PROJECT ??= fileURLToPath(new URL('../tsconfig.json', import.meta.url))
register('@isaacs/ts-node-temp-fork-for-pr-2009/esm', import.meta.url)
