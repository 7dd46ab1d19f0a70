/** SQLSTATE codes the proxy itself raises. */
export const SqlState = {
  PROTOCOL_VIOLATION: '08P01',
  CONNECTION_FAILURE: '08006',
  CONNECTION_EXCEPTION: '08000',
  TRANSACTION_RESOLUTION_UNKNOWN: '08007',
  SQLCLIENT_UNABLE_TO_ESTABLISH: '08001',
  INVALID_PASSWORD: '28P01',
  INVALID_AUTHORIZATION: '28000',
  INVALID_CATALOG_NAME: '3D000',
  TOO_MANY_CONNECTIONS: '53300',
  FEATURE_NOT_SUPPORTED: '0A000',
  INSUFFICIENT_PRIVILEGE: '42501',
  SYNTAX_ERROR: '42601',
  UNDEFINED_OBJECT: '42704',
  INVALID_SQL_STATEMENT_NAME: '26000',
  DUPLICATE_PREPARED_STATEMENT: '42P05',
  INVALID_CURSOR_NAME: '34000',
  DUPLICATE_CURSOR: '42P03',
  QUERY_CANCELED: '57014',
  ADMIN_SHUTDOWN: '57P01',
  CANNOT_CONNECT_NOW: '57P03',
  IDLE_IN_TRANSACTION_TIMEOUT: '25P03',
  READ_ONLY_TRANSACTION: '25006',
  IN_FAILED_SQL_TRANSACTION: '25P02',
  DEADLOCK_DETECTED: '40P01',
  INVALID_TEXT_REPRESENTATION: '22P02',
  INVALID_PARAMETER_VALUE: '22023',
  NOT_NULL_VIOLATION: '23502',
  INTERNAL_ERROR: 'XX000',
  PROGRAM_LIMIT_EXCEEDED: '54000',
  CONFIGURATION_LIMIT_EXCEEDED: '53400',
} as const

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE'

/** An error the client sees as a Postgres ErrorResponse. */
export class PgError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly options: { severity?: Severity; detail?: string; hint?: string } = {},
  ) {
    super(message)
  }

  get severity(): Severity {
    return this.options.severity ?? 'ERROR'
  }

  static fatal(code: string, message: string, hint?: string): PgError {
    return new PgError(code, message, { severity: 'FATAL', hint })
  }
}
