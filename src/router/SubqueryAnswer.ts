// The text that takes the place of a self-contained subquery once pgshard has read its answer (DetachedSubqueries):
// its rows as constants, typed as the subquery's columns were, so that the statement means what it meant with the
// subquery in it (an InitPlan's answer is a constant to the statement too).
import type { DetachedForm } from './ast/DetachedSubqueries.js'
import { sqlTypeName } from './merge/TypeOid.js'
import { quoteIdent, quoteLiteral } from './SqlQuoting.js'
import { Refusal } from './Refusal.js'

const CARDINALITY_VIOLATION = '21000'
const SYNTAX_ERROR = '42601'

// Arrays of the types sqlTypeName names, by their own OID.
const ARRAY_ELEMENTS = new Map<number, number>([
  [1000, 16], [1001, 17], [1005, 21], [1007, 23], [1016, 20], [1009, 25], [1015, 1043], [1014, 1042], [1021, 700],
  [1022, 701], [1231, 1700], [1182, 1082], [1183, 1083], [1115, 1114], [1185, 1184], [2951, 2950], [199, 114], [3807, 3802],
])

/** A subquery's answer: its columns (names, type OIDs) and rows in text form. */
export interface SubqueryRows {
  names: string[]
  types: number[]
  rows: (Buffer | null)[][]
}

/**
 * What goes between the subquery's parentheses: for `scalar`, its one value (NULL without a row; more rows or
 * columns are Postgres's own errors, as Refusals); for `in`, the list of its values; for `exists`, a query with a
 * row or none; for `rows`, a VALUES list of its rows, or a query of none; for `table`, a query of its rows under
 * its columns' names.
 */
export function subqueryAnswer(form: DetachedForm, { names, types, rows }: SubqueryRows): string {
  if (form === 'exists') return rows.length > 0 ? 'SELECT' : 'SELECT WHERE false'
  if (form === 'table') {
    if (rows.length === 0) return `SELECT ${types.map((t, i) => `${constant(null, t)} AS ${quoteIdent(names[i]!)}`).join(', ')} WHERE false`
    return `SELECT * FROM (${valuesList(types, rows)}) AS pgshard_rows (${names.map(quoteIdent).join(', ')})`
  }
  if (form === 'scalar') {
    if (types.length !== 1) throw new Refusal(SYNTAX_ERROR, 'subquery must return only one column')
    if (rows.length > 1) throw new Refusal(CARDINALITY_VIOLATION, 'more than one row returned by a subquery used as an expression')
    return constant(rows[0]?.[0] ?? null, types[0]!)
  }
  if (rows.length === 0) return `SELECT ${types.map((t) => constant(null, t)).join(', ')} WHERE false`
  if (form === 'in' && types.length === 1) return rows.map((row) => constant(row[0] ?? null, types[0]!)).join(', ')
  return valuesList(types, rows)
}

function valuesList(types: readonly number[], rows: readonly (readonly (Buffer | null)[])[]): string {
  return `VALUES ${rows.map((row) => `(${types.map((t, i) => constant(row[i] ?? null, t)).join(', ')})`).join(', ')}`
}

/**
 * A value as a constant of its type. A type pgshard has no name for (one created on the shards: an enum, a
 * composite) goes untyped: Postgres then takes it as the type of what it is compared with.
 */
function constant(value: Buffer | null, typeOid: number): string {
  const name = typeLabel(typeOid)
  const text = value === null ? 'NULL' : quoteLiteral(value.toString('utf8'))
  return name === undefined ? text : `${text}::${name}`
}

function typeLabel(typeOid: number): string | undefined {
  const element = ARRAY_ELEMENTS.get(typeOid)
  if (element === undefined) return sqlTypeName(typeOid)
  const name = sqlTypeName(element)
  return name === undefined ? undefined : `${name}[]`
}
