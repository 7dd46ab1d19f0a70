import { PgError, SqlState } from '../protocol/PgError.js'
import { KeyEncodingError } from './KeyEncoding.js'
import { firstParenthesized } from './SelectLayout.js'
import { quoteIdent } from './SqlQuoting.js'
import type { CopyShape } from './StatementPlan.js'
import { decodeBytes, StatementText } from './StatementText.js'

const NL = 0x0a
const CR = 0x0d
const BACKSLASH = 0x5c
/** A row is held whole until its end arrives: past this, the COPY is refused rather than the memory spent. */
const MAX_ROW_BYTES = 64 * 1024 * 1024

const BAD_COPY_FORMAT = '22P04'
const NOT_NULL_VIOLATION = '23502'
const PROGRAM_LIMIT_EXCEEDED = '54000'

/** Cuts a COPY's data into rows, by shard. */
export interface CopyRows {
  /** The complete rows of `chunk` (with what was left of the last one), by shard. */
  push(chunk: Buffer): Buffer[][]
  /**
   * push() in two steps, for keys pgshard makes: the complete rows of `chunk` as they arrived (the header
   * included), then route() them, once there is a made key for each.
   */
  cut(chunk: Buffer): Buffer[]
  route(rows: Buffer[]): Buffer[][]
  /** End of data: what is left, by shard (at most one row). */
  end(): Buffer[][]
  /** Rows routed so far. */
  readonly rows: number
}

/**
 * Values pgshard makes for a COPY whose column list leaves out the sharding key (key_sequence, key_uuid) or a
 * column it draws (made_columns): each row gets the next one as an added last field.
 */
export interface MadeKeys {
  /** The next value's text; there is one for every row cut (the caller made sure). */
  next(): string
  /** The column's name, added to a header line. */
  readonly column: string
  /** The values are the sharding key: they place the rows (which have no key field). */
  readonly places: boolean
}

/** `COPY t (a, b) FROM STDIN …` with `column` added to its column list, for rows that get a made key last. */
export function withCopyColumn(sql: string, column: string): string {
  const text = new StatementText(sql)
  const list = firstParenthesized(text.bytes, 0, text.bytes.length)
  if (list === null) throw new PgError(SqlState.INTERNAL_ERROR, 'a COPY with a column list pgshard could not find')
  return decodeBytes(`${text.bytes.slice(0, list.end)}, ${quoteIdent(column)}${text.bytes.slice(list.end)}`, text.ascii)
}

/**
 * Cuts the data of a COPY … FROM STDIN in text or CSV format, arriving in chunks of any size, into rows as
 * Postgres reads them (a backslash escapes the next byte in text; a newline inside CSV quotes is data), reads
 * each row's key column, and says which shard it goes to. Rows are passed on as the bytes that arrived; only
 * the key field is decoded. The header line (HEADER) goes to every shard, whose COPY skips it too.
 */
export class CopyRowRouter implements CopyRows {
  /** The start of a row whose end has not arrived yet. */
  private carry: Buffer | null = null
  /** Scan state at the end of `carry`: inside CSV quotes; the last byte escapes the next one. */
  private inQuote = false
  private escaped = false
  private headerPending: boolean
  /** The end-of-data line (`\.`) was seen: whatever follows is ignored, as the server does. */
  private ended = false
  private readonly csv: boolean
  private readonly delimiter: number
  private readonly quote: number
  private readonly escape: number
  private readonly nullText: Buffer
  /** Rows routed so far (the header not counted). */
  rows = 0

  /** `keyIndex` is the key's field (none when `made` places the rows); `made` values go last in each row. */
  constructor(
    shape: CopyShape,
    private readonly keyIndex: number,
    private readonly keyColumn: string,
    private readonly keyShard: (keyText: string) => number,
    private readonly shards: number,
    private readonly made: MadeKeys | null = null,
  ) {
    this.csv = shape.format === 'csv'
    this.delimiter = shape.delimiter.charCodeAt(0)
    this.quote = shape.quote.charCodeAt(0)
    this.escape = shape.escape.charCodeAt(0)
    this.nullText = Buffer.from(shape.nullText)
    this.headerPending = shape.header
  }

