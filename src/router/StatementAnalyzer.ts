// Statement text → StatementPlan: what the statement is, which tables it reads and writes, which key values pin it,
// how a cross-shard read would be merged, and what it does to session state. Independent of the shard map.
import type { CopyStmt, InsertStmt, Node, RangeVar, RawStmt, SelectStmt } from 'libpg-query'
import type { CopyShape, CursorUse, DetachedSubqueries, Hint, StatementKind, StatementPlan, TableRef, TxKind } from './StatementPlan.js'
import { assignmentsOf } from './ast/Assignments.js'
import { conflictTargetsOf } from './ast/ConflictTargets.js'
import { existenceTest } from './ast/ExistenceTest.js'
import { definedFunction, definedView, doBlockBody } from './ast/FunctionBody.js'
import { locateProbe, lockingReadProbe } from './ast/LocateProbe.js'
import { uniqueConstraints } from './ast/UniqueConstraints.js'
import { insertSelectOf } from './ast/InsertSelectRows.js'
import { insertSelectSources } from './ast/InsertSelectSources.js'
import { sequenceReadOf } from './ast/SequenceRead.js'
import { asNode, functionName, isRangeVar, stringList, tagOf, walkAst } from './ast/AstNode.js'
import { PinCollector, tableKey, tableRefOf, type ColumnValues } from './ast/PinCollector.js'
import { correlatedSubqueries, tiedJoin, tiedSubqueries } from './ast/CorrelatedSubqueries.js'
import { aggregatesInSubquery } from './AggregatesInSubquery.js'
import { declareOptions } from './ast/DeclareOptions.js'
import { detachedSubqueries } from './ast/DetachedSubqueries.js'
import { analyzeScopes, type FromSources, type ScopeAnalysis } from './ast/QueryScopes.js'
import { parseHints } from './HintParser.js'
import { insertRows } from './InsertRowsAnalyzer.js'
import { answeredByAnyShard, planScatter } from './ScatterPlanner.js'
import { planUnion } from './UnionPlanner.js'
import { sessionEffects } from './SessionEffects.js'
import { SqlLexer, Tok } from './SqlLexer.js'
import { quoteIdent } from './SqlQuoting.js'
import { parseSql, SqlAnalysisError, StatementTooComplexError } from './SqlParser.js'
import { StatementText } from './StatementText.js'
import { statementRange } from './StatementTexts.js'

const TX_KINDS: Record<string, { tx: TxKind; tag: string }> = {
  TRANS_STMT_BEGIN: { tx: 'begin', tag: 'BEGIN' },
  TRANS_STMT_START: { tx: 'begin', tag: 'START TRANSACTION' },
  TRANS_STMT_COMMIT: { tx: 'commit', tag: 'COMMIT' },
  TRANS_STMT_ROLLBACK: { tx: 'rollback', tag: 'ROLLBACK' },
  TRANS_STMT_SAVEPOINT: { tx: 'savepoint', tag: 'SAVEPOINT' },
  TRANS_STMT_RELEASE: { tx: 'release', tag: 'RELEASE' },
  TRANS_STMT_ROLLBACK_TO: { tx: 'rollback_to', tag: 'ROLLBACK' },
  TRANS_STMT_PREPARE: { tx: 'prepare_transaction', tag: 'PREPARE TRANSACTION' },
  TRANS_STMT_COMMIT_PREPARED: { tx: 'commit_prepared', tag: 'COMMIT PREPARED' },
  TRANS_STMT_ROLLBACK_PREPARED: { tx: 'rollback_prepared', tag: 'ROLLBACK PREPARED' },
}
const DML_KINDS: Record<string, StatementKind> = {
  InsertStmt: 'insert', UpdateStmt: 'update', DeleteStmt: 'delete', MergeStmt: 'merge',
}
const DDL_TAGS = new Set([
  'IndexStmt', 'RenameStmt', 'TruncateStmt', 'GrantStmt', 'GrantRoleStmt', 'CommentStmt', 'ViewStmt', 'RuleStmt',
  'CompositeTypeStmt', 'SecLabelStmt', 'RefreshMatViewStmt', 'DefineStmt', 'ReindexStmt', 'ClusterStmt', 'VacuumStmt',
])
// Command tags that the generic rule (CreateFooStmt → CREATE FOO) gets wrong.
const COMMAND_TAGS: Record<string, string> = {
  CreateStmt: 'CREATE TABLE', CreateTableAsStmt: 'SELECT', IndexStmt: 'CREATE INDEX', ViewStmt: 'CREATE VIEW',
  CreateSeqStmt: 'CREATE SEQUENCE', AlterSeqStmt: 'ALTER SEQUENCE', TruncateStmt: 'TRUNCATE TABLE', CommentStmt: 'COMMENT',
  DeclareCursorStmt: 'DECLARE CURSOR', ClosePortalStmt: 'CLOSE CURSOR', DoStmt: 'DO', CallStmt: 'CALL',
  LockStmt: 'LOCK TABLE', CheckPointStmt: 'CHECKPOINT', NotifyStmt: 'NOTIFY', ListenStmt: 'LISTEN',
  UnlistenStmt: 'UNLISTEN', PrepareStmt: 'PREPARE', ExecuteStmt: 'EXECUTE', ExplainStmt: 'EXPLAIN', CopyStmt: 'COPY',
  VariableShowStmt: 'SHOW', LoadStmt: 'LOAD', CreateSchemaStmt: 'CREATE SCHEMA', CreateFunctionStmt: 'CREATE FUNCTION',
  RuleStmt: 'CREATE RULE', CreateTrigStmt: 'CREATE TRIGGER', CreatedbStmt: 'CREATE DATABASE', DropdbStmt: 'DROP DATABASE',
}
/** ALTER TABLE|VIEW … RENAME TO: a view may be renamed by either. */
const RENAMED_RELATIONS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW'])
const DROPPABLE_RELATIONS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE', 'OBJECT_INDEX'])

