import { PgError, SqlState } from '../protocol/PgError.js'
import type { AdminCommand } from './AdminCommand.js'

export interface ParsedCommand {
  command: AdminCommand
  /** The text after the command's words, trimmed, in the case it was typed. */
  arg: string
}

/**
 * Finds the command a console query names: words compared case-insensitively, any whitespace between them, a
 * trailing `;` allowed. The command with the most matching words wins (SHOW POOLS before a bare SHOW).
 */
export class AdminDispatcher {
  private readonly byLength: AdminCommand[]

  constructor(readonly commands: readonly AdminCommand[]) {
    this.byLength = [...commands].sort((a, b) => b.words.length - a.words.length)
  }

  /** Throws a PgError (42601) naming the commands when the text is none of them. */
  parse(query: string): ParsedCommand {
    const text = query.trim().replace(/[\s;]+$/, '')
    for (const command of this.byLength) {
      const arg = matchWords(text, command.words)
      if (arg === null) continue
      if (command.argument === 'none' && arg !== '') throw usageError(command, `${command.words.join(' ')} takes no argument`)
      if (command.argument === 'required' && arg === '') throw usageError(command, `${command.words.join(' ')} needs an argument`)
      return { command, arg }
    }
    throw new PgError(SqlState.SYNTAX_ERROR, `unknown admin console command: ${JSON.stringify(abbreviate(text))}`, {
      hint: `Commands: ${this.commands.map((c) => c.usage).join(', ')}.`,
    })
  }
}

/** The rest of `text` after `words` (each followed by whitespace or the end), or null when they do not lead it. */
function matchWords(text: string, words: string[]): string | null {
  let rest = text
  for (const word of words) {
    if (rest.length < word.length || rest.slice(0, word.length).toUpperCase() !== word) return null
    const after = rest.slice(word.length)
    if (after !== '' && !/^\s/.test(after)) return null
    rest = after.trimStart()
  }
  return rest
}

function usageError(command: AdminCommand, message: string): PgError {
  return new PgError(SqlState.SYNTAX_ERROR, message, { hint: `Usage: ${command.usage}` })
}

function abbreviate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}
