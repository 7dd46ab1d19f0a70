// Runs TypeScript sources directly (bench scripts, the schema generator) with the same ts-node loader tap uses.
import { register } from 'node:module'
import { pathToFileURL } from 'node:url'

process.env.TS_NODE_TRANSPILE_ONLY ??= '1'
register('@isaacs/ts-node-temp-fork-for-pr-2009/esm', pathToFileURL('./'))
