import { PgError, SqlState } from '../protocol/PgError.js'
import type { BoundParam, Route } from '../router/Route.js'
import type { ShardStatement } from './MultiShardExecutor.js'
import type { Analyzed } from './SessionServices.js'

type ScatterRoute = Extract<Route, { kind: 'scatter' }>

/** A statement on a SQL cursor whose query reads several shards (SessionRouting decides, ShardCursors runs). */
export type CursorRoute =
  | { kind: 'cursor'; op: 'declare'; name: string; query: Analyzed; scatter: ScatterRoute; binary: boolean; hold: boolean; reason: string }
  | { kind: 'cursor'; op: 'fetch'; name: string; count: number | 'all'; move: boolean; reason: string }
  | { kind: 'cursor'; op: 'close'; name: string; reason: string }

/** Rows a shard sends per fetch of a cursor across shards (and holds ahead of the merge). */
export const CURSOR_BATCH_ROWS = 1000

/** What each shard runs of a cursor's query, and how. */
export interface CursorTexts {
  sql: string
  /** Each shard's own text (a LIMIT subquery's share written in), where they differ. */
  sqlByShard?: string[]
  bind: NonNullable<ShardStatement['bind']>
  /** The query's parameters, its own literals included. */
  param: (n: number) => BoundParam | undefined
}

/**
 * The format a FETCH asks for (its Bind's result formats, else the cursor's own): binary when every column is,
 * refused when mixed.
 */
export function fetchFormat(name: string, resultFormats: number[] | undefined, declared: boolean): boolean {
  const formats = resultFormats ?? []
  const binary = formats.length > 0 ? formats.every((f) => f === 1) : declared
  if (formats.length > 0 && !binary && formats.some((f) => f === 1))
    throw new PgError(SqlState.FEATURE_NOT_SUPPORTED, `rows of cursor "${name}", which reads several shards, in text and binary formats at once are not supported`, { hint: 'Fetch every column in one format.' })
  return binary
}
