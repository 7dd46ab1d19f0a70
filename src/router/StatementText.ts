// libpg-query reports UTF-8 byte offsets. The latin1 view of the UTF-8 bytes has one char per byte and keeps every
// ASCII (syntax) character in place, so the lexer and plain string slicing work on it with byte offsets.
export class StatementText {
  /** One char per UTF-8 byte; the text itself when it is ASCII. */
  readonly bytes: string
  readonly ascii: boolean

  constructor(readonly sql: string) {
    this.ascii = /^[\x00-\x7f]*$/.test(sql)
    this.bytes = this.ascii ? sql : Buffer.from(sql, 'utf8').toString('latin1')
  }

  /** The text of bytes [start, end) as a JS string. */
  slice(start: number, end: number): string {
    return decodeBytes(this.bytes.slice(start, end), this.ascii)
  }
}

/** A byte-view string (see StatementText) back to text. */
export function decodeBytes(bytes: string, ascii = /^[\x00-\x7f]*$/.test(bytes)): string {
  return ascii ? bytes : Buffer.from(bytes, 'latin1').toString('utf8')
}
