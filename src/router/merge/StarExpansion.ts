// Resolves the `*` items of a scatter plan against the width of the rows the shards describe. A plan counts each
// star as one column; the shards' rows hold as many columns as the star stands for. Columns before the first star
// keep their place, the others are counted from the end of the row (hidden columns are always last), and the
// planner never refers to a column between two stars, whose place cannot be known.
import type { MergeExpr, OutputColumn, ScatterPlan } from '../StatementPlan.js'
import { MergeError } from './MergeError.js'

/** `plan` with its stars replaced by value columns for rows of `width` columns; `plan` itself without stars. */
export function expandStars(plan: ScatterPlan, width: number): ScatterPlan {
  const stars = plan.columns.flatMap((c, i) => (c.kind === 'star' ? [i] : []))
  if (stars.length === 0) return plan
  const known = plan.columns.length - stars.length
  if (width < known) {
    throw new MergeError(`the shards returned ${width} columns; the scatter plan needs at least ${known}`, 'XX000')
  }
  const first = stars[0]!
  const last = stars.at(-1)!
  const at = (column: number): number => {
    if (column < first) return column
    if (column > last) return width - (plan.columns.length - column)
    throw new MergeError(`the scatter plan refers to column ${column + 1}, which a * in the select list spans`, 'XX000')
  }
  const columns: OutputColumn[] = []
  for (let i = 0; i < width; i++) {
    const planned = i < first ? plan.columns[i]! : i >= width - (plan.columns.length - 1 - last) ? plan.columns[plan.columns.length - (width - i)]! : undefined
    if (planned === undefined || planned.kind !== 'aggregate') {
      columns.push({ kind: 'value' })
      continue
    }
    const column: OutputColumn = { ...planned }
    if (planned.sumColumn !== undefined) column.sumColumn = at(planned.sumColumn)
    if (planned.countColumn !== undefined) column.countColumn = at(planned.countColumn)
    if (planned.distinctColumn !== undefined) column.distinctColumn = at(planned.distinctColumn)
    if (planned.presentColumn !== undefined) column.presentColumn = at(planned.presentColumn)
    columns.push(column)
  }
  return {
    ...plan,
    columns,
    visibleColumns: width - (plan.columns.length - plan.visibleColumns),
    groupBy: plan.groupBy?.map(at) ?? null,
    orderBy: plan.orderBy.map((k) => ({ ...k, column: at(k.column) })),
    having: plan.having === null ? null : remap(plan.having, at),
    ...(plan.totals ? { totals: plan.totals.map((t) => ({ ...t, column: at(t.column) })) } : {}),
  }
}

function remap(e: MergeExpr, at: (column: number) => number): MergeExpr {
  switch (e.op) {
    case 'column':
      return { op: 'column', column: at(e.column) }
    case 'compare':
      return { ...e, left: remap(e.left, at), right: remap(e.right, at) }
    case 'and':
    case 'or':
      return { op: e.op, args: e.args.map((a) => remap(a, at)) }
    case 'not':
      return { op: 'not', arg: remap(e.arg, at) }
    case 'is_null':
      return { ...e, arg: remap(e.arg, at) }
    default:
      return e
  }
}
