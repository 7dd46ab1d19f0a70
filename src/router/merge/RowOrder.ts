// How merged rows compare under a list of ORDER BY keys (of a statement, or of a window), as Postgres orders them:
// each key ascending or descending, NULLs first or last.
import type { OrderKey } from '../StatementPlan.js'
import { compareValues, type SqlValue } from './SqlValue.js'

/** Negative when keys `a` come before keys `b`, 0 for peers. `a[i]` and `b[i]` are the values of `order[i]`. */
export function compareRowKeys(order: readonly OrderKey[], a: readonly (SqlValue | null)[], b: readonly (SqlValue | null)[]): number {
  for (let i = 0; i < order.length; i++) {
    const x = a[i]!
    const y = b[i]!
    if (x === null || y === null) {
      if (x === y) continue
      return (x === null) === order[i]!.nullsFirst ? -1 : 1
    }
    const c = compareValues(x, y)
    if (c !== 0) return order[i]!.descending ? -c : c
  }
  return 0
}
