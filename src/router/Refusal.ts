// A routing decision to refuse: raised while the router decides, and returned to the client as an error Route
// with its SQLSTATE and a hint that says what to do instead.
import type { TableRef } from './StatementPlan.js'

export const FEATURE_NOT_SUPPORTED = '0A000'

export class Refusal extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message)
  }
}

/** A table as a refusal names it: schema-qualified when the statement qualified it. */
export function tableLabel(ref: TableRef): string {
  return ref.schema === undefined ? ref.name : `${ref.schema}.${ref.name}`
}
