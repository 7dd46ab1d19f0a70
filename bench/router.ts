// The router's micro-benchmarks alone (`npm run bench -- --parts router` runs them too, inside the full bench):
// node --no-warnings --import ./scripts/ts-loader.mjs bench/router.ts
import { routerTable, runRouterBench } from './RouterBench.js'

process.stdout.write(`${routerTable(await runRouterBench())}\n`)
