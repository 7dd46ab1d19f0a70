import { existsSync, readdirSync } from 'node:fs'
import { delimiter, join } from 'node:path'

const PROGRAMS = ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup']

export const INSTALL_HINT =
  'PostgreSQL server binaries (initdb, pg_ctl, postgres, pg_basebackup) were not found in ' +
  '/usr/lib/postgresql/<version>/bin or on PATH. Install them with `apt-get install -y postgresql` ' +
  '(Debian/Ubuntu), or run `npm test` / `npm start`, which install them.'

const hasAll = (dir: string): boolean => PROGRAMS.every((p) => existsSync(join(dir, p)))

/**
 * The directory holding initdb, pg_ctl, postgres and pg_basebackup: the newest
 * `<root>/<major>/bin` (Debian keeps each major there, off PATH), else the first PATH entry with all four.
 */
export function findPostgresBinaries(root = '/usr/lib/postgresql', path = process.env.PATH ?? ''): string {
  const majors = existsSync(root)
    ? readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a))
    : []
  for (const major of majors) {
    const dir = join(root, major, 'bin')
    if (hasAll(dir)) return dir
  }
  for (const dir of path.split(delimiter)) {
    if (dir !== '' && hasAll(dir)) return dir
  }
  throw new Error(INSTALL_HINT)
}
