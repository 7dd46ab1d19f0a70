/** A scatter result that cannot be merged correctly; `code` is the SQLSTATE the client gets. */
export class MergeError extends Error {
  readonly code: string
  constructor(message: string, code: string) {
    super(message)
    this.name = 'MergeError'
    this.code = code
  }
}
