// A routing decision to refuse: raised while the router decides, and returned to the client as an error Route
// with its SQLSTATE and a hint that says what to do instead.
import type { TableRef } from './StatementPlan.js'

export const FEATURE_NOT_SUPPORTED = '0A000'

export class Refusal extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
    /** Refused for want of what the shards' catalogs say (a table made moments ago): a read of them may change it. */
    readonly catalog = false,
  ) {
    super(message)
  }
}

/** A refusal's message about a subquery pgshard reads first, on its own (DetachedSubqueries). */
export function inSubqueryReadFirst(message: string): string {
  return `${message} (in a subquery over a sharded table, which pgshard reads first on its own)`
}

/** A table as a refusal names it: schema-qualified when the statement qualified it. */
export function tableLabel(ref: TableRef): string {
  return ref.schema === undefined ? ref.name : `${ref.schema}.${ref.name}`
}