/** The plan of `sql` (one or several statements). Throws SqlSyntaxError, or InvalidHintError for a bad hint. */
export function analyzeStatement(sql: string): StatementPlan {
  try {
    return analyze(sql)
  } catch (err) {
    // The tree walks recurse: a pathologically nested statement must not take the proxy down.
    if (err instanceof RangeError) throw new StatementTooComplexError()
    throw err
  }
}

function analyze(sql: string): StatementPlan {
  const hints = parseHints(sql)
  const stmts = /^\s*$/.test(sql) ? [] : (parseSql(sql).stmts ?? [])
  if (stmts.length === 0) return emptyPlan(hints)
  const text = new StatementText(sql)
  const plans = stmts.map((raw) => analyzeOne(raw, text, stmts.length === 1))
  if (plans.length === 1) {
    const plan = { ...plans[0]!, hints }
    // A hint in the PREPARE text is meant for the query it prepares.
    if (plan.prepared !== undefined) plan.prepared = { ...plan.prepared, hints }
    const detached = detachedOf(plan, stmts[0]!, text) ?? aggregatesReadFirst(plan, stmts[0]!, text)
    if (detached !== undefined) plan.detached = detached
    return plan
  }
  return combine(plans, hints)
}

const DETACHING_KINDS = new Set<StatementKind>(['select', 'insert', 'update', 'delete'])

/**
 * A read the merge cannot answer for its expressions over aggregates: the subquery computing the bare aggregates
 * of the statement written with them in FROM (AggregatesInSubquery), to be read first.
 */
function aggregatesReadFirst(plan: StatementPlan, raw: RawStmt, text: StatementText): DetachedSubqueries | undefined {
  const select = asNode(raw.stmt, 'SelectStmt')
  // Unmergeable, or planned as each shard's whole groups, which holds only when they are grouped by a key.
  const unmerged = plan.unmergeable !== undefined || plan.scatter?.sources.wholeGroups !== undefined
  if (!unmerged || select === undefined || plan.cursor !== undefined) return undefined
  const [start, end] = statementRange(raw, text)
  return derivedAnalysis(() => {
    const written = aggregatesInSubquery(select, text, start, end)
    return written === undefined ? undefined : analyze(written).detached
  })
}

/**
 * The statement's self-contained subqueries (DetachedSubqueries), each with its plan, and the plan of the statement
 * without them. Not in a cursor's query (its rows are read later), nor in an existence test (every shard answers
 * it for its own rows).
 */
function detachedOf(plan: StatementPlan, raw: RawStmt, text: StatementText): DetachedSubqueries | undefined {
  if (!DETACHING_KINDS.has(plan.kind) || plan.cursor !== undefined || raw.stmt === undefined) return undefined
  const select = asNode(raw.stmt, 'SelectStmt')
  if (select !== undefined && existenceTest(select) !== undefined) return undefined
  const stmt = raw.stmt
  return derivedAnalysis(() => {
    const spans = detachedSubqueries(stmt, text, statementRange(raw, text)[1]).sort((a, b) => a.start - b.start)
    if (spans.length === 0) return undefined
    const parts: string[] = []
    let at = 0
    for (const span of spans) {
      parts.push(text.slice(at, span.start))
      at = span.end
    }
    parts.push(text.slice(at, text.bytes.length))
    const subqueries = spans.map((span) => {
      const sql = text.slice(span.start, span.end)
      return { sql, form: span.form, plan: analyze(sql) }
    })
    return { parts, subqueries, outer: analyze(parts.join('SELECT NULL')) }
  })
}

/**
 * `INSERT … SELECT constants WHERE false`: how pgshard writes in the rows of an INSERT it read first (its 'values'
 * subquery) when there are none.
 */
function insertsNoRows(insert: InsertStmt): boolean {
  const select = asNode(insert.selectStmt, 'SelectStmt')
  const where = asNode(select?.whereClause, 'A_Const')
  return select !== undefined && (select.fromClause?.length ?? 0) === 0 && where?.boolval !== undefined && where.boolval.boolval !== true
}

/**
 * The search for subqueries to read first, and the analysis of the texts pgshard cuts from or writes over the
 * client's (which parses): one the parser refuses, or too deep to walk, is none (the statement is then routed as it
 * is written), never the client's statement refused.
 */
function derivedAnalysis<T>(work: () => T): T | undefined {
  try {
    return work()
  } catch (err) {
    if (err instanceof SqlAnalysisError || err instanceof RangeError) return undefined
    throw err
  }
}

function emptyPlan(hints: Hint[]): StatementPlan {
  return {
    kind: 'empty', commandTag: '', tables: [], writtenTables: [], functions: [], writes: false, pins: [], session: [],
    hints, multiStatement: false, paramCount: 0,
  }
}

interface TreeFacts {
  tables: TableRef[]
  unregistered: TableRef[]
  functions: string[]
  paramCount: number
  /** Every table reference (CTE names excluded), in the order written. */
  rangeVars: RangeVar[]
  lockingClause: boolean
  nestedWrite: boolean
  written: TableRef[]
}

