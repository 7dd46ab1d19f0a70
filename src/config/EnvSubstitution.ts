import type { PathSegment, RawProblem } from './ConfigError.js'

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Replaces `${NAME}` and `${NAME:-default}` in every string value of a parsed config tree (keys are left alone);
 * `$${` is a literal `${`. As in the shell, the default also applies when the variable is set but empty.
 * Messages name the variable, never the value or the surrounding text: that text is often a secret.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv): { value: unknown; problems: RawProblem[] } {
  const problems: RawProblem[] = []
  return { value: substitute(value, env, [], problems), problems }
}

function substitute(value: unknown, env: NodeJS.ProcessEnv, path: PathSegment[], problems: RawProblem[]): unknown {
  if (typeof value === 'string') return substituteString(value, env, path, problems)
  if (Array.isArray(value)) return value.map((item, i) => substitute(item, env, [...path, i], problems))
  if (isPlainObject(value)) {
    // fromEntries defines properties, so a YAML key "__proto__" stays a key (and is reported as unknown).
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, substitute(item, env, [...path, key], problems)]),
    )
  }
  return value
}

function substituteString(text: string, env: NodeJS.ProcessEnv, path: PathSegment[], problems: RawProblem[]): string {
  let out = ''
  let from = 0
  for (;;) {
    const dollar = text.indexOf('$', from)
    if (dollar < 0) return out + text.slice(from)
    out += text.slice(from, dollar)
    if (text.startsWith('$${', dollar)) {
      out += '${'
      from = dollar + 3
      continue
    }
    if (!text.startsWith('${', dollar)) {
      out += '$'
      from = dollar + 1
      continue
    }
    const close = text.indexOf('}', dollar)
    if (close < 0) {
      problems.push({ path, message: 'unterminated "${" (write "$${" for a literal "${")' })
      return out
    }
    const body = text.slice(dollar + 2, close)
    const sep = body.indexOf(':-')
    const name = sep < 0 ? body : body.slice(0, sep)
    const fallback = sep < 0 ? undefined : body.slice(sep + 2)
    const set = env[name]
    if (!VARIABLE_NAME.test(name)) {
      problems.push({ path, message: '"${…}" must hold an environment variable name (letters, digits, _)' })
    } else if (fallback !== undefined && (set === undefined || set === '')) {
      out += fallback
    } else if (set === undefined) {
      problems.push({ path, message: `environment variable ${name} is not set` })
    } else {
      out += set
    }
    from = close + 1
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}
