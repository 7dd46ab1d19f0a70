/** A scatter result that cannot be merged correctly; `code` is the SQLSTATE the client gets, `hint` what to do. */
export class MergeError extends Error {
  readonly code: string
  readonly hint: string | undefined
  constructor(message: string, code: string, hint?: string) {
    super(message)
    this.name = 'MergeError'
    this.code = code
    this.hint = hint
  }
}
