// Variance and standard deviation of numeric (and integer) values from their count, sum and sum of squares, computed
// as Postgres's numeric aggregates compute them (numeric_stddev_internal): the numerator N·Σx² − (Σx)² at twice the
// sum's scale, divided at numeric division's scale, its square root rounded at that same scale.
import { addNumeric, divideNumeric, numericFromBigInt, type NumericValue } from './NumericValue.js'

export type DeviationKind = 'var_samp' | 'var_pop' | 'stddev_samp' | 'stddev_pop'

type Finite = Extract<NumericValue, { kind: 'finite' }>

/** The aggregate over values whose count, sum and sum of squares these are; null where Postgres gives NULL. */
export function numericDeviation(kind: DeviationKind, n: bigint, sum: NumericValue, squares: NumericValue): NumericValue | null {
  const sample = kind === 'var_samp' || kind === 'stddev_samp'
  if (n === 0n || (sample && n <= 1n)) return null
  // An infinity among the values makes the numerator Inf − Inf: NaN, as in Postgres.
  if (sum.kind !== 'finite' || squares.kind !== 'finite') return { kind: 'nan' }
  const scale = sum.scale * 2
  const numerator = addNumeric(rescaled(squares.unscaled * n, squares.scale, scale), negate(rescaled(sum.unscaled * sum.unscaled, sum.scale * 2, scale))) as Finite
  if (numerator.unscaled <= 0n) return numericFromBigInt(0n)
  const variance = divideNumeric(numerator, numericFromBigInt(sample ? n * (n - 1n) : n * n)) as Finite
  return kind === 'var_samp' || kind === 'var_pop' ? variance : squareRoot(variance)
}

/** √v rounded half up at v's own scale. */
function squareRoot(v: Finite): Finite {
  const m = v.unscaled * 10n ** BigInt(v.scale)
  let root = integerSqrt(m)
  if (m - root * root > root) root += 1n
  return { kind: 'finite', unscaled: root, scale: v.scale }
}

/** ⌊√m⌋, by Newton's method from a power of two above it. */
function integerSqrt(m: bigint): bigint {
  if (m < 2n) return m
  let x = 1n << BigInt(Math.ceil(m.toString(2).length / 2))
  for (;;) {
    const next = (x + m / x) >> 1n
    if (next >= x) return x
    x = next
  }
}

/** unscaled·10^-from as a value of scale `to`, rounded half away from zero when it loses digits. */
function rescaled(unscaled: bigint, from: number, to: number): Finite {
  if (to >= from) return { kind: 'finite', unscaled: unscaled * 10n ** BigInt(to - from), scale: to }
  const divisor = 10n ** BigInt(from - to)
  const negative = unscaled < 0n
  const magnitude = negative ? -unscaled : unscaled
  let q = magnitude / divisor
  if (2n * (magnitude % divisor) >= divisor) q += 1n
  return { kind: 'finite', unscaled: negative ? -q : q, scale: to }
}

function negate(v: Finite): Finite {
  return { ...v, unscaled: -v.unscaled }
}
