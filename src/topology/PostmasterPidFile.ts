import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface PostmasterPidFile {
  pid: number
  /** The System V segment Postgres keeps as a "still in use" interlock (line 7: key and id). */
  shmId?: number
}

/** Reads `<dataDir>/postmaster.pid`; undefined when the server is not running (or never was). */
export function readPostmasterPidFile(dataDir: string): PostmasterPidFile | undefined {
  let text: string
  try {
    text = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8')
  } catch {
    return undefined
  }
  const lines = text.split('\n')
  const pid = Number(lines[0])
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  const shm = lines[6]?.trim().split(/\s+/)
  const shmId = shm?.length === 2 ? Number(shm[1]) : undefined
  return { pid, shmId: Number.isInteger(shmId) ? shmId : undefined }
}
