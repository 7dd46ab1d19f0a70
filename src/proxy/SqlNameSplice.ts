/**
 * Replaces the identifier that starts at byte offset `location` of `sql` (plain or "quoted") with `name`:
 * PREPARE / EXECUTE name their statement in the text, and the proxy runs them under its own names.
 */
export function replaceIdentifierAt(sql: string, location: number, name: string): string {
  const bytes = Buffer.from(sql)
  let end = location
  if (bytes[end] === 0x22) {
    end++
    while (end < bytes.length) {
      if (bytes[end] === 0x22) {
        if (bytes[end + 1] === 0x22) end += 2
        else {
          end++
          break
        }
      } else end++
    }
  } else {
    while (end < bytes.length && isIdentByte(bytes[end])) end++
  }
  return Buffer.concat([bytes.subarray(0, location), Buffer.from(name), bytes.subarray(end)]).toString()
}

function isIdentByte(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x24 || c >= 0x80
}
