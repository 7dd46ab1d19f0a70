// float4/float8 text output as Postgres 12+ prints it with extra_float_digits > 0 (the default, 1): the
// shortest digits that read back as the same value, in fixed notation when the decimal exponent is in
// [-4, 15) for float8 and [-4, 6) for float4, else as d.ddde+XX (at least two exponent digits).

const FLOAT8_FIXED_MAX_EXPONENT = 15
const FLOAT4_FIXED_MAX_EXPONENT = 6
const FIXED_MIN_EXPONENT = -4
const FLOAT4_MAX_DIGITS = 9

export function formatFloat8(x: number): string {
  const special = specialText(x)
  if (special !== undefined) return special
  // toExponential() without an argument gives the shortest digits that round-trip.
  return layout(x.toExponential(), FLOAT8_FIXED_MAX_EXPONENT)
}

export function formatFloat4(x: number): string {
  const special = specialText(x)
  if (special !== undefined) return special
  const single = Math.fround(x)
  for (let digits = 1; digits < FLOAT4_MAX_DIGITS; digits++) {
    const candidate = single.toExponential(digits - 1)
    if (Math.fround(Number(candidate)) === single) return layout(candidate, FLOAT4_FIXED_MAX_EXPONENT)
  }
  return layout(single.toExponential(FLOAT4_MAX_DIGITS - 1), FLOAT4_FIXED_MAX_EXPONENT)
}

function specialText(x: number): string | undefined {
  if (Number.isNaN(x)) return 'NaN'
  if (x === Infinity) return 'Infinity'
  if (x === -Infinity) return '-Infinity'
  if (x === 0) return Object.is(x, -0) ? '-0' : '0'
  return undefined
}

/** Lays out "[-]d.ddde±N" (JavaScript's exponential form) the way Postgres prints it. */
function layout(exponential: string, fixedMaxExponent: number): string {
  const [mantissa, exp] = exponential.split('e')
  const negative = mantissa.startsWith('-')
  const digits = mantissa.replace('-', '').replace('.', '').replace(/0+$/, '') || '0'
  const exponent = Number(exp)
  const sign = negative ? '-' : ''
  if (exponent < FIXED_MIN_EXPONENT || exponent >= fixedMaxExponent) {
    const frac = digits.slice(1)
    const e = Math.abs(exponent).toString().padStart(2, '0')
    return `${sign}${digits[0]}${frac ? '.' + frac : ''}e${exponent < 0 ? '-' : '+'}${e}`
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`
  const int = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0')
  const frac = digits.slice(exponent + 1)
  return `${sign}${int}${frac ? '.' + frac : ''}`
}
