import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino'
import type { Config } from '../config/ConfigSchema.js'

/** The project's logger. Each part takes a child named after it: `log.child({ component: 'pool' })`. */
export type Logger = PinoLogger

export type LogLevel = Config['log']['level']

export interface LoggerOptions {
  level: LogLevel
  /** Where the JSON lines go; stdout when absent (tests pass a stream). */
  destination?: DestinationStream
  /** `log.log_parameters`: query parameters are redacted unless the operator opts in. */
  logParameters?: boolean
}

const SECRET_KEYS = ['password', 'server_password', 'scram_verifier']

/**
 * Redaction paths for a key: at the top of the logged object, one or two objects down, and inside a list
 * (`{ users: [{ password }] }`, `{ config: { users: [...] } }`), which covers logging a user or the whole config.
 */
function redactPaths(key: string): string[] {
  return [key, `*.${key}`, `*.*.${key}`, `*[*].${key}`, `*.*[*].${key}`]
}

/** JSON lines with ISO timestamps and level names; secrets (and, by default, query parameters) are `[Redacted]`. */
export function createLogger({ level, destination, logParameters = false }: LoggerOptions): Logger {
  const keys = logParameters ? SECRET_KEYS : [...SECRET_KEYS, 'params']
  return pino(
    {
      level,
      redact: { paths: keys.flatMap(redactPaths) },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination(1),
  )
}
