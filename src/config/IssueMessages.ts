import { z } from 'zod'
import { closestName } from './ClosestName.js'
import { isPathSegment, type RawProblem } from './ConfigError.js'
import { schemaAt } from './SchemaAt.js'

type RawIssue = z.core.$ZodRawIssue

const TYPE_NAMES: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping (key: value lines)',
  array: 'a list',
}

/**
 * Zod error map giving short messages a DBA can act on (`expected an integer`, `required`). Messages a schema
 * sets itself (the duration format) take precedence over this map. Values are never quoted back: they may be secrets.
 */
export const configErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required'
      return `expected ${typeName(issue.expected, issue.inst)}`
    case 'invalid_value':
      return issue.values.length === 1
        ? `expected ${String(issue.values[0])}`
        : `expected one of ${issue.values.map(String).join(', ')}`
    case 'too_small':
      return sizeMessage(issue, 'at least', issue.minimum)
    case 'too_big':
      return sizeMessage(issue, 'at most', issue.maximum)
    case 'invalid_format':
      return issue.format === 'regex' ? `expected text matching ${issue.pattern}` : `expected a valid ${issue.format}`
    case 'invalid_union':
      return unionMessage(issue.inst)
    default:
      return undefined
  }
}

/** Final problems from a failed parse; an unknown-keys issue becomes one problem per key, at that key. */
export function problemsFromIssues(issues: readonly z.core.$ZodIssue[], schema: z.ZodType): RawProblem[] {
  const problems: RawProblem[] = []
  for (const issue of issues) {
    const path = issue.path.filter(isPathSegment)
    if (issue.code !== 'unrecognized_keys') {
      problems.push({ path, message: issue.message })
      continue
    }
    const at = schemaAt(schema, path)
    const allowed = at instanceof z.ZodObject ? Object.keys(at.shape) : []
    for (const key of issue.keys) {
      const near = closestName(key, allowed)
      const hint = near ? `did you mean "${near}"?` : `allowed: ${allowed.join(', ')}`
      problems.push({ path: [...path, key], message: `unknown key "${key}" (${hint})` })
    }
  }
  return problems
}

function typeName(expected: string, inst: RawIssue['inst']): string {
  if (expected === 'number' && inst instanceof z.ZodNumber && inst.isInt) return TYPE_NAMES.int
  return TYPE_NAMES[expected] ?? expected
}

function sizeMessage(issue: RawIssue & { origin: string; inclusive?: boolean }, bound: string, limit: unknown): string {
  const n = Number(limit)
  switch (issue.origin) {
    case 'array':
      return n === 1 && bound === 'at least' ? 'expected at least one item' : `expected ${bound} ${n} items`
    case 'string':
      return n === 1 && bound === 'at least' ? 'expected a non-empty string' : `expected ${bound} ${n} characters`
    case 'number': {
      const s = issue.schema
      const kind = s instanceof z.ZodNumber && s.isInt ? 'an integer' : 'a number'
      if (s instanceof z.ZodNumber && Number.isFinite(s.minValue) && (s.maxValue ?? Infinity) < Number.MAX_SAFE_INTEGER) {
        return `expected ${kind} from ${s.minValue} to ${s.maxValue}`
      }
      if (issue.inclusive === false) return `expected ${kind} ${bound === 'at least' ? 'greater' : 'less'} than ${n}`
      return `expected ${kind} of ${bound} ${n}`
    }
    default:
      return `expected ${bound} ${n}`
  }
}

/**
 * When no branch of a union comes close, say what the branches take. A string branch with its own format message
 * (a duration) says it best, so that branch is probed with an empty string to obtain the message.
 */
function unionMessage(inst: RawIssue['inst']): string {
  const options = inst instanceof z.ZodUnion ? (inst.options as z.ZodType[]) : []
  for (const option of options) {
    if (!(option instanceof z.ZodString)) continue
    const probe = option.safeParse('').error?.issues.find((i) => i.code === 'invalid_format' && i.format === 'regex')
    if (probe) return probe.message
  }
  return `expected ${[...new Set(options.map((o) => typeName(o.def.type, o)))].join(' or ')}`
}
