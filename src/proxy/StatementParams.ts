import { paramFormat, type BindMessage } from '../protocol/FrontendMessages.js'
import { PgError, SqlState } from '../protocol/PgError.js'
import { restoreLiterals } from '../router/LiteralNormalizer.js'
import { sqlTypeName, typeName } from '../router/merge/TypeOid.js'
import { quoteLiteral } from '../router/SqlQuoting.js'
import type { BoundParam } from '../router/Route.js'
import { resolveSessionEffect, sessionEffectParams } from '../router/SessionEffects.js'
import type { StatementPlan, ValueRef } from '../router/StatementPlan.js'
import type { ClientStatement } from './ClientStatements.js'
import type { ShardStatement } from './MultiShardExecutor.js'
import { renumberParams } from './ParamRenumbering.js'
import type { Analyzed } from './SessionServices.js'

// How a statement's parameters reach the router (the key's value) and the shards (the Bind they get): from a
// client's Bind, from literals the normalizer took out, or from an EXECUTE's arguments.

/** An EXECUTE argument as the value of the prepared query's parameter (an expression: unknown). */
export function executeArg(v: ValueRef | null | undefined): BoundParam | undefined {
  if (!v) return undefined
  if ('literal' in v) return { value: v.literal, format: 0, typeOid: 0 }
  if ('null' in v) return { value: null, format: 0, typeOid: 0 }
  return undefined
}

/** A client's Bind as a statement for the shards: the client's text and parameters, literals put back. */
export function bindStatement(stmt: ClientStatement, b: BindMessage): ShardStatement {
  return {
    sql: stmt.text,
    bind: { params: b.params, formats: b.paramFormats, types: stmt.paramTypes, resultFormats: b.resultFormats },
  }
}

/**
 * The statement's text with the client's Bind parameters written in as constants, each cast to the type its Parse
 * named: for a query the shards run inside a utility statement (`COPY (query) TO STDOUT` takes no parameters).
 * Text-format values only; a type pgshard cannot name in SQL is refused rather than guessed.
 */
export function withParamsWritten(sql: string, bind: ShardStatement['bind']): string {
  if (!bind || bind.params.length === 0) return sql
  const constants = bind.params.map((value, i) => {
    const oid = bind.types[i] ?? 0
    const name = sqlTypeName(oid)
    if (name === undefined && oid !== 0 && oid !== TYPE_UNKNOWN) {
      throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `parameter $${i + 1} is of ${typeName(oid)}, which pgshard cannot write into this statement's text`, {
        hint: 'Leave the parameter\'s type unspecified in Parse and cast it in the query ($1::your_type), or send the statement as a simple query.',
      })
    }
    if (value !== null && paramFormat(bind.formats, i) !== 0) {
      throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `parameter $${i + 1} is in binary format, which pgshard cannot write into this statement's text`, {
        hint: 'Send the parameters of this statement in text format.',
      })
    }
    const constant = value === null ? 'NULL' : quoteLiteral(value.toString('utf8'))
    return name === undefined ? constant : `(${constant}::${name})`
  })
  return restoreLiterals(sql, 1, constants)
}

const TYPE_UNKNOWN = 705

/** One shard's part of a split INSERT: only the parameters that part uses, renumbered from $1. */
export function splitPart(sql: string, whole: ShardStatement): ShardStatement {
  if (!whole.bind) return { sql }
  const r = renumberParams(sql)
  const b = whole.bind
  return {
    sql: r.sql,
    bind: {
      params: r.original.map((n) => b.params[n - 1] ?? null),
      formats: b.formats.length <= 1 ? b.formats : r.original.map((n) => b.formats[n - 1] ?? 0),
      types: r.original.map((n) => b.types[n - 1] ?? 0),
      resultFormats: b.resultFormats,
    },
  }
}

/**
 * The parameters of a query analyzed on its own inside a statement (a DECLARE's query): its own literals, then
 * the statement's parameters (the client's Bind) under the same numbers.
 */
export function innerParam(inner: Analyzed, outer: (n: number) => BoundParam | undefined): (n: number) => BoundParam | undefined {
  return (n) => (n >= inner.firstParam && inner.literals.length > 0 ? literalParam(inner, n) : outer(n))
}

export function literalParam(analyzed: Analyzed, n: number): BoundParam | undefined {
  const i = n - analyzed.firstParam
  if (i < 0 || i >= analyzed.literals.length) return undefined
  return { value: analyzed.literals[i], format: 0, typeOid: 0 }
}

/**
 * The statement's plan with its set_config() effects made concrete by the Bind's values (`SELECT set_config(
 * 'app.tenant', $1, false)`), so that the setting replayed on other connections is the value, not `$1`. The
 * plan itself when no effect needs a parameter.
 */
export function boundPlan(stmt: ClientStatement, b: BindMessage): StatementPlan | null {
  const plan = stmt.plan
  if (!plan || !plan.session.some((e) => sessionEffectParams(e).length > 0)) return plan
  const text = (n: number): string | null | undefined => {
    const p = bindParam(stmt, b, n)
    return p === undefined ? undefined : p.value === null ? null : p.value.toString()
  }
  return { ...plan, session: plan.session.map((e) => resolveSessionEffect(e, text)) }
}

export function bindParam(stmt: ClientStatement, b: BindMessage, n: number): BoundParam | undefined {
  if (n >= stmt.firstParam && stmt.literals.length > 0) return literalParam({ plan: null, literals: stmt.literals, firstParam: stmt.firstParam }, n)
  const i = n - 1
  if (i < 0 || i >= b.params.length) return undefined
  return { value: b.params[i], format: paramFormat(b.paramFormats, i), typeOid: stmt.paramTypes[i] ?? 0 }
}
