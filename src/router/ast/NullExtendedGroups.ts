// A grouped read whose outer join keeps rows of a table every shard holds whole (a reference table) where no
// sharded row matches (`FROM product p LEFT JOIN lineitem li ON … GROUP BY p.id`, an ORM's annotate(Count(…)) on a
// reference table). Each shard returns every kept row, NULL-extended where it holds no match, so the groups come
// from every shard; merged by group, the aggregates are still exact when each ignores NULLs and takes only a
// sharded table's column (the NULL-extended rows add nothing to it), and when no row is grouped by a sharded
// table's columns, nor filtered by them but by conditions no NULL passes (a NULL-extended row would make a group,
// or pass a filter, on a shard that holds no match where one server would see the match).
import type { FuncCall, Node, SelectStmt } from 'libpg-query'
import { MERGEABLE, UNMERGEABLE_AGGREGATES } from '../MergeableAggregates.js'
import { asNode, conjuncts, functionName, stringList, walkAst } from './AstNode.js'
import { relationColumn, type FromSources } from './QueryScopes.js'

/** Aggregates that skip NULL arguments and that the merge folds (count(*) counts the NULL-extended rows too). */
const NULL_IGNORING = new Set(['count', 'sum', 'avg', 'min', 'max', 'bool_and', 'bool_or', 'every', 'string_agg'])

export interface NullExtendedGroups {
  /** The relations the aggregates' arguments name. */
  argRelations: number[]
  /** The relations the GROUP BY items name, and the WHERE clause but in conditions no NULL passes. */
  keyRelations: number[]
}

/**
 * The relations of an aggregated SELECT's aggregates and of its filters and groups, when every aggregate is one
 * that ignores NULLs over a column (or a cast of one) and every column is told to its relation; undefined when
 * not (a subquery anywhere, count(*), another aggregate, an expression an aggregate takes, a column of unknown
 * relation).
 */
export function nullExtendedGroups(s: SelectStmt, from: FromSources): NullExtendedGroups | undefined {
  const argRelations = new Set<number>()
  const keyRelations = new Set<number>()
  let plain = true
  const relationOf = (n: Node | undefined): number | undefined => {
    const column = asNode(asNode(n, 'TypeCast')?.arg ?? n, 'ColumnRef')
    const fields = stringList(column?.fields)
    return fields === null ? undefined : relationColumn(from, fields)?.relation
  }
  const aggregate = (call: FuncCall) => {
    const name = functionName(call.funcname)
    const first = relationOf(call.args?.[0])
    if (!NULL_IGNORING.has(name) || call.agg_star === true || call.args === undefined || first === undefined) return false
    if (call.args.slice(1).some((a) => asNode(a, 'A_Const') === undefined)) return false
    argRelations.add(first)
    return true
  }
  walkAst([s.targetList, s.havingClause, s.sortClause], (tag, body) => {
    if (tag === 'SubLink') plain = false
    if (tag === 'FuncCall' && (body as FuncCall).over === undefined && isAggregate(body as FuncCall)) {
      if (!aggregate(body as FuncCall)) plain = false
      return false
    }
    return plain
  })
  const keys = (s.groupClause ?? []).map((g) => {
    const position = asNode(g, 'A_Const')?.ival
    return position === undefined ? g : asNode(s.targetList?.[(position.ival ?? 0) - 1], 'ResTarget')?.val
  })
  // A condition that no NULL-extended row passes (`li.qty > 3`) filters by the sharded side safely: it drops those
  // rows on every shard, as one server drops them.
  const filters = conjuncts(s.whereClause).filter((c) => !rejectsNulls(c))
  walkAst([filters, keys], (tag, body) => {
    if (tag === 'SubLink') plain = false
    if (tag !== 'ColumnRef') return plain
    const fields = stringList((body as { fields?: Node[] }).fields)
    const at = fields === null ? undefined : relationColumn(from, fields)?.relation
    if (at === undefined) plain = false
    else keyRelations.add(at)
    return false
  })
  return plain ? { argRelations: [...argRelations], keyRelations: [...keyRelations] } : undefined
}

/** A call of an aggregate the merge folds, or of a built-in one it cannot: either way not a plain function. */
function isAggregate(call: FuncCall): boolean {
  const name = functionName(call.funcname)
  return call.agg_star === true || call.agg_distinct === true || call.agg_order !== undefined || call.agg_filter !== undefined || MERGEABLE[name] !== undefined || UNMERGEABLE_AGGREGATES.has(name)
}

/** Operands a comparison is NULL for when a column it names is: columns, constants, parameters, casts of them. */
function plainOperand(n: Node | undefined): boolean {
  const inner = asNode(n, 'TypeCast')?.arg ?? n
  return asNode(inner, 'ColumnRef') !== undefined || asNode(inner, 'A_Const') !== undefined || asNode(inner, 'ParamRef') !== undefined
}

/** Built-in comparison operators, all strict (NULL in, NULL out). */
const COMPARISONS = new Set(['=', '<>', '!=', '<', '<=', '>', '>=', '~~', '!~~', '~~*', '!~~*'])
const STRICT_KINDS = new Set(['AEXPR_OP', 'AEXPR_IN', 'AEXPR_LIKE', 'AEXPR_ILIKE', 'AEXPR_BETWEEN', 'AEXPR_NOT_BETWEEN'])

/** A comparison (=, <, IN, LIKE, BETWEEN … of plain operands) or IS NOT NULL: false or NULL for NULL columns. */
function rejectsNulls(n: Node): boolean {
  const test = asNode(n, 'NullTest')
  if (test !== undefined) return test.nulltesttype === 'IS_NOT_NULL' && plainOperand(test.arg)
  const e = asNode(n, 'A_Expr')
  if (e === undefined || !STRICT_KINDS.has(e.kind ?? '')) return false
  if (e.kind === 'AEXPR_OP' && !COMPARISONS.has(stringList(e.name)?.at(-1) ?? '')) return false
  const right = asNode(e.rexpr, 'List')?.items ?? (Array.isArray(e.rexpr) ? (e.rexpr as Node[]) : [e.rexpr])
  return plainOperand(e.lexpr) && right.every((r) => plainOperand(r))
}
