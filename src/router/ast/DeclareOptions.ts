// DeclareCursorStmt.options bits, as parsenodes.h defines them.
const CURSOR_OPT_BINARY = 0x1
const CURSOR_OPT_SCROLL = 0x2
const CURSOR_OPT_HOLD = 0x20

/** What a DECLARE's options say about its cursor. */
export function declareOptions(options: number | undefined): { binary: boolean; scroll: boolean; hold: boolean } {
  const bits = options ?? 0
  return { binary: (bits & CURSOR_OPT_BINARY) !== 0, scroll: (bits & CURSOR_OPT_SCROLL) !== 0, hold: (bits & CURSOR_OPT_HOLD) !== 0 }
}
