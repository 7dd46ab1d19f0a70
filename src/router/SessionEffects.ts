// What a statement does to session state, which transaction pooling must track, replay or pin: settings, prepared
// statements, LISTEN, session advisory locks, temp tables and WITH HOLD cursors.
import type { FuncCall, Node } from 'libpg-query'
import type { SessionEffect, ValueRef } from './StatementPlan.js'
import { asNode, functionName, walkAst } from './ast/AstNode.js'
import { declareOptions } from './ast/DeclareOptions.js'
import { constantText, valueRefOf } from './ast/ValueRefs.js'
import { SqlLexer, Tok } from './SqlLexer.js'
import { quoteLiteral } from './SqlQuoting.js'
import type { StatementText } from './StatementText.js'

const SESSION_ADVISORY_LOCKS = new Set([
  'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared',
])
// Settings whose SET form quotes each list element, so `SET search_path = 'a, b'` is not set_config's 'a, b'.
const LIST_QUOTED_SETTINGS = new Set([
  'search_path', 'temp_tablespaces', 'session_preload_libraries', 'local_preload_libraries', 'shared_preload_libraries',
])
const TRUE_WORDS = new Set(['true', 't', 'on', 'yes', 'y', '1'])
const FALSE_WORDS = new Set(['false', 'f', 'off', 'no', 'n', '0'])

interface SetConfigArgs {
  name: ValueRef
  value: ValueRef
  local: boolean
}

// set_config() effects whose name or value is a parameter, until resolveSessionEffect() gets the values.
const pendingSetConfig = new WeakMap<SessionEffect, SetConfigArgs>()

/** The session effects of one statement, written at bytes [start, end) of `text`. */
export function sessionEffects(stmt: Node, text: StatementText, start: number, end: number): SessionEffect[] {
  const effects: SessionEffect[] = []
  const statementText = (): string => text.slice(start, end)
  const set = asNode(stmt, 'VariableSetStmt')
  if (set !== undefined) {
    const name = (set.name ?? '').toLowerCase()
    const local = set.is_local === true
    switch (set.kind) {
      case 'VAR_RESET':
        effects.push({ kind: 'reset', name })
        break
      case 'VAR_RESET_ALL':
        effects.push({ kind: 'reset_all' })
        break
      case 'VAR_SET_MULTI':
        if (name === 'transaction') effects.push({ kind: 'set_transaction' })
        else {
          // SET SESSION CHARACTERISTICS AS TRANSACTION … sets the default_transaction_* settings.
          for (const option of set.args ?? []) {
            const defname = asNode(option, 'DefElem')?.defname
            if (defname !== undefined) effects.push({ kind: 'set', name: `default_${defname}`, local, text: statementText() })
          }
        }
        break
      default:
        effects.push({ kind: 'set', name, local, text: statementText() })
    }
    return effects
  }
  if (asNode(stmt, 'DiscardStmt')?.target === 'DISCARD_ALL') effects.push({ kind: 'discard_all' })
  const prepare = asNode(stmt, 'PrepareStmt')
  if (prepare !== undefined) {
    effects.push({ kind: 'prepare', name: prepare.name ?? '', text: statementText(), nameLocation: secondToken(text, start, end) })
  }
  const execute = asNode(stmt, 'ExecuteStmt')
  if (execute !== undefined) {
    effects.push({ kind: 'execute', name: execute.name ?? '', nameLocation: secondToken(text, start, end), args: (execute.params ?? []).map(valueRefOf) })
  }
  const deallocate = asNode(stmt, 'DeallocateStmt')
  if (deallocate !== undefined) {
    const name = deallocate.isall === true ? null : (deallocate.name ?? null)
    effects.push({ kind: 'deallocate', name, nameLocation: name === null ? -1 : (deallocate.location ?? -1) })
  }
  const listen = asNode(stmt, 'ListenStmt')
  if (listen !== undefined) effects.push({ kind: 'listen', channel: listen.conditionname ?? '' })
  const unlisten = asNode(stmt, 'UnlistenStmt')
  if (unlisten !== undefined) effects.push({ kind: 'unlisten', channel: unlisten.conditionname ?? null })
  // A DO block is text the parser does not read: what it may leave on the connection is guessed from its words.
  const block = asNode(stmt, 'DoStmt')
  if (block !== undefined) {
    const texts: string[] = []
    walkAst(block.args, (tag, node) => {
      if (tag === 'String') texts.push((node as { sval?: string }).sval ?? '')
    })
    const body = texts.join('\n')
    for (const [words, effect] of DO_BLOCK_EFFECTS) if (words.test(body)) effects.push(effect)
  }
  const cursor = asNode(stmt, 'DeclareCursorStmt')
  if (cursor !== undefined && declareOptions(cursor.options).hold) effects.push({ kind: 'hold_cursor' })

  let advisory = false
  let unlockAll = false
  let temp = false
  walkAst(stmt, (tag, body) => {
    // A literal names nothing: 'pg_temp' in quotes creates no temporary object.
    if (tag === 'A_Const') return false
    if (tag === 'RangeVar') {
      const rv = body as { relpersistence?: string; schemaname?: string }
      if (rv.relpersistence === 't' || isTempSchema(rv.schemaname)) temp = true
    }
    // pg_temp.name for a function, type, domain or operator: objects only this server connection has.
    if (tag === 'String' && isTempSchema((body as { sval?: string }).sval)) temp = true
    if (tag !== 'FuncCall') return true
    const name = functionName((body as FuncCall).funcname)
    if (SESSION_ADVISORY_LOCKS.has(name)) advisory = true
    if (name === 'pg_advisory_unlock_all') unlockAll = true
    if (name === 'set_config') effects.push(setConfigEffect(body as FuncCall))
    return true
  })
  if (advisory) effects.push({ kind: 'advisory_lock_session' })
  else if (unlockAll) effects.push({ kind: 'advisory_unlock_all' })
  if (temp) effects.push({ kind: 'temp_table' })
  return effects
}