function treeFacts(stmt: Node, cteRefs: ReadonlySet<object>, registered: ReadonlySet<object>): TreeFacts {
  const facts: TreeFacts = {
    tables: [], unregistered: [], functions: [], paramCount: 0, rangeVars: [], lockingClause: false, nestedWrite: false, written: [],
  }
  const functions = new Set<string>()
  const top = tagOf(stmt)
  walkAst(stmt, (tag, body) => {
    switch (tag) {
      case 'RangeVar':
        if (isRangeVar(body) && !cteRefs.has(body)) {
          facts.rangeVars.push(body)
          facts.tables.push(tableRefOf(body))
          if (!registered.has(body)) facts.unregistered.push(tableRefOf(body))
        }
        return true
      case 'LockingClause':
        facts.lockingClause = true
        return false // FOR UPDATE OF a: `a` is an alias, not a table
      case 'FuncCall':
        functions.add(functionName((body as { funcname?: Node[] }).funcname))
        return true
      case 'ParamRef':
        facts.paramCount = Math.max(facts.paramCount, (body as { number?: number }).number ?? 0)
        return true
    }
    if (DML_KINDS[tag] !== undefined) {
      if (tag !== top) facts.nestedWrite = true
      const relation = (body as { relation?: unknown }).relation
      if (isRangeVar(relation)) facts.written.push(tableRefOf(relation))
    }
    return true
  })
  // CALL holds its call untagged (CallStmt.funccall): the procedure is a function called too.
  const call = asNode(stmt, 'CallStmt')?.funccall
  if (call !== undefined) functions.add(functionName(call.funcname))
  facts.functions = [...functions]
  return facts
}

