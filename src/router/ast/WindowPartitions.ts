// The columns a SELECT level's window functions partition by. Partitioned by a sharding key, every row of a
// partition is on one shard, so each shard computes the window functions of its rows exactly.
import type { FuncCall, Node, SelectStmt, WindowDef } from 'libpg-query'
import type { RelationColumn } from '../StatementPlan.js'
import { asNode, stringList, walkAst } from './AstNode.js'
import { relationColumn, type FromSources } from './QueryScopes.js'

/**
 * Undefined when the level calls no window function (but those of `merged`, which the proxy computes); else, for
 * each of its window functions, the expressions of its PARTITION BY (empty without one).
 */
export function windowPartitions(s: SelectStmt, merged: ReadonlySet<FuncCall> = new Set()): Node[][] | undefined {
  const named = new Map<string, WindowDef>()
  for (const w of s.windowClause ?? []) {
    const def = asNode(w, 'WindowDef')
    if (def?.name !== undefined) named.set(def.name, def)
  }
  const windows: Node[][] = []
  walkAst([s.targetList, s.sortClause, s.distinctClause], (tag, body) => {
    if (tag === 'SubLink') return false
    const over = tag === 'FuncCall' && !merged.has(body as FuncCall) ? (body as FuncCall).over : undefined
    if (over !== undefined) windows.push(partitionOf(over, named))
    return true
  })
  return windows.length > 0 ? windows : undefined
}

/** For each window function of the level (undefined without one), the columns of `from` in its PARTITION BY. */
export function windowPartitionColumns(s: SelectStmt, from: FromSources | undefined, merged?: ReadonlySet<FuncCall>): RelationColumn[][] | undefined {
  return windowPartitions(s, merged)?.map((partition) =>
    from === undefined
      ? []
      : partition.flatMap((p) => {
          const fields = stringList(asNode(p, 'ColumnRef')?.fields)
          return fields === null || fields.length === 0 ? [] : (relationColumn(from, fields) ?? [])
        }),
  )
}

/**
 * What a window partitions by. `OVER w` names a window of the WINDOW clause; `OVER (w ORDER BY …)` and
 * `WINDOW v AS (w …)` copy w's PARTITION BY (Postgres forbids giving another).
 */
function partitionOf(over: WindowDef, named: Map<string, WindowDef>): Node[] {
  let def: WindowDef | undefined = over.partitionClause === undefined && over.refname === undefined && over.name !== undefined ? named.get(over.name) : over
  for (let hops = 0; def !== undefined && def.partitionClause === undefined && def.refname !== undefined && hops < named.size; hops++) def = named.get(def.refname)
  return def?.partitionClause ?? []
}
