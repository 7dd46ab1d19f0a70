// Turns the AST of a constant, a parameter, or a cast / unary minus of one into a ValueRef the router can hash.
import type { A_Const, Node, TypeName } from 'libpg-query'
import type { ValueRef } from '../StatementPlan.js'
import { asNode, stringList } from './AstNode.js'

/** The ValueRef `n` stands for, or null when it is any other expression. */
export function valueRefOf(n: Node | undefined): ValueRef | null {
  const param = asNode(n, 'ParamRef')
  if (param !== undefined) return { param: param.number ?? 0 }
  const constant = asNode(n, 'A_Const')
  if (constant !== undefined) return constantRef(constant)
  const cast = asNode(n, 'TypeCast')
  if (cast !== undefined) {
    // One cast is kept for the router; a chain (`'5.7'::numeric::int`) can change the value, so it is not a key.
    const inner = valueRefOf(cast.arg)
    const type = scalarTypeName(cast.typeName)
    if (inner === null || type === null || ('cast' in inner && inner.cast !== undefined)) return null
    if ('null' in inner) return inner
    return { ...inner, cast: type }
  }
  const expr = asNode(n, 'A_Expr')
  if (expr !== undefined && expr.kind === 'AEXPR_OP' && expr.lexpr === undefined) {
    const op = stringList(expr.name)
    if (op === null || op.length !== 1) return null
    const inner = valueRefOf(expr.rexpr)
    if (inner === null || 'null' in inner) return inner
    if (op[0] === '+') return inner
    if (op[0] !== '-') return null
    if ('param' in inner) return inner.negate === true ? null : { ...inner, negate: true }
    if (!/^[0-9.]/.test(inner.literal) || inner.cast !== undefined) return null
    return { literal: '-' + inner.literal }
  }
  return null
}

function constantRef(c: A_Const): ValueRef {
  if (c.isnull === true) return { null: true }
  if (c.ival !== undefined) return { literal: String(c.ival.ival ?? 0) }
  if (c.fval !== undefined) return { literal: c.fval.fval ?? '0' }
  if (c.boolval !== undefined) return { literal: c.boolval.boolval === true ? 'true' : 'false' }
  if (c.bsval !== undefined) return { literal: c.bsval.bsval ?? '' }
  return { literal: c.sval?.sval ?? '' }
}

/** `int8` for `bigint` / `pg_catalog.int8`; null for arrays and `setof`. */
export function scalarTypeName(t: TypeName | undefined): string | null {
  if (t === undefined || (t.arrayBounds?.length ?? 0) > 0 || t.setof === true) return null
  const names = stringList(t.names)
  const last = names?.at(-1)
  return last === undefined ? null : last.toLowerCase()
}

/** The value of a constant as the text Postgres would read (MergeExpr consts, set_config arguments). */
export function constantText(n: Node | undefined): string | null | undefined {
  const ref = valueRefOf(n)
  if (ref === null || 'param' in ref) return undefined
  if ('null' in ref) return null
  return ref.literal
}