function analyzeOne(raw: RawStmt, text: StatementText, single: boolean): StatementPlan {
  const stmt = raw.stmt ?? ({} as Node)
  const [start, end] = statementRange(raw, text)
  const scopes = analyzeScopes(stmt)
  const typeName = compositeTypeName(stmt)
  const notTables = typeName === undefined ? scopes.cteRefs : new Set([...scopes.cteRefs, typeName])
  const facts = treeFacts(stmt, notTables, new Set(scopes.uses.map((u) => u.rv)))
  const pins = new PinCollector()
  for (const use of scopes.uses) pins.add(use.table, use.columns)
  for (const table of facts.unregistered) pins.add(table, new Map())
  const tag = tagOf(stmt)
  const plan: StatementPlan = {
    kind: 'utility',
    commandTag: commandTagOf(tag, stmt),
    tables: uniqueTables(facts.tables),
    writtenTables: uniqueTables(facts.written),
    functions: facts.functions,
    writes: true,
    pins: pins.pins(),
    session: sessionEffects(stmt, text, start, end),
    hints: [],
    multiStatement: false,
    paramCount: facts.paramCount,
  }
  if (DML_KINDS[tag] !== undefined || facts.nestedWrite) {
    const assignments = assignmentsOf(stmt)
    if (assignments.length > 0) plan.assignments = assignments
    const conflictTargets = conflictTargetsOf(stmt)
    if (conflictTargets.length > 0) plan.conflictTargets = conflictTargets
  }
  const select = asNode(stmt, 'SelectStmt')
  if (select !== undefined) {
    plan.kind = 'select'
    plan.writes = facts.lockingClause || facts.nestedWrite || select.intoClause !== undefined
    if (select.intoClause?.rel !== undefined) plan.writtenTables = uniqueTables([...plan.writtenTables, tableRefOf(select.intoClause.rel)])
    addScatter(plan, select, text, start, end, single, scopes, facts.rangeVars)
    const sequenceRead = sequenceReadOf(select)
    if (sequenceRead !== undefined) plan.sequenceRead = sequenceRead
    const probe = lockingReadProbe(select, text, start, end)
    if (probe !== undefined) plan.locate = probe
    return plan
  }
  const dml = DML_KINDS[tag]
  if (dml !== undefined) {
    plan.kind = dml
    const target = asNode(stmt, 'InsertStmt') ?? asNode(stmt, 'UpdateStmt') ?? asNode(stmt, 'DeleteStmt') ?? asNode(stmt, 'MergeStmt')
    if ((target?.returningClause?.exprs?.length ?? 0) > 0) plan.returning = true
    const insert = asNode(stmt, 'InsertStmt')
    if (insert?.override === 'OVERRIDING_USER_VALUE') plan.overridingUser = true
    // The table named again as the INSERT names it (in a SELECT, a WITH query, a subquery): one use of it for the
    // router, whose key the inserted rows would pin.
    const inserted = insert?.relation === undefined ? undefined : tableKey(tableRefOf(insert.relation))
    if (inserted !== undefined && facts.rangeVars.filter((rv) => tableKey(tableRefOf(rv)) === inserted).length > 1) plan.insertReadsTarget = true
    const rows = insert !== undefined ? insertRows(insert, text, end) : undefined
    if (rows !== undefined) plan.insert = rows
    else if (insert !== undefined) {
      plan.insertColumns = (insert.cols ?? []).map((c) => asNode(c, 'ResTarget')?.name ?? '')
      const sources = insertSelectSources(asNode(insert.selectStmt, 'SelectStmt'))
      if (sources !== undefined) plan.insertSources = sources
      const rowsOf = insertSelectOf(insert, text, end)
      if (rowsOf !== undefined) plan.insertSelect = rowsOf
      if (insertsNoRows(insert)) plan.insertsNoRows = true
    }
    const probe = dml === 'update' || dml === 'delete' ? locateProbe(stmt, text, end) : undefined
    if (probe !== undefined) plan.locate = probe
    addWriteTies(plan, stmt, facts.rangeVars)
    return plan
  }
  const tx = asNode(stmt, 'TransactionStmt')
  if (tx !== undefined) {
    const kind = TX_KINDS[tx.kind ?? '']
    plan.kind = 'transaction'
    if (kind !== undefined) {
      plan.tx = kind.tx
      plan.commandTag = kind.tag
    }
    if (kind?.tx === 'begin') {
      plan.txReadOnly = readOnlyOption(tx.options) ?? false
      plan.txIsolation = isolationOption(tx.options)
    }
    if (tx.savepoint_name !== undefined) plan.savepoint = tx.savepoint_name
    if (tx.chain === true) plan.txChain = true
    return plan
  }
  const cursor = cursorOf(stmt, text, start, end)
  if (cursor !== undefined) plan.cursor = cursor
  const block = doBlockBody(stmt)
  if (block !== undefined) plan.doBody = block.toLowerCase()
  const set = asNode(stmt, 'VariableSetStmt')
  if (set !== undefined) {
    plan.kind = 'set'
    // SET TRANSACTION READ ONLY / ISOLATION LEVEL … changes where the transaction's statements may run.
    if (set.kind === 'VAR_SET_MULTI' && set.name?.toLowerCase() === 'transaction') {
      plan.txReadOnly = readOnlyOption(set.args)
      plan.txIsolation = isolationOption(set.args)
    }
    return plan
  }
  if (tag === 'VariableShowStmt') {
    plan.kind = 'show'
    plan.writes = false
    return plan
  }
  const copy = asNode(stmt, 'CopyStmt')
  if (copy !== undefined) {
    plan.kind = copy.is_from === true ? 'copy_from' : 'copy_to'
    plan.writes = copy.is_from === true || facts.nestedWrite
    if (copy.is_from === true && copy.relation !== undefined) {
      plan.writtenTables = [tableRefOf(copy.relation)]
      plan.copy = copyShape(copy)
    }
    if (!plan.writes) {
      plan.copy = copyShape(copy)
      const why = copyOutUnmergeable(copy, plan.copy)
      if (why !== null) plan.unmergeable = why
      // Its joins and subqueries are checked as a read's: each shard must find every row of the answer it gives.
      const query = why === null ? asNode(copy.query, 'SelectStmt') : undefined
      const span = query === undefined ? null : parenthesized(text, start, end)
      if (span !== null) addScatter(plan, query!, text, span.start, span.end, single, analyzeScopes(copy.query!), facts.rangeVars)
    }
    return plan
  }
  const explain = asNode(stmt, 'ExplainStmt')
  if (explain !== undefined) {
    const analyze = (explain.options ?? []).some((o) => asNode(o, 'DefElem')?.defname === 'analyze' && optionIsOn(asNode(o, 'DefElem')?.arg))
    plan.writes = analyze && (facts.nestedWrite || facts.lockingClause)
    plan.writtenTables = plan.writes ? plan.writtenTables : []
    if (!plan.writes) plan.unmergeable = 'EXPLAIN across shards'
    // EXPLAIN of a read: each shard explains its part of it, in text (the other formats would need merging).
    const query = asNode(explain.query, 'SelectStmt')
    const format = (explain.options ?? []).map((o) => asNode(o, 'DefElem')).find((o) => o?.defname === 'format')
    const inText = format === undefined || (asNode(format.arg, 'String')?.sval ?? '').toLowerCase() === 'text'
    const at = query === undefined || plan.writes ? -1 : explainedQueryStart(text, start, end)
    if (!inText) plan.unmergeable = 'EXPLAIN across shards in a format other than TEXT'
    else if (!analyze && facts.nestedWrite) plan.explainsWrite = true
    else if (at >= 0) {
      addScatter(plan, query!, text, at, end, single, analyzeScopes(explain.query!), facts.rangeVars)
      if (plan.scatter !== undefined) plan.scatter = { ...plan.scatter, explain: text.slice(start, at).trimEnd() }
    }
    return plan
  }
  const prepare = asNode(stmt, 'PrepareStmt')
  if (prepare !== undefined) {
    // The prepared query does not run now; EXECUTE is routed by its plan, kept here for the engine's record.
    Object.assign(plan, { tables: [], writtenTables: [], functions: [], pins: [], paramCount: 0 })
    const at = queryAfterAs(text, start, end)
    if (prepare.query !== undefined && at >= 0) {
      plan.prepared = analyzeOne({ stmt: prepare.query, stmt_location: at, stmt_len: end - at }, text, single)
    }
    return plan
  }
  if (/^(Create|Alter|Drop)/.test(tag) || DDL_TAGS.has(tag)) {
    plan.kind = 'ddl'
    plan.writtenTables = uniqueTables([...ddlTargets(stmt), ...plan.writtenTables])
    plan.tables = uniqueTables([...plan.tables, ...plan.writtenTables])
    // Sequences are on every shard (a serial column of a sharded or reference table has one on each): DDL on a
    // sequence names no table for the router, and goes where its tables go, or to every shard.
    const sequences = new Set(sequenceRefs(stmt).map(tableKey))
    if (sequences.size > 0) {
      plan.tables = plan.tables.filter((t) => !sequences.has(tableKey(t)))
      plan.writtenTables = plan.writtenTables.filter((t) => !sequences.has(tableKey(t)))
    }
    if (outsideTransactionBlock(stmt)) plan.outsideTransactionBlock = true
    const uniqueness = uniqueConstraints(stmt)
    if (uniqueness.length > 0) plan.uniqueness = uniqueness
    const defines = definedFunction(stmt)
    if (defines !== undefined) plan.defines = defines
    const partition = partitionOf(stmt)
    if (partition !== undefined) plan.partitionOf = partition
    const rename = asNode(stmt, 'RenameStmt')
    if (rename?.relation !== undefined && rename.newname !== undefined && RENAMED_RELATIONS.has(rename.renameType ?? '')) {
      plan.renamed = { from: tableRefOf(rename.relation), to: rename.newname }
    }
    const view = definedView(stmt)
    if (view !== undefined) {
      const query = view.inlinable ? viewQuery(text, start, end, view.checkOption) : undefined
      plan.definesView = { view: view.view, body: view.body, materialized: view.materialized }
      if (query !== undefined) plan.definesView.query = view.columns.length === 0 ? query : `SELECT * FROM (${query}) AS ${quoteIdent(view.view.name)} (${view.columns.map(quoteIdent).join(', ')})`
    }
  }
  return plan
}

