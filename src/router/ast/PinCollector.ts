// Combines the pins of every place a table is used. The router only learns "table t, column k, values V", so a pin
// may be reported only if it holds for every use of that table reference in the statement (or in every statement
// of a multi-statement query); one unpinned use makes the table unpinned.
import type { RangeVar } from 'libpg-query'
import type { ColumnPin, TableRef, ValueRef } from '../StatementPlan.js'

export type ColumnValues = Map<string, ValueRef[]>

export function tableRefOf(rv: RangeVar): TableRef {
  const ref: TableRef = { name: rv.relname ?? '' }
  if (rv.schemaname !== undefined) ref.schema = rv.schemaname
  if (rv.alias?.aliasname !== undefined) ref.alias = rv.alias.aliasname
  return ref
}

export function tableKey(t: TableRef): string {
  return `${t.schema ?? ''}\u0000${t.name}\u0000${t.alias ?? ''}`
}

function valueKey(v: ValueRef): string {
  return JSON.stringify(v)
}

/** Values without duplicates, in the order first seen. */
export class ValueSet {
  readonly values: ValueRef[] = []
  private readonly keys = new Set<string>()

  constructor(initial: readonly ValueRef[] = []) {
    this.addAll(initial)
  }

  add(v: ValueRef): void {
    const k = valueKey(v)
    if (this.keys.has(k)) return
    this.keys.add(k)
    this.values.push(v)
  }

  addAll(values: readonly ValueRef[]): void {
    for (const v of values) this.add(v)
  }
}

export class PinCollector {
  private readonly uses = new Map<string, { table: TableRef; columns: Map<string, ValueSet> }>()

  /** One use of `table`, with the values each pinned column is restricted to there. */
  add(table: TableRef, columns: ColumnValues): void {
    const key = tableKey(table)
    const known = this.uses.get(key)
    if (known === undefined) {
      this.uses.set(key, { table, columns: new Map([...columns].map(([c, v]) => [c, new ValueSet(v)])) })
      return
    }
    for (const [column, values] of known.columns) {
      const more = columns.get(column)
      if (more === undefined) known.columns.delete(column)
      else values.addAll(more)
    }
  }

  pins(): ColumnPin[] {
    const out: ColumnPin[] = []
    for (const { table, columns } of this.uses.values()) {
      for (const [column, values] of columns) out.push({ table, column, values: values.values })
    }
    return out
  }
}
