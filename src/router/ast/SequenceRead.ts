// `SELECT lastval()` or `SELECT currval(name)` alone: the statements drivers send for the id of the row they just
// inserted (PDO's lastInsertId, Doctrine), which pgshard can answer for keys it drew itself; `SELECT nextval(name)`
// alone: the id an ORM draws before its INSERT (Doctrine's and Hibernate's sequence generators), which pgshard
// draws on the default shard.
import type { SelectStmt } from 'libpg-query'
import type { SequenceRead } from '../StatementPlan.js'
import { asNode, stringList } from './AstNode.js'
import { valueRefOf } from './ValueRefs.js'

/** The call when `select` is one lastval()/currval()/nextval() and nothing else (no FROM, WHERE, set operation …). */
export function sequenceReadOf(select: SelectStmt): SequenceRead | undefined {
  const targets = select.targetList ?? []
  if (targets.length !== 1 || (select.op !== undefined && select.op !== 'SETOP_NONE')) return undefined
  const clauses = [select.fromClause, select.whereClause, select.groupClause, select.havingClause, select.sortClause, select.limitCount, select.limitOffset, select.distinctClause, select.withClause, select.intoClause, select.lockingClause, select.valuesLists, select.windowClause]
  if (clauses.some((c) => c !== undefined && (!Array.isArray(c) || c.length > 0))) return undefined
  const target = asNode(targets[0], 'ResTarget')
  const call = asNode(target?.val, 'FuncCall')
  if (call === undefined || call.agg_star === true || call.agg_distinct === true || call.over !== undefined || call.agg_filter !== undefined) return undefined
  const name = stringList(call.funcname)
  // A function of the same name in a schema of the client's is not the sequence function.
  if (name === null || name.length > 2 || (name.length === 2 && name[0] !== 'pg_catalog')) return undefined
  const fn = name.at(-1)!.toLowerCase()
  const args = call.args ?? []
  if (fn === 'lastval' && args.length === 0) return { fn, column: target?.name ?? fn }
  if ((fn !== 'currval' && fn !== 'nextval') || args.length !== 1) return undefined
  const sequence = valueRefOf(args[0])
  if (sequence === null || 'null' in sequence || sequence.array === true || ('param' in sequence && sequence.negate === true)) return undefined
  return { fn, sequence, column: target?.name ?? fn }
}
