// Exact decimal arithmetic with Postgres `numeric` semantics: text and binary forms, comparison (NaN above
// everything), addition, and the division scale numeric_div uses (so a merged avg prints exactly as Postgres).
import { MergeError } from './MergeError.js'

export type NumericValue =
  /** unscaled / 10^scale; scale is the display scale (digits after the point). */
  | { kind: 'finite'; unscaled: bigint; scale: number }
  | { kind: 'nan' }
  | { kind: 'infinity'; negative: boolean }

const NBASE_DIGITS = 4
const MIN_SIG_DIGITS = 16
const MAX_DISPLAY_SCALE = 1000
const SIGN_POS = 0x0000
const SIGN_NEG = 0x4000
const SIGN_NAN = 0xc000
const SIGN_PINF = 0xd000
const SIGN_NINF = 0xf000

const NUMBER = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/

export function numericFromBigInt(n: bigint): NumericValue {
  return { kind: 'finite', unscaled: n, scale: 0 }
}

/** Parses what numeric_in accepts (surrounding spaces, exponent, NaN, [+-]Infinity); undefined if invalid. */
export function parseNumeric(text: string): NumericValue | undefined {
  const s = text.trim()
  const lower = s.toLowerCase()
  if (lower === 'nan') return { kind: 'nan' }
  if (lower === 'infinity' || lower === '+infinity' || lower === 'inf' || lower === '+inf') {
    return { kind: 'infinity', negative: false }
  }
  if (lower === '-infinity' || lower === '-inf') return { kind: 'infinity', negative: true }
  const m = NUMBER.exec(s)
  if (!m) return undefined
  const [, sign, int, frac = '', exp] = m
  if (int === '' && frac === '') return undefined
  let scale = frac.length - (exp === undefined ? 0 : Number(exp))
  let unscaled = BigInt(int + frac || '0')
  if (!Number.isSafeInteger(scale) || Math.abs(scale) > 100_000) return undefined
  if (scale < 0) {
    unscaled *= 10n ** BigInt(-scale)
    scale = 0
  }
  return { kind: 'finite', unscaled: sign === '-' ? -unscaled : unscaled, scale }
}

export function numericToText(v: NumericValue): string {
  if (v.kind === 'nan') return 'NaN'
  if (v.kind === 'infinity') return v.negative ? '-Infinity' : 'Infinity'
  const negative = v.unscaled < 0n
  const digits = (negative ? -v.unscaled : v.unscaled).toString().padStart(v.scale + 1, '0')
  const int = digits.slice(0, digits.length - v.scale)
  const frac = digits.slice(digits.length - v.scale)
  return (negative ? '-' : '') + int + (v.scale > 0 ? '.' + frac : '')
}

/** Decodes numeric_send output: int16 ndigits, int16 weight, uint16 sign, uint16 dscale, base-10000 digits. */
export function numericFromBinary(buf: Buffer): NumericValue {
  if (buf.length < 8) throw new MergeError('invalid binary numeric value', '22P03')
  const ndigits = buf.readInt16BE(0)
  const weight = buf.readInt16BE(2)
  const sign = buf.readUInt16BE(4)
  const dscale = buf.readUInt16BE(6)
  if (sign === SIGN_NAN) return { kind: 'nan' }
  if (sign === SIGN_PINF || sign === SIGN_NINF) return { kind: 'infinity', negative: sign === SIGN_NINF }
  if ((sign !== SIGN_POS && sign !== SIGN_NEG) || ndigits < 0 || buf.length !== 8 + 2 * ndigits) {
    throw new MergeError('invalid binary numeric value', '22P03')
  }
  let all = 0n
  for (let i = 0; i < ndigits; i++) all = all * 10000n + BigInt(buf.readInt16BE(8 + 2 * i))
  // all * 10000^(weight - ndigits + 1) is the value; express it at the display scale.
  const exponent = NBASE_DIGITS * (weight - ndigits + 1) + dscale
  const unscaled = exponent >= 0 ? all * 10n ** BigInt(exponent) : all / 10n ** BigInt(-exponent)
  return { kind: 'finite', unscaled: sign === SIGN_NEG ? -unscaled : unscaled, scale: dscale }
}

export function numericToBinary(v: NumericValue): Buffer {
  if (v.kind !== 'finite') {
    const out = Buffer.alloc(8)
    out.writeUInt16BE(v.kind === 'nan' ? SIGN_NAN : v.negative ? SIGN_NINF : SIGN_PINF, 4)
    return out
  }
  const { digits, weight } = baseDigits(v)
  const out = Buffer.alloc(8 + 2 * digits.length)
  out.writeInt16BE(digits.length, 0)
  out.writeInt16BE(digits.length === 0 ? 0 : weight, 2)
  out.writeUInt16BE(v.unscaled < 0n ? SIGN_NEG : SIGN_POS, 4)
  out.writeUInt16BE(v.scale, 6)
  digits.forEach((d, i) => out.writeInt16BE(d, 8 + 2 * i))
  return out
}