function addScatter(
  plan: StatementPlan,
  s: SelectStmt,
  text: StatementText,
  start: number,
  end: number,
  single: boolean,
  scopes: ScopeAnalysis,
  rangeVars: RangeVar[],
): void {
  if (!single) return
  const from = scopes.from
  // The tables each level reads itself, and those its tied subqueries read (the planner describes both).
  const own = new Set<RangeVar>()
  const addLevel = (level: FromSources, select: SelectStmt): void => {
    for (const r of level.relations) own.add(r.rv)
    for (const c of correlatedSubqueries(select, level)) for (const rv of c.rvs) own.add(rv)
    for (const d of level.derived) addLevel(d.from, d.select)
  }
  if (from !== undefined) addLevel(from, s)
  for (const b of scopes.branches ?? []) addLevel(b.from, b.select)
  // The table of an existence test is read by every shard for its own rows: the answers are ORed.
  const existence = existenceTest(s)
  const nested = rangeVars.filter((rv) => !own.has(rv) && rv !== existence?.table).map(tableRefOf)
  const result = scopes.branches !== undefined ? planUnion(s, text, start, end, scopes.branches, nested) : planScatter(s, text, start, end, from, nested)
  if ('scatter' in result) plan.scatter = existence === undefined ? result.scatter : answeredByAnyShard(result.scatter, existence.form)
  else plan.unmergeable = result.unmergeable
}

/**
 * An UPDATE's or DELETE's subqueries tied to its target table (`UPDATE customers SET name = (SELECT … FROM orders
 * U0 WHERE U0.customer_id = customers.id …) WHERE customers.id = 4`), and the tables its FROM or USING joins to it,
 * for the router to carry the target's pin to them and to tell whether each shard writes exactly its part;
 * `named`: every table the statement names.
 */
function addWriteTies(plan: StatementPlan, stmt: Node, rangeVars: RangeVar[]): void {
  const update = asNode(stmt, 'UpdateStmt')
  const write = update ?? asNode(stmt, 'DeleteStmt')
  const rv = write?.relation
  if (rv === undefined) return
  const refnames = [rv.alias?.aliasname ?? rv.relname ?? '']
  const tied = tiedSubqueries({ where: write!.whereClause, expressions: [update?.targetList], laterals: [] }, refnames)
  // UPDATE … FROM and DELETE … USING join their tables to the target as a subquery tied by the WHERE clause would.
  const joined = update?.fromClause ?? asNode(stmt, 'DeleteStmt')?.usingClause
  const join = joined !== undefined && joined.length > 0 ? tiedJoin(joined, write!.whereClause, refnames) : undefined
  if (join !== undefined) tied.push(join)
  if (tied.length === 0) return
  plan.writeTies = { relations: [tableRefOf(rv)], correlated: tied.map(({ tables, ties }) => ({ tables, ties })), named: rangeVars.map(tableRefOf) }
}

/** Where the query of `EXPLAIN [(options)] [ANALYZE] [VERBOSE] query` starts, or -1. */
function explainedQueryStart(text: StatementText, start: number, end: number): number {
  const lexer = new SqlLexer(text.bytes, start, end)
  let k = lexer.nextSignificant()
  if (!lexer.isWord('explain')) return -1
  k = lexer.nextSignificant()
  if (k === Tok.LParen) {
    for (let depth = 1; depth > 0; ) {
      k = lexer.nextSignificant()
      if (k === Tok.End || k === Tok.Error) return -1
      if (k === Tok.LParen) depth++
      else if (k === Tok.RParen) depth--
    }
    k = lexer.nextSignificant()
  }
  while (lexer.isWord('analyze') || lexer.isWord('analyse') || lexer.isWord('verbose')) k = lexer.nextSignificant()
  return k === Tok.End || k === Tok.Error ? -1 : lexer.start
}

/** Where the query of `PREPARE name [(types)] AS query` or `CREATE VIEW name [(columns)] AS query` starts, or -1. */
function queryAfterAs(text: StatementText, start: number, end: number): number {
  const lexer = new SqlLexer(text.bytes, start, end)
  let depth = 0
  for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
    if (k === Tok.LParen) depth++
    else if (k === Tok.RParen) depth--
    else if (depth === 0 && lexer.isWord('as')) return lexer.nextSignificant() === Tok.End ? -1 : lexer.start
  }
  return -1
}

