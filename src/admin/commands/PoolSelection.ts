import { PgError, SqlState } from '../../protocol/PgError.js'
import { ADMIN_DATABASE } from '../../proxy/ProxyServer.js'
import type { Pool } from '../../pool/Pool.js'
import { nameArgument } from '../AdminArgument.js'
import type { AdminContext } from '../AdminContext.js'
import { logicalDatabase } from '../ConsoleFormat.js'

/** The pools of one logical database, or of all when `database` is empty; an unknown database is an error. */
export function poolsOf(ctx: AdminContext, database: string): Pool[] {
  const { config } = ctx.proxy
  const name = nameArgument(database)
  if (name === ADMIN_DATABASE) throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `the admin database "${ADMIN_DATABASE}" has no pools`)
  if (name !== '' && !config.databases.some((d) => d.name === name))
    throw new PgError(SqlState.INVALID_CATALOG_NAME, `no such database: ${name}`, { hint: `Databases: ${config.databases.map((d) => d.name).join(', ')}` })
  return ctx.proxy.pools
    .all()
    .filter((e) => name === '' || logicalDatabase(config, e.database) === name)
    .map((e) => e.pool)
}

/** The database name on the servers for a logical database argument ('' for all → null). */
export function serverDatabaseOf(ctx: AdminContext, database: string): string | null {
  const name = nameArgument(database)
  if (name === '') return null
  const d = ctx.proxy.config.databases.find((x) => x.name === name)
  return d ? (d.server_database ?? d.name) : name
}