/** Base-10000 digits without leading or trailing zero digits, and the weight of the first one. */
function baseDigits(v: { unscaled: bigint; scale: number }): { digits: number[]; weight: number } {
  if (v.unscaled === 0n) return { digits: [], weight: 0 }
  const pad = (NBASE_DIGITS - (v.scale % NBASE_DIGITS)) % NBASE_DIGITS
  const magnitude = (v.unscaled < 0n ? -v.unscaled : v.unscaled) * 10n ** BigInt(pad)
  let text = magnitude.toString()
  text = text.padStart(Math.ceil(text.length / NBASE_DIGITS) * NBASE_DIGITS, '0')
  const digits: number[] = []
  for (let i = 0; i < text.length; i += NBASE_DIGITS) digits.push(Number(text.slice(i, i + NBASE_DIGITS)))
  const weight = digits.length - 1 - (v.scale + pad) / NBASE_DIGITS
  while (digits.at(-1) === 0) digits.pop()
  return { digits, weight }
}

function align(a: { unscaled: bigint; scale: number }, scale: number): bigint {
  return a.unscaled * 10n ** BigInt(scale - a.scale)
}

/** Total order of numeric: -Infinity < finite < Infinity < NaN (NaN equals NaN). */
export function compareNumeric(a: NumericValue, b: NumericValue): number {
  const rank = (v: NumericValue) => (v.kind === 'nan' ? 2 : v.kind === 'infinity' ? (v.negative ? -1 : 1) : 0)
  const ra = rank(a)
  const rb = rank(b)
  if (ra !== rb || a.kind !== 'finite' || b.kind !== 'finite') return Math.sign(ra - rb)
  const scale = Math.max(a.scale, b.scale)
  const x = align(a, scale)
  const y = align(b, scale)
  return x < y ? -1 : x > y ? 1 : 0
}

export function addNumeric(a: NumericValue, b: NumericValue): NumericValue {
  if (a.kind === 'nan' || b.kind === 'nan') return { kind: 'nan' }
  if (a.kind === 'infinity' && b.kind === 'infinity') {
    return a.negative === b.negative ? a : { kind: 'nan' }
  }
  if (a.kind === 'infinity') return a
  if (b.kind === 'infinity') return b
  const scale = Math.max(a.scale, b.scale)
  return { kind: 'finite', unscaled: align(a, scale) + align(b, scale), scale }
}

/** a / b as numeric_div computes it: rounded half away from zero at select_div_scale's scale. */
export function divideNumeric(a: NumericValue, b: NumericValue): NumericValue {
  if (a.kind === 'nan' || b.kind === 'nan') return { kind: 'nan' }
  if (b.kind === 'finite' && b.unscaled === 0n) throw new MergeError('division by zero', '22012')
  if (a.kind === 'infinity') {
    if (b.kind === 'infinity') return { kind: 'nan' }
    return { kind: 'infinity', negative: a.negative !== b.unscaled < 0n }
  }
  if (b.kind === 'infinity') return { kind: 'finite', unscaled: 0n, scale: 0 }
  const scale = divisionScale(a, b)
  const negative = a.unscaled < 0n !== b.unscaled < 0n
  const num = (a.unscaled < 0n ? -a.unscaled : a.unscaled) * 10n ** BigInt(b.scale + scale)
  const den = (b.unscaled < 0n ? -b.unscaled : b.unscaled) * 10n ** BigInt(a.scale)
  let q = num / den
  if (2n * (num % den) >= den) q += 1n
  return { kind: 'finite', unscaled: negative && q !== 0n ? -q : q, scale }
}

// At least 16 significant digits in the quotient (as float8 would give), never fewer decimals than either
// input shows; the quotient's weight is estimated from the first base-10000 digits.
function divisionScale(a: { unscaled: bigint; scale: number }, b: { unscaled: bigint; scale: number }): number {
  const da = baseDigits(a)
  const db = baseDigits(b)
  const firstA = da.digits[0] ?? 0
  const firstB = db.digits[0] ?? 0
  let qweight = (da.digits.length ? da.weight : 0) - (db.digits.length ? db.weight : 0)
  if (firstA <= firstB) qweight--
  const scale = Math.max(MIN_SIG_DIGITS - qweight * NBASE_DIGITS, a.scale, b.scale, 0)
  return Math.min(scale, MAX_DISPLAY_SCALE)
}

/** The integer value, if the number is one (1.000 is); undefined otherwise. */
export function numericToBigInt(v: NumericValue): bigint | undefined {
  if (v.kind !== 'finite') return undefined
  const divisor = 10n ** BigInt(v.scale)
  return v.unscaled % divisor === 0n ? v.unscaled / divisor : undefined
}

/** A string equal for equal numbers whatever their display scale (1.0 and 1.00 group together). */
export function numericEqualityKey(v: NumericValue): string {
  if (v.kind === 'nan') return 'NaN'
  if (v.kind === 'infinity') return v.negative ? '-Inf' : 'Inf'
  let { unscaled, scale } = v
  while (scale > 0 && unscaled % 10n === 0n) {
    unscaled /= 10n
    scale--
  }
  return `${unscaled}e-${scale}`
}
