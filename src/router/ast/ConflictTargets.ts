// The conflict targets of INSERT … ON CONFLICT (cols) wherever they occur (writing CTEs included). A unique
// index is enforced on each shard alone, so the router refuses a target on a sharded table that leaves out its
// sharding key: the row that conflicts may be on another shard, and the INSERT would add a second one.
import type { Node, RangeVar } from 'libpg-query'
import type { ConflictTarget } from '../StatementPlan.js'
import { asNode, stringList, walkAst } from './AstNode.js'
import { tableRefOf } from './PinCollector.js'

export function conflictTargetsOf(stmt: Node): ConflictTarget[] {
  const out: ConflictTarget[] = []
  walkAst(stmt, (tag, body) => {
    if (tag !== 'InsertStmt') return true
    const insert = body as { relation?: RangeVar; onConflictClause?: { infer?: { indexElems?: Node[] } } }
    const infer = insert.onConflictClause?.infer
    // ON CONFLICT DO NOTHING without a target, and ON CONFLICT ON CONSTRAINT, name no columns.
    if (insert.relation === undefined || infer?.indexElems === undefined) return true
    const columns: string[] = []
    for (const elem of infer.indexElems) {
      const index = asNode(elem, 'IndexElem')
      // An expression counts as a column when it is one (`(email)`), else as none.
      const name = index?.name ?? stringList(asNode(index?.expr, 'ColumnRef')?.fields)?.at(-1)
      if (name !== undefined) columns.push(name)
    }
    out.push({ table: tableRefOf(insert.relation), columns })
    return true
  })
  return out
}
