#!/usr/bin/env node
// The pgshard command: runs the compiled TypeScript in dist/ (built by `npm start`, `npm test` or `npm run build`).
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js')
if (!existsSync(main)) {
  process.stderr.write('pgshard is not built yet: run `npm run build` (or `npm start`, which builds and runs the demo).\n')
  process.exit(2)
}
const { run } = await import(main)
process.exitCode = await run(process.argv.slice(2))