  /** The complete rows of `chunk` (with what was left of the last one), by shard. */
  push(chunk: Buffer): Buffer[][] {
    return this.route(this.cut(chunk))
  }

  cut(chunk: Buffer): Buffer[] {
    const rows: Buffer[] = []
    if (this.ended) return rows
    const buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk
    let start = 0
    for (let i = this.carry ? this.carry.length : 0; i < buf.length; i++) {
      if (!this.rowEndsAt(buf[i])) continue
      rows.push(buf.subarray(start, i + 1))
      start = i + 1
    }
    // The chunk's memory belongs to the client reader: what is kept is copied.
    this.carry = start < buf.length ? Buffer.from(buf.subarray(start)) : null
    if (this.carry && this.carry.length > MAX_ROW_BYTES) {
      throw new PgError(PROGRAM_LIMIT_EXCEEDED, `COPY row ${this.rows + 1 + rows.length} is longer than ${MAX_ROW_BYTES / 1024 / 1024} MB without a line end`)
    }
    return rows
  }

  route(rows: Buffer[]): Buffer[][] {
    const out = this.empty()
    for (const row of rows) {
      if (this.ended) break
      this.routeRow(row, out)
    }
    return out
  }

  /** End of data: a last row without a line end is a row too. */
  end(): Buffer[][] {
    const out = this.empty()
    const rest = this.carry
    this.carry = null
    if (this.ended || rest === null) return out
    if (this.inQuote) throw new PgError(BAD_COPY_FORMAT, `unterminated CSV quoted field in COPY row ${this.rows + 1}`)
    this.routeRow(Buffer.concat([rest, Buffer.from([NL])]), out)
    return out
  }

  private empty(): Buffer[][] {
    return Array.from({ length: this.shards }, () => [])
  }

  /** Feeds one byte to the scanner: true when it ends a row. */
  private rowEndsAt(b: number): boolean {
    if (!this.csv) {
      if (this.escaped) this.escaped = false
      else if (b === BACKSLASH) this.escaped = true
      else return b === NL
      return false
    }
    if (this.inQuote) {
      if (this.escaped) {
        this.escaped = false
        if (b === this.quote || b === this.escape) return false
      }
      if (b === this.escape && this.escape !== this.quote) this.escaped = true
      else if (b === this.quote) this.inQuote = false
      return false
    }
    if (b === this.quote) this.inQuote = true
    return b === NL && !this.inQuote
  }

  private routeRow(row: Buffer, out: Buffer[][]): void {
    let end = row.length - 1
    if (end > 0 && row[end - 1] === CR) end--
    const content = row.subarray(0, end)
    if (content.length === 2 && content[0] === BACKSLASH && content[1] === 0x2e) {
      this.ended = true
      return
    }
    if (this.headerPending) {
      this.headerPending = false
      const header = this.made ? this.withField(row, end, this.made.column) : row
      for (const rows of out) rows.push(header)
      return
    }
    const n = this.rows + 1
    if (this.made?.places) {
      const key = this.made.next()
      out[this.keyShard(key)].push(this.withField(row, end, key))
      this.rows = n
      return
    }
    const key = this.csv ? this.csvField(content) : this.textField(content)
    if (key === undefined) throw new PgError(BAD_COPY_FORMAT, `missing data for column "${this.keyColumn}" in COPY row ${n}`)
    if (key === null) throw new PgError(NOT_NULL_VIOLATION, `COPY row ${n} has no value (NULL) for the sharding key "${this.keyColumn}": pgshard cannot tell its shard`)
    let shard: number
    try {
      shard = this.keyShard(key)
    } catch (err) {
      if (err instanceof KeyEncodingError) throw new PgError(err.code, `${err.message} (COPY row ${n}, column "${this.keyColumn}")`)
      throw err
    }
    out[shard].push(this.made ? this.withField(row, end, this.made.next()) : row)
    this.rows = n
  }

