import type { Node } from 'libpg-query'
import { asNode, walkAst } from './ast/AstNode.js'
import { parseSql } from './SqlParser.js'

/**
 * The schemas a session's search_path names, in order, read from the statement pgshard keeps for the setting
 * (`SET search_path …`, or `set_config('search_path', '…', false)` for a start-up parameter or a set_config
 * call). `$user` is left for the caller. Null for `SET search_path TO DEFAULT` or a text it cannot read: the
 * server's default applies.
 */
export function searchPathOf(sql: string): string[] | null {
  let stmt: Node | undefined
  try {
    stmt = parseSql(sql).stmts?.[0]?.stmt
  } catch {
    return null
  }
  const set = asNode(stmt, 'VariableSetStmt')
  if (set !== undefined) {
    if (set.kind !== 'VAR_SET_VALUE') return null
    const names = (set.args ?? []).map((a) => asNode(a, 'A_Const')?.sval?.sval)
    return names.every((n): n is string => n !== undefined) ? names : null
  }
  let value: string | undefined
  walkAst(stmt, (tag, body) => {
    if (tag !== 'FuncCall' || value !== undefined) return value === undefined
    value = asNode((body as { args?: Node[] }).args?.[1], 'A_Const')?.sval?.sval
    return false
  })
  return value === undefined ? null : splitSearchPath(value)
}

/** Splits a search_path value (`a, "B c", public`) as Postgres does: names between commas, quotes keep case. */
export function splitSearchPath(value: string): string[] {
  const names: string[] = []
  let i = 0
  for (;;) {
    while (value[i] === ' ' || value[i] === '\t') i++
    let name = ''
    if (value[i] === '"') {
      for (i++; i < value.length; i++) {
        if (value[i] === '"' && value[i + 1] === '"') name += value[i++]
        else if (value[i] === '"') break
        else name += value[i]
      }
      i++
    } else {
      while (i < value.length && value[i] !== ',') name += value[i++]
      name = name.trim().toLowerCase()
    }
    while (value[i] === ' ' || value[i] === '\t') i++
    if (name !== '') names.push(name)
    if (value[i] !== ',') return names
    i++
  }
}
