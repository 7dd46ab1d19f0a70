import { constants } from 'node:fs'
import { access, readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { ConfigError, formatPath, isPathSegment, type ConfigProblem, type PathSegment, type RawProblem } from './ConfigError.js'
import { ConfigSchema, type Config } from './ConfigSchema.js'
import { crossCheck } from './CrossChecks.js'
import { substituteEnv } from './EnvSubstitution.js'
import { configErrorMap, problemsFromIssues } from './IssueMessages.js'
import { YamlSource } from './YamlSource.js'

export { ConfigError, type ConfigProblem } from './ConfigError.js'

/**
 * Parses and validates a config file's text: YAML, then `${ENV}` substitution, then the schema (defaults filled
 * in), then the rules across fields. Throws a ConfigError listing every problem found.
 */
export function parseConfig(text: string, source?: string, env: NodeJS.ProcessEnv = process.env): Config {
  return validate(text, source, env).config
}

/**
 * Reads and validates a config file, and also checks that the TLS files it names (tls.cert, tls.key,
 * server_tls_ca) are readable. Relative paths are taken from the config file's directory and returned absolute.
 */
export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    throw new ConfigError([{ path: '(file)', message: `cannot read ${file} (${errorCode(e)})` }], file)
  }
  const { config, yaml } = validate(text, file, env)
  const here = (p: string) => resolve(dirname(file), p)
  const tls = config.tls && { ...config.tls, cert: here(config.tls.cert), key: here(config.tls.key) }
  const serverCa = config.server_tls_ca && here(config.server_tls_ca)
  const files: [PathSegment[], string | undefined][] = [[['tls', 'cert'], tls?.cert], [['tls', 'key'], tls?.key], [['server_tls_ca'], serverCa]]
  const problems: RawProblem[] = []
  for (const [path, name] of files) {
    if (name === undefined) continue
    try {
      await access(name, constants.R_OK)
    } catch (e) {
      problems.push({ path, message: `cannot read ${name} (${errorCode(e)})` })
    }
  }
  if (problems.length > 0) throw new ConfigError(located(problems, yaml), file)
  return { ...config, ...(tls ? { tls } : {}), ...(serverCa ? { server_tls_ca: serverCa } : {}) }
}

function validate(text: string, source: string | undefined, env: NodeJS.ProcessEnv): { config: Config; yaml: YamlSource } {
  const parsed = YamlSource.parse(text)
  if (parsed.problems.length > 0) throw new ConfigError(parsed.problems, source)
  if (parsed.value === null || parsed.value === undefined) {
    throw new ConfigError([{ path: formatPath([]), message: 'the file is empty' }], source)
  }
  const substituted = substituteEnv(parsed.value, env)
  const result = ConfigSchema.safeParse(substituted.value, { error: configErrorMap })
  // A value with an unset variable is incomplete: what the schema says about that value would only repeat it.
  const unset = new Set(substituted.problems.map((p) => formatPath(p.path)))
  const issues = (result.error?.issues ?? []).filter((i) => !unset.has(formatPath(i.path.filter(isPathSegment))))
  const problems = [...substituted.problems, ...problemsFromIssues(issues, ConfigSchema), ...crossCheck(substituted.value)]
  if (problems.length > 0 || !result.success) throw new ConfigError(located(problems, parsed.source), source)
  return { config: result.data, yaml: parsed.source }
}

/** Paths formatted and tied to their YAML lines, in file order. */
function located(problems: RawProblem[], yaml: YamlSource): ConfigProblem[] {
  const seen = new Set<string>()
  const out: ConfigProblem[] = []
  for (const p of problems) {
    const problem = { path: formatPath(p.path), message: p.message, line: yaml.lineOf(p.path) }
    const key = `${problem.path}\0${problem.message}`
    if (!seen.has(key)) out.push(problem)
    seen.add(key)
  }
  return out.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity))
}

function errorCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? 'unreadable'
}