/** The text of a CREATE VIEW's query: after its AS, without a trailing WITH [CASCADED | LOCAL] CHECK OPTION. */
function viewQuery(text: StatementText, start: number, end: number, checkOption: boolean): string | undefined {
  const at = queryAfterAs(text, start, end)
  if (at < 0) return undefined
  let last = end
  if (checkOption) {
    const lexer = new SqlLexer(text.bytes, at, end)
    const words: number[] = []
    for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
      if (lexer.isWord('with')) words.push(lexer.start)
    }
    last = words.at(-1) ?? end
  }
  return text.slice(at, last).trimEnd()
}

/** The text inside the first parentheses of a statement (COPY's query), or null. */
function parenthesized(text: StatementText, start: number, end: number): { start: number; end: number } | null {
  const lexer = new SqlLexer(text.bytes, start, end)
  let depth = 0
  let from = -1
  for (let k = lexer.nextSignificant(); k !== Tok.End && k !== Tok.Error; k = lexer.nextSignificant()) {
    if (k === Tok.LParen && depth++ === 0) from = lexer.end
    else if (k === Tok.RParen && --depth === 0) return { start: from, end: lexer.start }
  }
  return null
}

/**
 * Why the output of COPY … TO across shards is not just every shard's output one after the other (null when it
 * is): a whole table, or a query that only filters and picks columns, in text or CSV.
 */
function copyOutUnmergeable(copy: CopyStmt, shape: CopyShape): string | null {
  if (!shape.stdin) return 'COPY … TO a file on the server across shards'
  if (shape.format === 'binary') return 'binary COPY … TO across shards'
  if (copy.query === undefined) return null
  const query = asNode(copy.query, 'SelectStmt')
  const plain =
    query !== undefined &&
    (query.op ?? 'SETOP_NONE') === 'SETOP_NONE' &&
    !query.sortClause && !query.limitCount && !query.limitOffset && !query.distinctClause && !query.groupClause && !query.havingClause && !query.windowClause &&
    !(query.targetList ?? []).some((target) => {
      let calls = false
      walkAst(target, (tag) => {
        if (tag === 'FuncCall' || tag === 'SubLink') calls = true
        return !calls
      })
      return calls
    })
  return plain ? null : 'COPY (query) TO across shards, for a query that does more than filter and pick columns (a function call, ORDER BY, LIMIT, DISTINCT, GROUP BY …)'
}

/** COPY … FROM's table, columns and format options, with Postgres's defaults for those not given. */
function copyShape(copy: CopyStmt): CopyShape {
  const option = new Map<string, Node | undefined>()
  for (const o of copy.options ?? []) {
    const def = asNode(o, 'DefElem')
    if (def?.defname !== undefined) option.set(def.defname, def.arg)
  }
  const text = (name: string): string | undefined => {
    const arg = option.get(name)
    return arg === undefined ? undefined : (asNode(arg, 'String')?.sval ?? undefined)
  }
  const format = (text('format') ?? 'text').toLowerCase()
  const csv = format === 'csv'
  const quote = text('quote') ?? '"'
  const header = option.get('header')
  const rel = copy.relation
  return {
    table: rel === undefined ? '' : [rel.schemaname, rel.relname].filter((n): n is string => n !== undefined).map(quoteIdent).join('.'),
    columns: copy.attlist === undefined ? null : stringList(copy.attlist),
    stdin: copy.filename === undefined && copy.is_program !== true,
    format: csv ? 'csv' : format === 'binary' ? 'binary' : 'text',
    delimiter: text('delimiter') ?? (csv ? ',' : '\t'),
    quote,
    escape: text('escape') ?? quote,
    nullText: text('null') ?? (csv ? '' : '\\N'),
    header: option.has('header') && (header === undefined || headerOn(header)),
  }
}

/** HEADER true / on / 1 / match; false / off / 0 (the grammar gives a Boolean, an Integer or a String). */
function headerOn(arg: Node): boolean {
  const b = asNode(arg, 'Boolean')
  if (b !== undefined) return b.boolval === true
  const i = asNode(arg, 'Integer')
  if (i !== undefined) return (i.ival ?? 0) !== 0
  return !['false', 'off', '0', 'no'].includes((asNode(arg, 'String')?.sval ?? '').toLowerCase())
}

/** READ ONLY / READ WRITE among a transaction's options; undefined when neither is named. */
function readOnlyOption(options: Node[] | undefined): boolean | undefined {
  let readOnly: boolean | undefined
  for (const o of options ?? []) {
    const def = asNode(o, 'DefElem')
    if (def?.defname === 'transaction_read_only') readOnly = asNode(def.arg, 'A_Const')?.ival?.ival === 1
  }
  return readOnly
}

/** BEGIN ISOLATION LEVEL …: the level named, lower case; undefined when the session's default applies. */
function isolationOption(options: Node[] | undefined): string | undefined {
  let level: string | undefined
  for (const o of options ?? []) {
    const def = asNode(o, 'DefElem')
    if (def?.defname === 'transaction_isolation') level = asNode(def.arg, 'A_Const')?.sval?.sval?.toLowerCase()
  }
  return level
}

/** EXPLAIN (ANALYZE) / (ANALYZE true) are on, (ANALYZE false) / (ANALYZE off) are not. */
function optionIsOn(arg: Node | undefined): boolean {
  if (arg === undefined) return true
  const c = asNode(arg, 'A_Const')
  if (c?.boolval !== undefined) return c.boolval.boolval === true
  const s = (c?.sval?.sval ?? asNode(arg, 'String')?.sval ?? '').toLowerCase()
  return !['false', 'off', '0', 'no'].includes(s)
}

