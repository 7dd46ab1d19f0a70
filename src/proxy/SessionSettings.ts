import { PgError, SqlState } from '../protocol/PgError.js'
import { quoteIdent, quoteLiteral } from '../router/SqlQuoting.js'

/**
 * Settings a server never refuses with a value another server of the cluster accepted (same binaries, same time
 * zone data; names and numbers only): the ones drivers set at start-up, and the usual timeouts. RESET never fails.
 */
const ALWAYS_ACCEPTED = new Set([
  'application_name', 'client_encoding', 'datestyle', 'intervalstyle', 'timezone', 'extra_float_digits', 'search_path',
  'standard_conforming_strings', 'bytea_output', 'client_min_messages', 'statement_timeout', 'lock_timeout',
  'idle_in_transaction_session_timeout', 'work_mem',
])

/** Start-up packet keys that are not session settings. */
const NOT_SETTINGS = new Set(['user', 'database', 'options', 'replication'])

/** The statement that gives a session setting this value, as the server would from a start-up packet. */
export function setConfigSql(name: string, value: string): string {
  return `SELECT pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`
}

/** Splits `options` ("-c a=b --c=d", backslash escapes spaces) into settings, as the server does. */
export function parseOptions(options: string): Map<string, string> {
  const words: string[] = []
  let cur = ''
  let any = false
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]
    if (ch === '\\' && i + 1 < options.length) {
      cur += options[++i]
      any = true
    } else if (ch === ' ' || ch === '\t') {
      if (any) words.push(cur)
      cur = ''
      any = false
    } else {
      cur += ch
      any = true
    }
  }
  if (any) words.push(cur)
  const out = new Map<string, string>()
  for (let i = 0; i < words.length; i++) {
    let w = words[i]
    if (w === '-c') w = words[++i] ?? ''
    else if (w.startsWith('-c')) w = w.slice(2)
    else if (w.startsWith('--')) w = w.slice(2)
    else throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, `invalid command-line argument for server process: ${w}`, 'Only -c name=value and --name=value are accepted in options.')
    const eq = w.indexOf('=')
    if (eq <= 0) throw PgError.fatal(SqlState.PROTOCOL_VIOLATION, `invalid options entry "${w}": expected name=value`)
    out.set(w.slice(0, eq).replace(/-/g, '_').toLowerCase(), w.slice(eq + 1))
  }
  return out
}

/**
 * The session settings one client expects its server connection to have: what its start-up packet asked for,
 * then what its own SET/RESET statements changed. Each entry is the SQL that establishes it on a connection,
 * so that a connection's state can be compared with a client's by string and brought in line in one round trip.
 */
export class SessionSettings {
  /** name (lower case) → SQL that sets it. */
  readonly wanted = new Map<string, string>()
  private readonly startup = new Map<string, string>()

  constructor(startupParams: Map<string, string>) {
    for (const [k, v] of startupParams) {
      if (NOT_SETTINGS.has(k)) continue
      this.startup.set(k.toLowerCase(), setConfigSql(k, v))
    }
    const options = startupParams.get('options')
    if (options) for (const [k, v] of parseOptions(options)) this.startup.set(k, setConfigSql(k, v))
    for (const [k, v] of this.startup) this.wanted.set(k, v)
  }

  /**
   * The client made SERIALIZABLE its default isolation level (SET, SET SESSION CHARACTERISTICS, set_config, a
   * start-up option): each of those statements names the level, and no other level's name contains that word.
   */
  get serializableByDefault(): boolean {
    const sql = this.wanted.get('default_transaction_isolation')
    return sql !== undefined && /serializable/i.test(sql)
  }

  /**
   * The client's default isolation level takes one snapshot per transaction (REPEATABLE READ, SERIALIZABLE), as
   * far as its settings say: the statement setting it names the level.
   */
  get snapshotPerTransaction(): boolean {
    const sql = this.wanted.get('default_transaction_isolation')
    return sql !== undefined && /serializable|repeatable/i.test(sql)
  }

  set(name: string, sql: string): void {
    this.wanted.set(name, sql)
  }

  /** RESET name: back to the start-up value, or the server default. */
  reset(name: string): void {
    const s = this.startup.get(name)
    if (s === undefined) this.wanted.delete(name)
    else this.wanted.set(name, s)
  }

  resetAll(): void {
    this.wanted.clear()
    for (const [k, v] of this.startup) this.wanted.set(k, v)
  }

  /**
   * The SQL that turns a connection with `have` into one with what this client wants, or null when they agree.
   * Settings only the connection has are RESET.
   */
  diff(have: Map<string, string>): string | null {
    let sql = ''
    for (const [k, v] of this.wanted) if (have.get(k) !== v) sql += v + ';'
    for (const k of have.keys()) if (!this.wanted.has(k)) sql += `RESET ${quoteIdent(k)};`
    return sql || null
  }

  /**
   * Whether bringing a connection with `have` to this client's settings could be refused by the server: it sets
   * something beyond the settings any server takes whatever value another one took (a role, a custom setting,
   * a transaction default). Then the client's statement waits for the answer; otherwise it follows at once.
   */
  mayBeRefused(have: Map<string, string>): boolean {
    for (const [k, v] of this.wanted) if (have.get(k) !== v && !ALWAYS_ACCEPTED.has(k)) return true
    return false
  }

  /**
   * The SQL that brings a connection to this client's settings (null when it has them already); the
   * connection's record is updated as if it ran.
   */
  adopt(settings: Map<string, string>): string | null {
    const sql = this.adoptInTransaction(settings)
    if (sql === null) return null
    // The statements run as one implicit transaction, begun under the isolation level the connection's last
    // client left as its default: serializable is refused on a hot standby as soon as set_config() takes a
    // snapshot. Read committed works everywhere, and a failure leaves nothing half set.
    return `SET TRANSACTION ISOLATION LEVEL READ COMMITTED;${sql}`
  }

  /** As adopt, for a connection inside a transaction, whose isolation level is set already. */
  adoptInTransaction(settings: Map<string, string>): string | null {
    const sql = this.diff(settings)
    if (sql === null) return null
    settings.clear()
    for (const [k, v] of this.wanted) settings.set(k, v)
    return sql
  }
}
