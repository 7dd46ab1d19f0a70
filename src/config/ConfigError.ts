/** One step of a config path: an object key or an array index. */
export type PathSegment = string | number

export function isPathSegment(seg: PropertyKey): seg is PathSegment {
  return typeof seg !== 'symbol'
}

/** A problem found in a config file, before it is tied to a line of the source. */
export interface RawProblem {
  path: PathSegment[]
  message: string
}

/** A problem as the DBA sees it: `path` in the form `shards[1].primary.port`. */
export interface ConfigProblem {
  path: string
  message: string
  /** 1-based line of the offending YAML node, when the document knows it. */
  line?: number
  /** 1-based column, for YAML syntax errors. */
  column?: number
}

/** Postgres `config_file_error`: what a client sees when a RELOAD is refused. */
const CONFIG_FILE_ERROR = 'F0000'

/** `shards[1].primary.port`; the document root is shown as `(top level)`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = ''
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`
  return out === '' ? '(top level)' : out
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? '' : p.column === undefined ? ` (line ${p.line})` : ` (line ${p.line}, column ${p.column})`
  return `${p.path}: ${p.message}${where}`
}

/** Every problem in a config file at once; the message is one `path: message` line per problem. */
export class ConfigError extends Error {
  readonly code = CONFIG_FILE_ERROR

  constructor(
    readonly problems: ConfigProblem[],
    readonly source?: string,
  ) {
    super(problems.map(formatProblem).join('\n'))
    this.name = 'ConfigError'
  }
}
