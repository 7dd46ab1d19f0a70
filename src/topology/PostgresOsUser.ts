import { execFileSync } from 'node:child_process'
import { chown } from 'node:fs/promises'

export interface OsUser {
  uid: number
  gid: number
}

let cached: OsUser | null | undefined

/**
 * The `postgres` OS user when we run as root (Postgres refuses to run as root), undefined otherwise:
 * then every program simply runs as the current user.
 */
export function postgresOsUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined
  if (cached === undefined) {
    try {
      const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
      cached = { uid: id('-u'), gid: id('-g') }
    } catch {
      cached = null
    }
  }
  if (cached === null) {
    throw new Error(
      'running as root, but there is no `postgres` OS user to run PostgreSQL as: ' +
        'install the `postgresql` package (it creates the user) or run as an unprivileged user',
    )
  }
  return cached
}

/** Hands a file or directory we created to the postgres OS user (a no-op when not root). */
export async function giveToPostgres(path: string): Promise<void> {
  const user = postgresOsUser()
  if (user !== undefined) await chown(path, user.uid, user.gid)
}