/**
 * Words in a DO block's body and the session state they may leave. Some match more than they mean (an
 * UPDATE … SET, a column named temp): the cost is a reset or a pinned client, never a leak.
 */
const DO_BLOCK_EFFECTS: [RegExp, SessionEffect][] = [
  // A setting, or a statement prepared under a name only this connection has: reset before reuse.
  [/\bset_config\b|\bset\s+(session\s+)?[a-z_"]|\breset\b|\bprepare\b/i, { kind: 'unknown_set_config' }],
  [/\btemp(orary)?\b|\bpg_temp/i, { kind: 'temp_table' }],
  [/\bpg_(try_)?advisory_lock(_shared)?\b/i, { kind: 'advisory_lock_session' }],
  [/\blisten\b/i, { kind: 'listen', channel: '' }],
]

/** The session's temporary schema, by its alias or its real name (pg_temp_3). */
function isTempSchema(name: string | undefined): boolean {
  return name !== undefined && /^pg_temp(_\d+)?$/i.test(name)
}

/** Byte offset of the token after the statement's first keyword (the name in PREPARE name / EXECUTE name). */
function secondToken(text: StatementText, start: number, end: number): number {
  const lexer = new SqlLexer(text.bytes, start, end)
  lexer.nextSignificant()
  const k = lexer.nextSignificant()
  return k === Tok.Ident || k === Tok.QuotedIdent ? lexer.start : -1
}

function setConfigEffect(call: FuncCall): SessionEffect {
  const args = call.args ?? []
  const name = valueRefOf(args[0])
  const value = valueRefOf(args[1])
  const local = constantText(args[2])?.toLowerCase()
  const isLocal = local !== undefined && local !== null && TRUE_WORDS.has(local)
  if (args.length !== 3 || name === null || value === null || 'null' in name) return { kind: 'unknown_set_config' }
  if (!isLocal && !(local !== undefined && local !== null && FALSE_WORDS.has(local))) return { kind: 'unknown_set_config' }
  if (('param' in name && name.negate === true) || ('param' in value && value.negate === true)) return { kind: 'unknown_set_config' }
  if ('literal' in name && !('param' in value)) return settingEffect(name.literal.toLowerCase(), 'literal' in value ? value.literal : null, isLocal)
  const placeholder = (v: ValueRef): string => ('param' in v ? `$${v.param}` : 'literal' in v ? v.literal : 'DEFAULT')
  const shownName = 'literal' in name ? name.literal.toLowerCase() : placeholder(name)
  const effect: SessionEffect = {
    kind: 'set',
    name: shownName,
    local: isLocal,
    text: `SET ${isLocal ? 'LOCAL ' : ''}${'literal' in name ? quoteName(shownName) : shownName} = ${'literal' in value ? quoteLiteral(value.literal) : placeholder(value)}`,
  }
  pendingSetConfig.set(effect, { name, value, local: isLocal })
  return effect
}

/**
 * A set_config() effect whose name or value was a parameter ($n in `name`/`text`), with the parameters' text values
 * filled in; any other effect unchanged. `param(n)` returns undefined when $n is unknown, null for SQL NULL.
 */
export function resolveSessionEffect(effect: SessionEffect, param: (n: number) => string | null | undefined): SessionEffect {
  const pending = pendingSetConfig.get(effect)
  if (pending === undefined) return effect
  const valueOf = (v: ValueRef): string | null | undefined => ('param' in v ? param(v.param) : 'literal' in v ? v.literal : null)
  const name = valueOf(pending.name)
  const value = valueOf(pending.value)
  if (name === undefined || name === null || value === undefined) return { kind: 'unknown_set_config' }
  return settingEffect(name.toLowerCase(), value, pending.local)
}

/** The $n a set_config() effect still needs before resolveSessionEffect() can make it concrete. */
export function sessionEffectParams(effect: SessionEffect): number[] {
  const pending = pendingSetConfig.get(effect)
  if (pending === undefined) return []
  return [pending.name, pending.value].flatMap((v) => ('param' in v ? [v.param] : []))
}

/** What set_config(name, value, local) does, as a statement that replays it. A NULL value resets the setting. */
function settingEffect(name: string, value: string | null, local: boolean): SessionEffect {
  if (value === null) {
    return local ? { kind: 'set', name, local, text: `SET LOCAL ${quoteName(name)} TO DEFAULT` } : { kind: 'reset', name }
  }
  const text = LIST_QUOTED_SETTINGS.has(name)
    ? `SELECT pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, ${local})`
    : `SET ${local ? 'LOCAL ' : ''}${quoteName(name)} = ${quoteLiteral(value)}`
  return { kind: 'set', name, local, text }
}

function quoteName(name: string): string {
  return name
    .split('.')
    .map((part) => (/^[a-z_][a-z0-9_$]*$/.test(part) ? part : `"${part.replaceAll('"', '""')}"`))
    .join('.')
}
