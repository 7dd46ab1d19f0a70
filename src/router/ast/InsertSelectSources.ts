// Where each column of an INSERT … SELECT takes its value from: a constant or parameter of the select list, or a
// column of a table its FROM clause names. The router follows the sharding key through it: rows that take their
// key from a source table's pinned key, or from a constant, all belong to one shard.
import type { Node, RangeVar, SelectStmt } from 'libpg-query'
import type { InsertSource } from '../StatementPlan.js'
import { asNode, stringList } from './AstNode.js'
import { tableRefOf } from './PinCollector.js'
import { valueRefOf } from './ValueRefs.js'

/** One source per column of the select list (aligned with the INSERT's column list); undefined for another SELECT. */
export function insertSelectSources(select: SelectStmt | undefined): InsertSource[] | undefined {
  if (select === undefined || select.valuesLists !== undefined || (select.op !== undefined && select.op !== 'SETOP_NONE')) return undefined
  const tables = fromTables(select.fromClause ?? [])
  return (select.targetList ?? []).map((t) => {
    const val = asNode(t, 'ResTarget')?.val
    const value = valueRefOf(val)
    if (value !== null) return 'null' in value ? null : { value }
    const fields = stringList(asNode(val, 'ColumnRef')?.fields)
    if (fields === null || fields.length === 0 || fields.length > 2) return null
    const matches = fields.length === 1 ? tables : tables.filter((rv) => (rv.alias?.aliasname ?? rv.relname) === fields[0])
    return matches.length === 1 ? { table: tableRefOf(matches[0]!), column: fields.at(-1)! } : null
  })
}

/** The tables a FROM clause names directly or through joins (not inside subqueries). */
function fromTables(items: Node[]): RangeVar[] {
  return items.flatMap((item) => {
    const rv = asNode(item, 'RangeVar')
    if (rv !== undefined) return [rv]
    const join = asNode(item, 'JoinExpr')
    return join === undefined ? [] : fromTables([join.larg, join.rarg].filter((n): n is Node => n !== undefined))
  })
}
