// The bodies of functions, procedures, DO blocks and views, as text the router can search for table names: what
// they read decides where they may run, but pgshard routes by the calling statement alone.
import type { Node } from 'libpg-query'
import type { TableRef } from '../StatementPlan.js'
import { asNode, stringList, walkAst } from './AstNode.js'
import { tableRefOf } from './PinCollector.js'

/** Languages whose bodies name tables as SQL does. */
const SQL_LANGUAGES = new Set(['sql', 'plpgsql'])

/**
 * The function a CREATE [OR REPLACE] FUNCTION/PROCEDURE defines: its name (lower case, schema dropped) and its
 * body (the source of `AS '…'`, or the table names of a `BEGIN ATOMIC` body); undefined for another statement
 * or a language whose body pgshard cannot read.
 */
export function definedFunction(stmt: Node): { name: string; body: string } | undefined {
  const create = asNode(stmt, 'CreateFunctionStmt')
  const name = stringList(create?.funcname)?.at(-1)?.toLowerCase()
  if (create === undefined || name === undefined) return undefined
  const option = (defname: string) => (create.options ?? []).map((o) => asNode(o, 'DefElem')).find((d) => d?.defname === defname)?.arg
  const language = asNode(option('language'), 'String')?.sval?.toLowerCase()
  if (language !== undefined && !SQL_LANGUAGES.has(language)) return undefined
  if (create.sql_body !== undefined) {
    const tables: string[] = []
    walkAst(create.sql_body, (tag, body) => {
      if (tag === 'RangeVar') tables.push((body as { relname?: string }).relname ?? '')
    })
    return { name, body: tables.join(' ') }
  }
  const source = stringList(asNode(option('as'), 'List')?.items)
  return source === null || source.length !== 1 ? undefined : { name, body: source[0]! }
}

/** The source of a DO block in PL/pgSQL (or SQL), which runs where the DO goes; undefined for another statement. */
export function doBlockBody(stmt: Node): string | undefined {
  const block = asNode(stmt, 'DoStmt')
  if (block === undefined) return undefined
  const arg = (name: string) => (block.args ?? []).map((a) => asNode(a, 'DefElem')).find((d) => d?.defname === name)?.arg
  const language = asNode(arg('language'), 'String')?.sval?.toLowerCase()
  if (language !== undefined && !SQL_LANGUAGES.has(language)) return undefined
  return asNode(arg('as'), 'String')?.sval
}

/**
 * The view (or materialized view) a CREATE defines, the tables its query names, and what inlining it needs: its
 * column names when the CREATE lists them, whether it is materialized, temporary or recursive.
 */
export function definedView(stmt: Node): DefinedView | undefined {
  const view = asNode(stmt, 'ViewStmt')
  const matview = asNode(stmt, 'CreateTableAsStmt')
  const target = view?.view ?? (matview?.objtype === 'OBJECT_MATVIEW' ? matview.into?.rel : undefined)
  const query = view?.query ?? matview?.query
  if (target === undefined || query === undefined) return undefined
  const tables: string[] = []
  let recursive = false
  walkAst(query, (tag, body) => {
    if (tag === 'RangeVar') tables.push((body as { relname?: string }).relname ?? '')
    if (tag === 'WithClause' && (body as { recursive?: boolean }).recursive === true) recursive = true
  })
  const columns = stringList(view?.aliases ?? matview?.into?.colNames) ?? []
  return {
    view: tableRefOf(target),
    body: tables.join(' '),
    columns,
    materialized: view === undefined,
    // CREATE RECURSIVE VIEW is a recursive WITH query around the view's own name.
    inlinable: view !== undefined && target.relpersistence !== 't' && !recursive && !columns.some((c) => c === '') && queryIsSelect(query),
    checkOption: view?.withCheckOption !== undefined && view.withCheckOption !== 'NO_CHECK_OPTION',
  }
}

export interface DefinedView {
  view: TableRef
  /** The names of the tables its query reads, space-separated. */
  body: string
  columns: string[]
  materialized: boolean
  /** A plain, permanent view whose query can stand in a FROM clause in its place. */
  inlinable: boolean
  checkOption: boolean
}

function queryIsSelect(query: Node): boolean {
  return asNode(query, 'SelectStmt') !== undefined
}
