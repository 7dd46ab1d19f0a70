import { readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { stringify } from 'yaml'
import { parseConfig } from '../config/ConfigLoader.js'
import { ProxyApp } from '../proxy/ProxyApp.js'
import { LocalTopology } from '../topology/LocalTopology.js'
import { waitForSignal } from './Signals.js'

const CONFIG_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'config')

/**
 * `pgshard dev`: real Postgres servers started locally (shards of a primary and streaming replicas), the demo
 * schema created on every shard, and the proxy in front; everything stops on Ctrl-C.
 */
export async function devCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      'metrics-port': { type: 'string' },
      shards: { type: 'string', default: '2' },
      replicas: { type: 'string', default: '1' },
      config: { type: 'string', short: 'c', default: join(CONFIG_DIR, 'demo.yaml') },
    },
  })
  const template = parseConfig(await readFile(values.config!, 'utf8'), values.config)
  const app = template.users.find((u) => !u.admin)!
  const users = template.users.map((u) => ({ name: u.name, password: u.server_password ?? u.password! }))
  process.stdout.write(`starting ${values.shards} shards × (primary + ${values.replicas} replica) …\n`)
  const topo = await LocalTopology.start({
    shards: Number(values.shards),
    replicas: Number(values.replicas),
    users,
    databases: template.databases.map((d) => d.server_database ?? d.name),
  })
  let proxy: ProxyApp | null = null
  try {
    const schema = await readFile(join(CONFIG_DIR, 'demo-schema.sql'), 'utf8')
    for (const s of topo.shards) for (const db of template.databases) await topo.query(s.primary, schema, db.server_database ?? db.name)
    const raw = {
      ...(await import('yaml')).parse(await readFile(values.config!, 'utf8')),
      shards: topo.shardsConfig().map((s, i) => ({ ...s, failover: template.shards[i]?.failover ?? 'auto' })),
      control: { user: 'postgres', password: topo.superuser.password },
    }
    // The demo's terminal is for the banner: only warnings and errors are logged unless the file asks for more.
    raw.log = { level: 'warn', ...raw.log }
    if (values.port) raw.listen = { ...raw.listen, port: Number(values.port) }
    if (values['metrics-port']) raw.admin = { ...raw.admin, metrics_port: Number(values['metrics-port']) }
    const file = join(topo.baseDir, 'pgshard.yaml')
    await writeFile(file, stringify(raw))
    const config = parseConfig(stringify(raw), file)
    proxy = await ProxyApp.start(config, { configFile: file })
    const { host, port } = proxy.address
    const db = template.databases[0].name
    process.stdout.write(
      [
        '',
        'pgshard is running.',
        `  application:   postgres://${app.name}:${app.password}@${host}:${port}/${db}`,
        `  psql:          PGPASSWORD=${app.password} psql "host=${host} port=${port} user=${app.name} dbname=${db}"`,
        ...adminLines(template, host, port),
        ...(proxy.metricsUrl ? [`  metrics:       ${proxy.metricsUrl}`] : []),
        `  shard map:     ${file}`,
        `  try:           INSERT INTO accounts (id, owner) VALUES (1, 'ann'), (2, 'bob'), (3, 'cy'), (4, 'dee'), (42, 'eve');`,
        `                 SELECT * FROM accounts ORDER BY id;   SELECT count(*) FROM accounts;   SHOW SHARDS (admin console)`,
        `                 pgshard route -c ${file} "SELECT * FROM accounts WHERE id = 42"`,
        '',
        'Ctrl-C stops the proxy and the servers.',
        '',
      ].join('\n'),
    )
    const signal = await waitForSignal(['SIGINT', 'SIGTERM'], { onHup: () => proxy!.reload().catch((e) => proxy!.log.error({ err: e.message }, 'reload failed')) })
    process.stdout.write(`\n${signal}: stopping …\n`)
    await proxy.stop(2000)
    return 0
  } finally {
    await topo.stop()
  }
}

function adminLines(config: ReturnType<typeof parseConfig>, host: string, port: number): string[] {
  const admin = config.users.find((u) => u.admin)
  if (!admin) return []
  return [`  admin console: PGPASSWORD=${admin.password} psql "host=${host} port=${port} user=${admin.name} dbname=pgshard"`]
}
