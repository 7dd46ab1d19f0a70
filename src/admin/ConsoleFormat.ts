import type { Config } from '../config/ConfigSchema.js'

// How the console shows values that several commands share.

/** A timestamp as PgBouncer's console shows it: `2026-11-25 14:03:07 UTC`. */
export function consoleTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`
}

/** The logical database (what clients connect to) whose pools use this server database name. */
export function logicalDatabase(config: Config, serverDatabase: string): string {
  return config.databases.find((d) => (d.server_database ?? d.name) === serverDatabase)?.name ?? serverDatabase
}