/** The relations a DDL statement creates, alters or drops (not those it only references, like FK targets). */
/** The partition a CREATE TABLE … PARTITION OF or an ALTER TABLE … ATTACH PARTITION makes, and its table. */
function partitionOf(stmt: Node): { child: TableRef; parent: TableRef } | undefined {
  const create = asNode(stmt, 'CreateStmt')
  const parent = asNode(create?.inhRelations?.[0], 'RangeVar')
  if (create?.partbound !== undefined && create.relation !== undefined && parent !== undefined) return { child: tableRefOf(create.relation), parent: tableRefOf(parent) }
  const alter = asNode(stmt, 'AlterTableStmt')
  for (const c of alter?.cmds ?? []) {
    const cmd = asNode(c, 'AlterTableCmd')
    const attached = cmd?.subtype === 'AT_AttachPartition' ? asNode(cmd.def, 'PartitionCmd')?.name : undefined
    if (attached !== undefined && alter!.relation !== undefined) return { child: tableRefOf(attached), parent: tableRefOf(alter!.relation) }
  }
  return undefined
}

/** The sequences a statement names as such: CREATE/ALTER/DROP/RENAME SEQUENCE, ALTER SEQUENCE … OWNER, GRANT ON SEQUENCE. */
function sequenceRefs(stmt: Node): TableRef[] {
  const create = asNode(stmt, 'CreateSeqStmt') ?? asNode(stmt, 'AlterSeqStmt')
  if (create?.sequence !== undefined) return [tableRefOf(create.sequence)]
  const drop = asNode(stmt, 'DropStmt')
  if (drop?.removeType === 'OBJECT_SEQUENCE') return ddlTargets(stmt)
  const alter = asNode(stmt, 'AlterTableStmt')
  if (alter?.objtype === 'OBJECT_SEQUENCE' && alter.relation !== undefined) return [tableRefOf(alter.relation)]
  const rename = asNode(stmt, 'RenameStmt')
  if (rename?.renameType === 'OBJECT_SEQUENCE' && rename.relation !== undefined) return [tableRefOf(rename.relation)]
  const grant = asNode(stmt, 'GrantStmt')
  if (grant?.objtype === 'OBJECT_SEQUENCE') return (grant.objects ?? []).flatMap((o) => { const rv = asNode(o, 'RangeVar'); return rv ? [tableRefOf(rv)] : [] })
  return []
}

/**
 * The name of a composite type in CREATE TYPE … AS (…) and ALTER TYPE … ATTRIBUTE, which Postgres parses as a
 * relation: a type like any other (on every shard, for the tables that use it), not a table.
 */
function compositeTypeName(stmt: Node): RangeVar | undefined {
  const alter = asNode(stmt, 'AlterTableStmt')
  if (alter?.objtype === 'OBJECT_TYPE') return alter.relation
  const rename = asNode(stmt, 'RenameStmt')
  if (rename?.relationType === 'OBJECT_TYPE') return rename.relation
  return asNode(stmt, 'CompositeTypeStmt')?.typevar
}

function ddlTargets(stmt: Node): TableRef[] {
  const targets: TableRef[] = []
  if (compositeTypeName(stmt) !== undefined) return targets
  const drop = asNode(stmt, 'DropStmt')
  if (drop !== undefined) {
    if (!DROPPABLE_RELATIONS.has(drop.removeType ?? '')) return targets
    for (const o of drop.objects ?? []) {
      const names = stringList(asNode(o, 'List')?.items)
      if (names === null || names.length === 0 || names.length > 2) continue
      targets.push(names.length === 2 ? { schema: names[0]!, name: names[1]! } : { name: names[0]! })
    }
    return targets
  }
  const body = Object.values(stmt)[0] as Record<string, unknown>
  for (const key of ['relation', 'view', 'sequence']) {
    const rv = body[key]
    if (isRangeVar(rv)) targets.push(tableRefOf(rv))
  }
  const into = (body['into'] as { rel?: unknown } | undefined)?.rel
  if (isRangeVar(into)) targets.push(tableRefOf(into))
  for (const key of ['relations', 'objects']) {
    for (const n of (body[key] as Node[] | undefined) ?? []) {
      const rv = asNode(n, 'RangeVar')
      if (rv !== undefined) targets.push(tableRefOf(rv))
    }
  }
  for (const n of asNode(stmt, 'VacuumStmt')?.rels ?? []) {
    const rv = asNode(n, 'VacuumRelation')?.relation
    if (isRangeVar(rv)) targets.push(tableRefOf(rv))
  }
  return targets
}

/** The SQL cursor a DECLARE creates, a FETCH or MOVE reads, or a CLOSE ends. */
function cursorOf(stmt: Node, text: StatementText, start: number, end: number): CursorUse | undefined {
  const declare = asNode(stmt, 'DeclareCursorStmt')
  if (declare?.portalname !== undefined) {
    const from = declaredQueryStart(text, start, end)
    return {
      use: 'declare',
      name: declare.portalname,
      declare: { ...declareOptions(declare.options), query: from === undefined ? '' : text.slice(from, end).trim() },
    }
  }
  const fetch = asNode(stmt, 'FetchStmt')
  if (fetch?.portalname !== undefined) {
    // The parser's type allows a bigint (the server's FETCH_ALL is LONG_MAX): anything that large means ALL.
    const howMany = Number(fetch.howMany ?? 0)
    const forward = (fetch.direction ?? 'FETCH_FORWARD') === 'FETCH_FORWARD' && howMany > 0
    return { use: 'fetch', name: fetch.portalname, fetch: { forward, count: howMany >= FETCH_ALL ? 'all' : howMany, move: fetch.ismove === true } }
  }
  const close = asNode(stmt, 'ClosePortalStmt')
  if (close !== undefined) return { use: 'close', name: close.portalname ?? null }
  return undefined
}

