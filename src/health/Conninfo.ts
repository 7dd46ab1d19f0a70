/**
 * libpq connection strings as a standby's primary_conninfo holds them: `key=value` pairs (values optionally in
 * single quotes with backslash escapes) or a postgres:// URI. Repointing a standby changes only where it
 * connects, so its user, password, application_name, sslmode … stay as the DBA wrote them.
 */
export function conninfoWithAddress(conninfo: string, host: string, port: number): string {
  const trimmed = conninfo.trim()
  if (/^postgres(ql)?:\/\//i.test(trimmed)) return uriWithAddress(trimmed, host, port)
  const pairs = parseConninfo(trimmed).filter(([k]) => k !== 'host' && k !== 'hostaddr' && k !== 'port')
  return formatConninfo([['host', host], ['port', String(port)], ...pairs])
}

/** The value of one keyword (the last one wins, as in libpq), or undefined. */
export function conninfoValue(conninfo: string, key: string): string | undefined {
  const trimmed = conninfo.trim()
  if (/^postgres(ql)?:\/\//i.test(trimmed)) return new URL(trimmed).searchParams.get(key) ?? undefined
  let found: string | undefined
  for (const [k, v] of parseConninfo(trimmed)) if (k === key) found = v
  return found
}

export function parseConninfo(text: string): [string, string][] {
  const pairs: [string, string][] = []
  let i = 0
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i])) i++
  }
  for (;;) {
    skipSpace()
    if (i >= text.length) return pairs
    const keyStart = i
    while (i < text.length && text[i] !== '=' && !/\s/.test(text[i])) i++
    const key = text.slice(keyStart, i)
    skipSpace()
    if (text[i] !== '=' || key === '') throw new Error(`invalid connection string: missing "=" after "${key}"`)
    i++
    skipSpace()
    let value = ''
    if (text[i] === "'") {
      i++
      for (;;) {
        if (i >= text.length) throw new Error('invalid connection string: unterminated quoted value')
        const c = text[i++]
        if (c === "'") break
        value += c === '\\' && i < text.length ? text[i++] : c
      }
    } else {
      while (i < text.length && !/\s/.test(text[i])) {
        const c = text[i++]
        value += c === '\\' && i < text.length ? text[i++] : c
      }
    }
    pairs.push([key, value])
  }
}

export function formatConninfo(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `${k}='${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(' ')
}

function uriWithAddress(uri: string, host: string, port: number): string {
  const url = new URL(uri)
  url.hostname = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  url.port = String(port)
  for (const k of ['host', 'hostaddr', 'port']) url.searchParams.delete(k)
  return url.toString()
}
