import { z } from 'zod'
import type { PathSegment } from './ConfigError.js'

/** The schema that validates the value at `path`, looking through defaults, optionals and transforms. */
export function schemaAt(schema: z.ZodType, path: readonly PathSegment[]): z.ZodType | undefined {
  let current: z.ZodType | undefined = unwrap(schema)
  for (const seg of path) {
    if (typeof seg === 'string' && current instanceof z.ZodObject) current = current.shape[seg] as z.ZodType | undefined
    else if (typeof seg === 'number' && current instanceof z.ZodArray) current = current.element as z.ZodType
    else return undefined
    if (current) current = unwrap(current)
  }
  return current
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) {
      s = s.unwrap() as z.ZodType
    } else if (s instanceof z.ZodPipe) {
      s = s.in as z.ZodType
    } else {
      return s
    }
  }
}
