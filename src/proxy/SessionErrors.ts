import { PgError, SqlState } from '../protocol/PgError.js'
import type { Route } from '../router/Route.js'
import type { SqlPreparedEffect } from './ClientStatements.js'

// The errors a session answers with itself, worded as Postgres would where Postgres has the same error.

export function missingStatement(name: string): PgError {
  return new PgError(SqlState.INVALID_SQL_STATEMENT_NAME, name === '' ? 'unnamed prepared statement does not exist' : `prepared statement "${name}" does not exist`)
}

export function duplicateStatement(name: string): PgError {
  return new PgError(SqlState.DUPLICATE_PREPARED_STATEMENT, `prepared statement "${name}" already exists`)
}

export function tooManyStatements(): PgError {
  return new PgError(SqlState.PROGRAM_LIMIT_EXCEEDED, 'too many prepared statements in this session', { hint: 'Close (DEALLOCATE) statements you no longer use.' })
}

/** Postgres lets EXECUTE run a Parse'd statement and Bind a PREPAREd one; pgshard keeps the two apart. */
export function otherKindOfStatement(name: string, use: 'EXECUTE' | 'Bind' | 'Describe'): PgError {
  const madeBy = use === 'EXECUTE' ? 'a protocol-level Parse' : 'SQL PREPARE'
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, `prepared statement "${name}" was made by ${madeBy}; pgshard does not run it with ${use}`, {
    hint: use === 'EXECUTE' ? 'Run it with Bind/Execute, or make it with SQL PREPARE.' : 'Run it with SQL EXECUTE, or make it with Parse.',
  })
}

/** Among other statements, its name would reach the server as the client wrote it, where other clients' live. */
export function sqlPrepareAmongOthers(e: SqlPreparedEffect): PgError {
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, `${e.kind.toUpperCase()} inside a query of several statements is not supported by pgshard`, {
    hint: 'Send PREPARE, EXECUTE and DEALLOCATE each as a query of its own.',
  })
}

/** BEGIN with options after other statements of its query, inside the transaction pgshard opened for them. */
export function beginAfterStatements(): PgError {
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, 'BEGIN with an isolation level or READ ONLY after other statements of the same query is not supported by pgshard: they already run in a transaction', {
    hint: 'Put the BEGIN first in the query, or send it as a query of its own.',
  })
}

export function routeError(route: Route): PgError {
  if (route.kind === 'error') return new PgError(route.code, route.message, { hint: route.hint })
  return new PgError(SqlState.FEATURE_NOT_SUPPORTED, `statement needs several shards (${route.kind}): ${route.reason}`)
}

/** currval()/lastval() where the connection's sequence state may be another client's. */
export const ABORTED_TRANSACTION: Route = {
  kind: 'error',
  code: SqlState.IN_FAILED_SQL_TRANSACTION,
  message: 'current transaction is aborted, commands ignored until end of transaction block',
}

export const UNRELIABLE_SEQUENCE_STATE: Route = {
  kind: 'error',
  code: SqlState.FEATURE_NOT_SUPPORTED,
  message: 'currval()/lastval() without a write before it in the same transaction: under transaction pooling the server connection may hold another client’s sequence value',
  hint: 'Use INSERT … RETURNING, or call it in the transaction that called nextval() (BEGIN; INSERT …; SELECT lastval(); COMMIT).',
}

export const AFTER_DRAWN_KEYS: Route = {
  kind: 'error',
  code: SqlState.FEATURE_NOT_SUPPORTED,
  message: 'currval()/lastval() after values pgshard drew from a sequence (the keys of an INSERT or COPY, key_sequence and made_columns, or a nextval() it answered): no server session called nextval() for them, so the answer would be another value',
  hint: 'Use INSERT … RETURNING to get the keys, or the value nextval() answered; pgshard answers SELECT lastval() and SELECT currval(\'sequence\') alone, not inside another statement.',
}

export const SEQUENCE_STATE_IN_SPANNING_WRITE: Route = {
  kind: 'error',
  code: SqlState.FEATURE_NOT_SUPPORTED,
  message: 'currval()/lastval() inside a write of a transaction that may span shards: the write runs on the shard of its rows, whose server session may not be the one that called nextval()',
  hint: 'Use INSERT … RETURNING and give the value to the next statement.',
}

export const SEQUENCE_STATE_ACROSS_SHARDS: Route = {
  kind: 'error',
  code: SqlState.FEATURE_NOT_SUPPORTED,
  message: 'currval()/lastval() in a transaction that called nextval() on several shards: each shard’s server session has its own sequence values, and the one answering may not hold the last',
  hint: 'Use INSERT … RETURNING.',
}

export function shutdownError(): PgError {
  return PgError.fatal(SqlState.ADMIN_SHUTDOWN, 'terminating connection due to administrator command', 'pgshard is shutting down; reconnect to another instance.')
}

/** A statement's error for the client (an ERROR); anything else (a FATAL, a bug) is thrown on to end the session. */
export function asStatementError(err: unknown): PgError {
  if (err instanceof PgError && err.severity === 'ERROR') return err
  throw err
}