/** FETCH ALL's count as the parser reports it. */
const FETCH_ALL = 2147483647

/**
 * Where the query of `DECLARE name [options] CURSOR [WITH[OUT] HOLD] FOR query` starts: after the first FOR
 * following the CURSOR keyword (the name, which may itself be the word cursor, is skipped).
 */
function declaredQueryStart(text: StatementText, start: number, end: number): number | undefined {
  const lexer = new SqlLexer(text.bytes, start, end)
  lexer.nextSignificant()
  lexer.nextSignificant()
  let cursor = false
  for (let k = lexer.nextSignificant(); k !== Tok.End; k = lexer.nextSignificant()) {
    if (!cursor) cursor = lexer.isWord('cursor')
    else if (lexer.isWord('for')) return lexer.end
  }
  return undefined
}

function commandTagOf(tag: string, stmt: Node): string {
  if (tag === 'SelectStmt') return 'SELECT'
  const dml = DML_KINDS[tag]
  if (dml !== undefined) return dml.toUpperCase()
  if (tag === 'VariableSetStmt') {
    const kind = asNode(stmt, 'VariableSetStmt')?.kind
    return kind === 'VAR_RESET' || kind === 'VAR_RESET_ALL' ? 'RESET' : 'SET'
  }
  const discard = asNode(stmt, 'DiscardStmt')
  if (discard !== undefined) return `DISCARD ${(discard.target ?? 'DISCARD_ALL').replace('DISCARD_', '')}`
  const dealloc = asNode(stmt, 'DeallocateStmt')
  if (dealloc !== undefined) return dealloc.isall === true ? 'DEALLOCATE ALL' : 'DEALLOCATE'
  const fetch = asNode(stmt, 'FetchStmt')
  if (fetch !== undefined) return fetch.ismove === true ? 'MOVE' : 'FETCH'
  const grant = asNode(stmt, 'GrantStmt')
  if (grant !== undefined) return grant.is_grant === true ? 'GRANT' : 'REVOKE'
  const drop = asNode(stmt, 'DropStmt')
  if (drop !== undefined) return `DROP ${(drop.removeType ?? '').replace('OBJECT_', '').replaceAll('_', ' ')}`
  const known = COMMAND_TAGS[tag]
  if (known !== undefined) return known
  const vacuum = asNode(stmt, 'VacuumStmt')
  if (vacuum !== undefined) return vacuum.is_vacuumcmd === true ? 'VACUUM' : 'ANALYZE'
  // CreateExtensionStmt → CREATE EXTENSION, AlterTableStmt → ALTER TABLE.
  return tag.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase()
}

/** Statements Postgres refuses inside a transaction block: on several shards they run without one. */
function outsideTransactionBlock(stmt: Node): boolean {
  const vacuum = asNode(stmt, 'VacuumStmt')
  if (vacuum !== undefined) return vacuum.is_vacuumcmd === true
  const concurrent = asNode(stmt, 'IndexStmt')?.concurrent ?? asNode(stmt, 'DropStmt')?.concurrent
  if (concurrent !== undefined) return concurrent
  return (asNode(stmt, 'ReindexStmt')?.params ?? []).some((p) => asNode(p, 'DefElem')?.defname === 'concurrently')
}

function uniqueTables(tables: TableRef[]): TableRef[] {
  const seen = new Set<string>()
  return tables.filter((t) => {
    const k = tableKey(t)
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

/** Several statements in one Query: everything united, a pin kept only if every statement using the table keeps it. */
function combine(plans: StatementPlan[], hints: Hint[]): StatementPlan {
  const main = plans.find((p) => p.kind !== 'transaction' && p.kind !== 'set' && p.kind !== 'empty') ?? plans[0]!
  const pins = new PinCollector()
  for (const p of plans) {
    for (const table of p.tables) {
      const columns: ColumnValues = new Map()
      for (const pin of p.pins) if (tableKey(pin.table) === tableKey(table)) columns.set(pin.column, pin.values)
      pins.add(table, columns)
    }
  }
  for (const p of plans) if (p.kind === 'select' && p.scatter === undefined) p.unmergeable ??= 'several statements in one query'
  const combined: StatementPlan = {
    kind: main.kind,
    commandTag: '',
    tables: uniqueTables(plans.flatMap((p) => p.tables)),
    writtenTables: uniqueTables(plans.flatMap((p) => p.writtenTables)),
    functions: [...new Set(plans.flatMap((p) => p.functions))],
    writes: plans.some((p) => p.writes),
    pins: pins.pins(),
    unmergeable: 'several statements in one query',
    session: plans.flatMap((p) => p.session),
    hints,
    multiStatement: true,
    paramCount: Math.max(...plans.map((p) => p.paramCount)),
    statements: plans,
  }
  const assignments = plans.flatMap((p) => p.assignments ?? [])
  if (assignments.length > 0) combined.assignments = assignments
  const conflictTargets = plans.flatMap((p) => p.conflictTargets ?? [])
  if (conflictTargets.length > 0) combined.conflictTargets = conflictTargets
  if (plans.some((p) => p.kind === 'transaction')) combined.multiStatementTx = true
  return combined
}