  /**
   * The row with `value` added as its last field, before its line end (at `end`). Quoted in CSV, so that no
   * delimiter or NULL marker can read it otherwise; made keys and column names need no text-format escape.
   */
  private withField(row: Buffer, end: number, value: string): Buffer {
    const quote = this.csv ? String.fromCharCode(this.quote) : ''
    const field = Buffer.from(`${String.fromCharCode(this.delimiter)}${quote}${value}${quote}`)
    return Buffer.concat([row.subarray(0, end), field, row.subarray(end)])
  }

  /** The key field of a text-format row, unescaped; null for the NULL marker, undefined when the row is short. */
  private textField(content: Buffer): string | null | undefined {
    let field = 0
    let start = 0
    for (let j = 0; j <= content.length; j++) {
      if (j < content.length && content[j] === BACKSLASH) {
        j++
        continue
      }
      if (j < content.length && content[j] !== this.delimiter) continue
      if (field === this.keyIndex) {
        const raw = content.subarray(start, j)
        return raw.equals(this.nullText) ? null : unescapeText(raw)
      }
      field++
      start = j + 1
    }
    return undefined
  }

  /** The key field of a CSV row, unquoted; null for an unquoted NULL marker, undefined when the row is short. */
  private csvField(content: Buffer): string | null | undefined {
    let field = 0
    let start = 0
    let inQuote = false
    for (let j = 0; j <= content.length; j++) {
      const b = content[j]
      if (j < content.length) {
        if (inQuote) {
          if (b === this.escape && this.escape !== this.quote && (content[j + 1] === this.quote || content[j + 1] === this.escape)) j++
          else if (b === this.quote) inQuote = false
          continue
        }
        if (b === this.quote) inQuote = true
        if (b !== this.delimiter) continue
      }
      if (field === this.keyIndex) {
        const raw = content.subarray(start, j)
        return raw.equals(this.nullText) ? null : this.unquote(raw)
      }
      field++
      start = j + 1
    }
    return undefined
  }

  private unquote(raw: Buffer): string {
    const bytes: number[] = []
    let inQuote = false
    for (let j = 0; j < raw.length; j++) {
      const b = raw[j]
      if (inQuote && b === this.escape && (raw[j + 1] === this.quote || (this.escape !== this.quote && raw[j + 1] === this.escape))) {
        bytes.push(raw[++j])
      } else if (b === this.quote) inQuote = !inQuote
      else bytes.push(b)
    }
    return Buffer.from(bytes).toString('utf8')
  }
}

const SIMPLE_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' }

/** A text-format field's value: \n, \t …, \ooo (octal) and \xhh (hex) decoded; any other escaped byte is itself. */
function unescapeText(raw: Buffer): string {
  if (!raw.includes(BACKSLASH)) return raw.toString('utf8')
  const bytes: number[] = []
  for (let j = 0; j < raw.length; j++) {
    if (raw[j] !== BACKSLASH || j + 1 >= raw.length) {
      bytes.push(raw[j])
      continue
    }
    const c = String.fromCharCode(raw[++j])
    const simple = SIMPLE_ESCAPES[c]
    if (simple !== undefined) bytes.push(simple.charCodeAt(0))
    else if (c >= '0' && c <= '7') {
      let digits = c
      while (digits.length < 3 && j + 1 < raw.length && raw[j + 1] >= 0x30 && raw[j + 1] <= 0x37) digits += String.fromCharCode(raw[++j])
      bytes.push(parseInt(digits, 8) & 0xff)
    } else if (c === 'x' && j + 1 < raw.length && isHex(raw[j + 1])) {
      let digits = String.fromCharCode(raw[++j])
      if (j + 1 < raw.length && isHex(raw[j + 1])) digits += String.fromCharCode(raw[++j])
      bytes.push(parseInt(digits, 16))
    } else bytes.push(raw[j])
  }
  return Buffer.from(bytes).toString('utf8')
}

function isHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)
}
