import t from 'tap'
import { runCommand } from './harness/runCommand.js'
import { startProxy } from './harness/startProxy.js'
const SHARDING = { tables: [{ name: 'pgbench_accounts', key: 'aid', type: 'integer' }, { name: 'pgbench_history', key: 'aid', type: 'integer' }], reference_tables: ['pgbench_branches', 'pgbench_tellers'], cross_shard_transactions: 'two_phase' }
const fx = await startProxy(t, { topology: { shards: 2 }, config: { sharding: SHARDING, pool: { size: 2, checkout_timeout: 3000 } } })
const env = { ...process.env, PGPASSWORD: fx.pgOptions.password }
const conn = ['-h', '127.0.0.1', '-p', String(fx.port), '-U', fx.pgOptions.user, 'app']
let r = await runCommand('pgbench', ['-i', '-s', '1', ...conn], { env, timeoutMs: 120_000 })
console.log('init', r.code, r.stderr.slice(-300))
r = await runCommand('pgbench', ['-c', '8', '-T', '8', ...conn], { env, timeoutMs: 120_000 })
console.log('run', r.code, r.stdout.slice(-600), r.stderr.slice(-1500))
t.pass()
