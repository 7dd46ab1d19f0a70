// A hand-written tokenizer for the parts of Postgres' lexical grammar that the literal normalizer, the hint
// parser and the text rewriters need. It never allocates per token: the current token is described by the
// fields kind/start/end. It works on any string whose syntax characters are ASCII, so it is also run over the
// latin1 view of UTF-8 bytes, where offsets are byte offsets (what libpg-query reports).

export const Tok = {
  End: 0,
  Ident: 1,
  QuotedIdent: 2,
  /** '…' */
  String: 3,
  /** E'…' (backslash escapes) */
  EString: 4,
  /** U&'…' */
  UString: 5,
  /** B'…' or X'…' */
  BitString: 6,
  /** N'…' */
  NString: 7,
  DollarString: 8,
  /** A numeric literal Postgres 15 reads the same way (123, 1.5, .5, 1e10). */
  Number: 9,
  /** 0x1F, 0o17, 0b101, 1_000: PG16+ syntax that a PG15 server reads differently. */
  NumberNonPortable: 10,
  Param: 11,
  Operator: 12,
  LParen: 13,
  RParen: 14,
  LBracket: 15,
  RBracket: 16,
  Comma: 17,
  Semicolon: 18,
  Dot: 19,
  /** `::` */
  Cast: 20,
  Colon: 21,
  LineComment: 22,
  BlockComment: 23,
  /** Unterminated quote or comment, or a character Postgres does not accept. */
  Error: 24,
} as const
export type Tok = (typeof Tok)[keyof typeof Tok]

const OPERATOR_CHARS = new Uint8Array(128)
for (const c of '+-*/<>=~!@#%^&|`?') OPERATOR_CHARS[c.charCodeAt(0)] = 1
// An operator ending in + or - is cut back unless it contains one of these (Postgres' scan.l rule).
const OPERATOR_KEEPS_TRAILING_SIGN = new Uint8Array(128)
for (const c of '~!@#%^&|`?') OPERATOR_KEEPS_TRAILING_SIGN[c.charCodeAt(0)] = 1

function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128
}

export function isIdentChar(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === 36
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70)
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11
}

export class SqlLexer {
  kind: Tok = Tok.End
  start = 0
  end = 0
  private pos: number
  private portable = true

  constructor(
    readonly text: string,
    from = 0,
    private readonly limit = text.length,
  ) {
    this.pos = from
  }

  /** Next token including comments. */
  next(): Tok {
    const s = this.text
    let p = this.pos
    while (p < this.limit && isSpace(s.charCodeAt(p))) p++
    this.start = p
    if (p >= this.limit) return this.finish(Tok.End, p)
    const c = s.charCodeAt(p)
    const c1 = p + 1 < this.limit ? s.charCodeAt(p + 1) : -1
    if (c === 45 && c1 === 45) return this.lineComment(p)
    if (c === 47 && c1 === 42) return this.blockComment(p)
    if (c === 39) return this.quoted(p + 1, Tok.String, false)
    if (c === 34) return this.quotedIdent(p + 1)
    if (isIdentStart(c)) return this.identOrPrefixedString(p, c, c1)
    if (isDigit(c) || (c === 46 && isDigit(c1))) return this.number(p)
    if (c === 36) return this.dollar(p)
    switch (c) {
      case 40: return this.finish(Tok.LParen, p + 1)
      case 41: return this.finish(Tok.RParen, p + 1)
      case 91: return this.finish(Tok.LBracket, p + 1)
      case 93: return this.finish(Tok.RBracket, p + 1)
      case 44: return this.finish(Tok.Comma, p + 1)
      case 59: return this.finish(Tok.Semicolon, p + 1)
      case 46: return this.finish(Tok.Dot, p + 1)
      case 58: return c1 === 58 ? this.finish(Tok.Cast, p + 2) : this.finish(Tok.Colon, p + 1)
    }
    if (c < 128 && OPERATOR_CHARS[c] === 1) return this.operator(p)
    return this.finish(Tok.Error, p + 1)
  }

  /** Next token that is not a comment. */
  nextSignificant(): Tok {
    let k = this.next()
    while (k === Tok.LineComment || k === Tok.BlockComment) k = this.next()
    return k
  }

  /** Whether the current token is the bare word `lower` (given in lower case), case-insensitively. */
  isWord(lower: string): boolean {
    return this.kind === Tok.Ident && wordEquals(this.text, this.start, this.end, lower)
  }

  private finish(kind: Tok, end: number): Tok {
    this.kind = kind
    this.end = end
    this.pos = end
    return kind
  }

  private lineComment(p: number): Tok {
    const s = this.text
    p += 2
    while (p < this.limit) {
      const c = s.charCodeAt(p)
      if (c === 10 || c === 13) break
      p++
    }
    return this.finish(Tok.LineComment, p)
  }

  private blockComment(p: number): Tok {
    const s = this.text
    let depth = 1
    p += 2
    while (p < this.limit) {
      const c = s.charCodeAt(p)
      const c1 = p + 1 < this.limit ? s.charCodeAt(p + 1) : -1
      if (c === 47 && c1 === 42) {
        depth++
        p += 2
      } else if (c === 42 && c1 === 47) {
        p += 2
        if (--depth === 0) return this.finish(Tok.BlockComment, p)
      } else p++
    }
    return this.finish(Tok.Error, this.limit)
  }

