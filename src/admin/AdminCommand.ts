import type { AdminContext } from './AdminContext.js'

export type ColumnType = 'text' | 'int8' | 'float8' | 'bool'

export interface Column {
  name: string
  type: ColumnType
}

export type Cell = string | number | bigint | boolean | null

/** What a console command answers: rows (when it has columns), a command tag, and notices shown first. */
export interface AdminResult {
  rows?: Cell[][]
  tag: string
  notices?: string[]
}

/**
 * One console command. Its columns are fixed, so a client's Describe can be answered without running it (a
 * RELOAD must not run twice because a driver described it first).
 */
export interface AdminCommand {
  /** The words that name it, upper case: ['SHOW', 'POOLS']. */
  readonly words: string[]
  /** Whether it takes an argument after its words. */
  readonly argument: 'none' | 'optional' | 'required'
  /** How it is written, for SHOW HELP and error messages: `PAUSE [db]`. */
  readonly usage: string
  readonly description: string
  /** Empty when it answers with a tag only. */
  readonly columns: Column[]
  run(ctx: AdminContext, arg: string): Promise<AdminResult> | AdminResult
}

export const text = (name: string): Column => ({ name, type: 'text' })
export const int8 = (name: string): Column => ({ name, type: 'int8' })
export const float8 = (name: string): Column => ({ name, type: 'float8' })
export const bool = (name: string): Column => ({ name, type: 'bool' })
