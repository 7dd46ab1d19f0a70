// The unique constraints and unique indexes a DDL statement makes (CREATE TABLE's UNIQUE, PRIMARY KEY and EXCLUDE,
// CREATE UNIQUE INDEX, ALTER TABLE … ADD CONSTRAINT or ADD COLUMN … UNIQUE), with the plain columns each covers:
// on a sharded table, one whose columns leave out the sharding key holds on each shard alone.
import type { Constraint, IndexElem, Node } from 'libpg-query'
import type { TableRef } from '../StatementPlan.js'
import { asNode, stringList } from './AstNode.js'
import { tableRefOf } from './PinCollector.js'

export interface UniqueConstraint {
  table: TableRef
  /** The plain columns it covers (expressions left out). */
  columns: string[]
  /** How the client wrote it: `UNIQUE (email)`, `PRIMARY KEY (id)`, `unique index users_email`. */
  what: string
}

const KINDS: Record<string, string> = { CONSTR_UNIQUE: 'UNIQUE', CONSTR_PRIMARY: 'PRIMARY KEY', CONSTR_EXCLUSION: 'EXCLUDE' }

export function uniqueConstraints(stmt: Node): UniqueConstraint[] {
  const create = asNode(stmt, 'CreateStmt')
  if (create?.relation !== undefined) {
    const table = tableRefOf(create.relation)
    return (create.tableElts ?? []).flatMap((e) => {
      const column = asNode(e, 'ColumnDef')
      if (column !== undefined) return (column.constraints ?? []).flatMap((c) => ofConstraint(table, asNode(c, 'Constraint'), column.colname))
      return ofConstraint(table, asNode(e, 'Constraint'))
    })
  }
  const index = asNode(stmt, 'IndexStmt')
  if (index?.unique === true && index.relation !== undefined) {
    const columns = (index.indexParams ?? []).flatMap((p) => plainColumn(asNode(p, 'IndexElem')))
    return [{ table: tableRefOf(index.relation), columns, what: `unique index${index.idxname ? ` ${index.idxname}` : ''} (${columnsText(index.indexParams)})` }]
  }
  const alter = asNode(stmt, 'AlterTableStmt')
  if (alter?.relation !== undefined) {
    const table = tableRefOf(alter.relation)
    return (alter.cmds ?? []).flatMap((c) => {
      const cmd = asNode(c, 'AlterTableCmd')
      if (cmd?.subtype === 'AT_AddConstraint') return ofConstraint(table, asNode(cmd.def, 'Constraint'))
      const column = cmd?.subtype === 'AT_AddColumn' ? asNode(cmd.def, 'ColumnDef') : undefined
      return (column?.constraints ?? []).flatMap((k) => ofConstraint(table, asNode(k, 'Constraint'), column!.colname))
    })
  }
  return []
}

/** A UNIQUE, PRIMARY KEY or EXCLUDE constraint, of the column `column` when written with it. */
function ofConstraint(table: TableRef, c: Constraint | undefined, column?: string): UniqueConstraint[] {
  const kind = c?.contype === undefined ? undefined : KINDS[c.contype]
  // `… USING INDEX name` names no columns: that index was judged when it was made.
  if (c === undefined || kind === undefined || c.indexname !== undefined) return []
  if (column !== undefined) return [{ table, columns: [column], what: `${kind} (${column})` }]
  if (c.contype === 'CONSTR_EXCLUSION') {
    const elements = (c.exclusions ?? []).map((x) => asNode(asNode(x, 'List')?.items?.[0], 'IndexElem'))
    return [{ table, columns: elements.flatMap(plainColumn), what: `EXCLUDE (${elements.map((e) => e?.name ?? '…').join(', ')})` }]
  }
  const columns = stringList(c.keys) ?? []
  return [{ table, columns, what: `${kind} (${columns.join(', ')})` }]
}

function plainColumn(e: IndexElem | undefined): string[] {
  return e?.name !== undefined ? [e.name] : []
}

function columnsText(params: Node[] | undefined): string {
  return (params ?? []).map((p) => asNode(p, 'IndexElem')?.name ?? '…').join(', ')
}