  /** A '…' body starting at p (after the quote); `backslash` for E'…' strings. */
  private quoted(p: number, kind: Tok, backslash: boolean): Tok {
    const s = this.text
    while (p < this.limit) {
      const c = s.charCodeAt(p)
      if (backslash && c === 92) {
        p += 2
        continue
      }
      if (c === 39) {
        if (p + 1 < this.limit && s.charCodeAt(p + 1) === 39) {
          p += 2
          continue
        }
        return this.finish(kind, p + 1)
      }
      p++
    }
    return this.finish(Tok.Error, this.limit)
  }

  private quotedIdent(p: number): Tok {
    const s = this.text
    while (p < this.limit) {
      if (s.charCodeAt(p) === 34) {
        if (p + 1 < this.limit && s.charCodeAt(p + 1) === 34) {
          p += 2
          continue
        }
        return this.finish(Tok.QuotedIdent, p + 1)
      }
      p++
    }
    return this.finish(Tok.Error, this.limit)
  }

  private identOrPrefixedString(p: number, c: number, c1: number): Tok {
    if (c1 === 39) {
      const lower = c | 0x20
      if (lower === 101) return this.quoted(p + 2, Tok.EString, true)
      if (lower === 98 || lower === 120) return this.quoted(p + 2, Tok.BitString, false)
      if (lower === 110) return this.quoted(p + 2, Tok.NString, false)
    }
    if ((c | 0x20) === 117 && c1 === 38 && p + 2 < this.limit) {
      const c2 = this.text.charCodeAt(p + 2)
      if (c2 === 39) return this.quoted(p + 3, Tok.UString, false)
      if (c2 === 34) {
        const k = this.quotedIdent(p + 3)
        this.start = p
        return k
      }
    }
    const s = this.text
    p++
    while (p < this.limit && isIdentChar(s.charCodeAt(p))) p++
    return this.finish(Tok.Ident, p)
  }

  private number(p: number): Tok {
    const s = this.text
    const c1 = p + 1 < this.limit ? s.charCodeAt(p + 1) | 0x20 : -1
    if (s.charCodeAt(p) === 48 && (c1 === 120 || c1 === 111 || c1 === 98)) {
      let q = p + 2
      while (q < this.limit && (isHexDigit(s.charCodeAt(q)) || s.charCodeAt(q) === 95)) q++
      return this.finish(Tok.NumberNonPortable, q)
    }
    this.portable = true
    let q = this.digits(p)
    // `1..5` is an integer followed by `..` (Postgres' numericfail rule).
    if (q < this.limit && s.charCodeAt(q) === 46 && !(q + 1 < this.limit && s.charCodeAt(q + 1) === 46)) q = this.digits(q + 1)
    if (q < this.limit && (s.charCodeAt(q) | 0x20) === 101) {
      let e = q + 1
      if (e < this.limit && (s.charCodeAt(e) === 43 || s.charCodeAt(e) === 45)) e++
      if (e < this.limit && isDigit(s.charCodeAt(e))) q = this.digits(e)
    }
    return this.finish(this.portable ? Tok.Number : Tok.NumberNonPortable, q)
  }

  /** Digits from q, with PG16+ `_` separators (which make the literal non-portable). */
  private digits(q: number): number {
    const s = this.text
    while (q < this.limit) {
      const c = s.charCodeAt(q)
      if (isDigit(c)) q++
      else if (c === 95 && q + 1 < this.limit && isDigit(s.charCodeAt(q + 1))) {
        this.portable = false
        q++
      } else break
    }
    return q
  }

  private dollar(p: number): Tok {
    const s = this.text
    let q = p + 1
    if (q < this.limit && isDigit(s.charCodeAt(q))) {
      while (q < this.limit && isDigit(s.charCodeAt(q))) q++
      return this.finish(Tok.Param, q)
    }
    // $tag$ … $tag$: the tag is an identifier without `$`, or empty.
    if (q < this.limit && isIdentStart(s.charCodeAt(q))) {
      q++
      while (q < this.limit) {
        const c = s.charCodeAt(q)
        if (!(isIdentStart(c) || isDigit(c))) break
        q++
      }
    }
    if (q >= this.limit || s.charCodeAt(q) !== 36) return this.finish(Tok.Error, q)
    const tag = s.slice(p, q + 1)
    const close = s.indexOf(tag, q + 1)
    if (close < 0 || close + tag.length > this.limit) return this.finish(Tok.Error, this.limit)
    return this.finish(Tok.DollarString, close + tag.length)
  }

  private operator(p: number): Tok {
    const s = this.text
    let q = p
    let keepsSign = false
    while (q < this.limit) {
      const c = s.charCodeAt(q)
      if (c >= 128 || OPERATOR_CHARS[c] !== 1) break
      const c1 = q + 1 < this.limit ? s.charCodeAt(q + 1) : -1
      if (q > p && ((c === 45 && c1 === 45) || (c === 47 && c1 === 42))) break
      if (OPERATOR_KEEPS_TRAILING_SIGN[c] === 1) keepsSign = true
      q++
    }
    if (!keepsSign) {
      while (q - p > 1) {
        const last = s.charCodeAt(q - 1)
        if (last !== 43 && last !== 45) break
        q--
      }
    }
    return this.finish(Tok.Operator, q)
  }
}

/** Case-insensitive comparison of text[start, end) with a lower-case ASCII word. */
export function wordEquals(text: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false
  for (let i = 0; i < lower.length; i++) {
    let c = text.charCodeAt(start + i)
    if (c >= 65 && c <= 90) c += 32
    if (c !== lower.charCodeAt(i)) return false
  }
  return true
}
