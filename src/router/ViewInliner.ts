// Views over sharded tables exist on every shard, and each shard's copy sees that shard's rows only. A statement
// that reads one is analyzed with the view's query written in its place (`FROM open_orders o` becomes `FROM
// (SELECT … FROM orders WHERE …) o`), so its filters pin the tables under the view and a read across shards is
// planned, and sent, as a read of those tables.
import type { Node, RangeVar } from 'libpg-query'
import { asNode, tagOf, walkAst } from './ast/AstNode.js'
import { SqlLexer, Tok } from './SqlLexer.js'
import { parseSql, StatementTooComplexError } from './SqlParser.js'
import { quoteIdent } from './SqlQuoting.js'
import { StatementText } from './StatementText.js'
import type { TableRef } from './StatementPlan.js'

/** Statements whose reads of a view may be analyzed as reads of its query (not DDL, which must keep the name). */
const READING_STATEMENTS = new Set([
  'SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'ExplainStmt', 'DeclareCursorStmt', 'CopyStmt', 'PrepareStmt',
])

/** Views inside views are expanded this many levels deep at most (Postgres forbids cycles; this bounds the work). */
const MAX_DEPTH = 8

export interface InlinedText {
  text: string
  /** The views written in place, schema-qualified, each with the reference as the statement wrote it. */
  views: { view: Required<Pick<TableRef, 'schema' | 'name'>>; ref: TableRef }[]
}

export class ViewInliner {
  private readonly queries = new Map<string, string>()
  /** Schemas that hold a view of each name. */
  private readonly schemas = new Map<string, string[]>()

  set(schema: string, name: string, query: string): void {
    if (!this.queries.has(`${schema}.${name}`)) this.schemas.set(name, [...(this.schemas.get(name) ?? []), schema])
    this.queries.set(`${schema}.${name}`, query.trim().replace(/;\s*$/, ''))
  }

  clear(): void {
    this.queries.clear()
    this.schemas.clear()
  }

  /**
   * `sql` with every view it reads in a FROM clause replaced by the view's query, or undefined when it reads none.
   * An unqualified name is the view in `public`, or in the only schema with a view of that name.
   */
  inline(sql: string): InlinedText | undefined {
    if (this.queries.size === 0) return undefined
    let text = sql
    const views: InlinedText['views'] = []
    for (let depth = 0; depth < MAX_DEPTH && this.mentionsView(text); depth++) {
      const next = this.inlineOnceGuarded(text, views)
      if (next === undefined) break
      text = next
    }
    return views.length === 0 ? undefined : { text, views }
  }

  private mentionsView(text: string): boolean {
    const lower = text.toLowerCase()
    for (const name of this.schemas.keys()) if (lower.includes(name.toLowerCase())) return true
    return false
  }

  /** The tree walks recurse: a statement nested too deep for them gets Postgres' error, not a stack overflow. */
  private inlineOnceGuarded(sql: string, views: InlinedText['views']): string | undefined {
    try {
      return this.inlineOnce(sql, views)
    } catch (err) {
      if (err instanceof RangeError) throw new StatementTooComplexError()
      throw err
    }
  }

  private inlineOnce(sql: string, views: InlinedText['views']): string | undefined {
    const stmts = parseSql(sql).stmts ?? []
    const text = new StatementText(sql)
    const edits: { start: number; end: number; replacement: string }[] = []
    for (const raw of stmts) {
      if (raw.stmt === undefined || !READING_STATEMENTS.has(tagOf(raw.stmt))) continue
      const ctes = cteNames(raw.stmt)
      for (const rv of readRangeVars(raw.stmt)) {
        const found = this.resolve(rv, ctes)
        if (found === undefined || rv.location === undefined) continue
        const end = nameEnd(text, rv.location)
        if (end === undefined) continue
        const alias = rv.alias === undefined ? ` AS ${quoteIdent(rv.relname ?? '')}` : ''
        edits.push({ start: rv.location, end, replacement: `(${found.query})${alias}` })
        const ref: TableRef = { name: rv.relname ?? '' }
        if (rv.schemaname !== undefined) ref.schema = rv.schemaname
        views.push({ view: { schema: found.schema, name: ref.name }, ref })
      }
    }
    if (edits.length === 0) return undefined
    edits.sort((a, b) => a.start - b.start)
    let out = ''
    let at = 0
    for (const e of edits) {
      out += text.slice(at, e.start) + e.replacement
      at = e.end
    }
    return out + text.slice(at, text.bytes.length)
  }

  private resolve(rv: RangeVar, ctes: ReadonlySet<string>): { schema: string; query: string } | undefined {
    const name = rv.relname ?? ''
    if (rv.inh !== true || rv.catalogname !== undefined) return undefined
    let schema = rv.schemaname
    if (schema === undefined) {
      if (ctes.has(name)) return undefined
      const candidates = this.schemas.get(name) ?? []
      schema = candidates.includes('public') ? 'public' : candidates.length === 1 ? candidates[0] : undefined
      if (schema === undefined) return undefined
    }
    const query = this.queries.get(`${schema}.${name}`)
    return query === undefined ? undefined : { schema, query }
  }
}

/** The RangeVars a statement reads in FROM clauses (SELECT, JOIN, UPDATE … FROM, DELETE … USING, MERGE … USING). */
function readRangeVars(stmt: Node): RangeVar[] {
  const out: RangeVar[] = []
  const take = (items: (Node | undefined)[] | undefined) => {
    for (const item of items ?? []) {
      const rv = asNode(item, 'RangeVar')
      if (rv !== undefined) out.push(rv)
    }
  }
  walkAst(stmt, (tag, body) => {
    if (tag === 'SelectStmt') take((body as { fromClause?: Node[] }).fromClause)
    else if (tag === 'JoinExpr') take([(body as { larg?: Node }).larg, (body as { rarg?: Node }).rarg])
    else if (tag === 'UpdateStmt') take((body as { fromClause?: Node[] }).fromClause)
    else if (tag === 'DeleteStmt') take((body as { usingClause?: Node[] }).usingClause)
    else if (tag === 'MergeStmt') take([(body as { sourceRelation?: Node }).sourceRelation])
    return true
  })
  return out
}

function cteNames(stmt: Node): Set<string> {
  const names = new Set<string>()
  walkAst(stmt, (tag, body) => {
    if (tag === 'CommonTableExpr') names.add((body as { ctename?: string }).ctename ?? '')
    return true
  })
  return names
}

/** The byte offset just past a (possibly qualified, possibly quoted) relation name starting at `start`. */
function nameEnd(text: StatementText, start: number): number | undefined {
  const lexer = new SqlLexer(text.bytes, start)
  let end: number | undefined
  for (let expectName = true; ; expectName = !expectName) {
    const k = lexer.nextSignificant()
    if (expectName && (k === Tok.Ident || k === Tok.QuotedIdent)) end = lexer.end
    else if (!expectName && k === Tok.Dot) continue
    else return expectName ? undefined : end
  }
}
