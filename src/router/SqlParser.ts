// The one place that talks to libpg-query: the real Postgres grammar (PG18, a superset of the PG15 servers').
import { loadModule, parseSync, type ParseResult } from 'libpg-query'

/** An error a client sees, with its SQLSTATE. */
export class SqlAnalysisError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** 1-based character position in the statement, as in an ErrorResponse's P field. */
    readonly position?: number,
  ) {
    super(message)
    this.name = 'SqlAnalysisError'
  }
}

export class SqlSyntaxError extends SqlAnalysisError {
  declare readonly code: '42601'
  constructor(message: string, position?: number) {
    super('42601', message, position)
    this.name = 'SqlSyntaxError'
  }
}

/** Nesting deeper than the parser or the analyzer's recursion can follow (Postgres' own code for this). */
export class StatementTooComplexError extends SqlAnalysisError {
  constructor() {
    super('54001', 'statement is too complex to analyze: nesting too deep')
    this.name = 'StatementTooComplexError'
  }
}

let loading: Promise<void> | null = null
let ready = false

/** Loads the WASM parser; safe to call any number of times. */
export function initSqlParser(): Promise<void> {
  loading ??= loadModule().then(() => {
    ready = true
  })
  return loading
}

/** Parses `sql` (several statements allowed). Throws SqlSyntaxError for text Postgres would reject. */
export function parseSql(sql: string): ParseResult {
  if (!ready) throw new Error('initSqlParser() must complete before statements are parsed')
  if (sql.includes('\0')) throw new SqlSyntaxError('statement text contains a NUL character')
  try {
    return parseSync(sql)
  } catch (err) {
    if (err instanceof RangeError) throw new StatementTooComplexError()
    const details = (err as { sqlDetails?: { message?: string; cursorPosition?: number } }).sqlDetails
    if (details === undefined) throw new SqlSyntaxError(err instanceof Error ? err.message : String(err))
    const at = details.cursorPosition
    throw new SqlSyntaxError(details.message ?? String(err), typeof at === 'number' && at >= 0 ? at + 1 : undefined)
  }
}
