// Typed access to libpg-query's JSON tree. Every node is a one-key wrapper (`{ColumnRef: {...}}`); a capitalised
// key is a node tag. Default values are omitted by the protobuf JSON (0, false, empty lists).
import type { Node, RangeVar } from 'libpg-query'

type KeysOfUnion<T> = T extends unknown ? keyof T : never
export type NodeTag = KeysOfUnion<Node>
export type NodeBody<K extends NodeTag> = Extract<Node, Record<K, unknown>>[K]

/** The body of `n` when it is a `tag` node. */
export function asNode<K extends NodeTag>(n: Node | undefined, tag: K): NodeBody<K> | undefined {
  if (n === undefined || n === null || !(tag in n)) return undefined
  return (n as unknown as Record<K, NodeBody<K>>)[tag]
}

/** The tag of a wrapped node. */
export function tagOf(n: Node): NodeTag {
  for (const k in n) return k as NodeTag
  throw new Error('empty AST node')
}

// Fields that hold a RangeVar without the `{RangeVar: …}` wrapper.
const UNTAGGED_RANGEVAR_KEYS = new Set([
  'relation', 'rel', 'pktable', 'table', 'constrrel', 'sequence', 'view', 'typevar', 'identitySequence', 'name',
])

/**
 * Visits every node under `root`, depth first. `visit` returns false to skip a node's subtree. Untagged RangeVar
 * fields (InsertStmt.relation, IntoClause.rel, …) are reported as 'RangeVar' too.
 */
export function walkAst(root: unknown, visit: (tag: string, body: unknown) => boolean | void): void {
  if (Array.isArray(root)) {
    for (const n of root) walkAst(n, visit)
    return
  }
  if (root === null || typeof root !== 'object') return
  const obj = root as Record<string, unknown>
  for (const k in obj) {
    const child = obj[k]
    if (child === null || typeof child !== 'object') continue
    const c = k.charCodeAt(0)
    if (c >= 65 && c <= 90) {
      if (visit(k, child) === false) continue
    } else if (UNTAGGED_RANGEVAR_KEYS.has(k) && !Array.isArray(child) && 'relname' in child) {
      if (visit('RangeVar', child) === false) continue
    }
    walkAst(child, visit)
  }
}

/** Equal for two expressions that are the same, wherever they were written. */
export function expressionKey(n: Node | undefined): string {
  return JSON.stringify(n ?? null, (k, v: unknown) => (k === 'location' ? undefined : v))
}

/** The svals of a list of String nodes (`funcname`, `fields`, `names`); null when one is not a String. */
export function stringList(nodes: Node[] | undefined): string[] | null {
  const out: string[] = []
  for (const n of nodes ?? []) {
    const s = asNode(n, 'String')
    if (s === undefined) return null
    out.push(s.sval ?? '')
  }
  return out
}

/** Lower-cased last part of a function name. */
export function functionName(funcname: Node[] | undefined): string {
  const parts = stringList(funcname)
  return (parts?.at(-1) ?? '').toLowerCase()
}

export function isRangeVar(body: unknown): body is RangeVar {
  return body !== null && typeof body === 'object' && 'relname' in body
}

/** The conditions ANDed at the top of a WHERE clause (the clause itself when it is no AND). */
export function conjuncts(n: Node | undefined): Node[] {
  if (n === undefined) return []
  const and = asNode(n, 'BoolExpr')
  return and?.boolop === 'AND_EXPR' ? (and.args ?? []).flatMap(conjuncts) : [n]
}
