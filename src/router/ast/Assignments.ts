// The columns a statement assigns to existing rows: UPDATE … SET, INSERT … ON CONFLICT DO UPDATE SET and
// MERGE … WHEN MATCHED THEN UPDATE SET, wherever they occur (writing CTEs included). The router refuses an
// assignment that would give a row a sharding key its shard does not own.
import type { Node, RangeVar, ResTarget } from 'libpg-query'
import type { Assignment } from '../StatementPlan.js'
import { asNode, stringList, walkAst } from './AstNode.js'
import { tableRefOf } from './PinCollector.js'
import { valueRefOf } from './ValueRefs.js'

export function assignmentsOf(stmt: Node): Assignment[] {
  const out: Assignment[] = []
  walkAst(stmt, (tag, body) => {
    if (tag === 'UpdateStmt') {
      const u = body as { relation?: RangeVar; targetList?: Node[] }
      if (u.relation !== undefined) collect(u.relation, u.targetList, [], out)
    } else if (tag === 'InsertStmt') {
      const i = body as { relation?: RangeVar; onConflictClause?: { action?: string; targetList?: Node[] } }
      const conflict = i.onConflictClause
      // EXCLUDED.k is the key of the row being inserted, which was routed to this shard.
      if (i.relation !== undefined && conflict?.action === 'ONCONFLICT_UPDATE') collect(i.relation, conflict.targetList, ['excluded'], out)
    } else if (tag === 'MergeStmt') {
      const m = body as { relation?: RangeVar; mergeWhenClauses?: Node[] }
      for (const clause of m.mergeWhenClauses ?? []) {
        const when = asNode(clause, 'MergeWhenClause')
        if (m.relation !== undefined && when?.commandType === 'CMD_UPDATE') collect(m.relation, when.targetList, [], out)
      }
    }
    return true
  })
  return out
}

function collect(relation: RangeVar, targetList: Node[] | undefined, sameRowNames: string[], out: Assignment[]): void {
  const table = tableRefOf(relation)
  const names = new Set([table.alias ?? table.name, ...sameRowNames])
  for (const item of targetList ?? []) {
    const target = asNode(item, 'ResTarget')
    if (target?.name === undefined) continue
    out.push({ table, column: target.name, value: assignedValue(target, names) })
  }
}

function assignedValue(target: ResTarget, sameRowNames: ReadonlySet<string>): Assignment['value'] {
  // `SET k[1] = …` or `SET k.field = …` changes part of the column.
  if (target.indirection !== undefined) return null
  let value = target.val
  const multi = asNode(value, 'MultiAssignRef')
  if (multi !== undefined) value = asNode(multi.source, 'RowExpr')?.args?.[(multi.colno ?? 0) - 1]
  const ref = valueRefOf(value)
  if (ref !== null) return ref
  const fields = stringList(asNode(value, 'ColumnRef')?.fields)
  if (fields === null || fields.at(-1) !== target.name) return null
  if (fields.length === 1 || (fields.length === 2 && sameRowNames.has(fields[0]!))) return 'unchanged'
  return null
}
