// Reads date and timestamp[tz] text in DateStyle ISO into the units of their binary forms (days and
// microseconds since 2000-01-01, UTC for timestamptz), so values compare correctly across BC years, years
// beyond 9999, infinities and timestamptz offsets that differ row to row (daylight saving).

const DATE_INFINITY = 2147483647n
const DATE_MINUS_INFINITY = -2147483648n
const TIMESTAMP_INFINITY = 2n ** 63n - 1n
const TIMESTAMP_MINUS_INFINITY = -(2n ** 63n)

const USECS_PER_DAY = 86_400_000_000n
const DATE = /^(\d{4,})-(\d{2})-(\d{2})( BC)?$/
const TIMESTAMP =
  /^(\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2})(?::(\d{2})(?::(\d{2}))?)?)?( BC)?$/

/** Days since 2000-01-01 of a proleptic Gregorian date (astronomical year: 1 BC is year 0). */
function daysSince2000(year: number, month: number, day: number): bigint {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return BigInt(era * 146097 + dayOfEra - 719468 - 10957)
}

function astronomicalYear(digits: string, bc: string | undefined): number {
  const year = Number(digits)
  return bc ? 1 - year : year
}

/** Days since 2000-01-01, or undefined when the text is not an ISO date. */
export function parseDateText(text: string): bigint | undefined {
  if (text === 'infinity') return DATE_INFINITY
  if (text === '-infinity') return DATE_MINUS_INFINITY
  const m = DATE.exec(text)
  if (!m) return undefined
  return daysSince2000(astronomicalYear(m[1], m[4]), Number(m[2]), Number(m[3]))
}

/**
 * Microseconds since 2000-01-01 00:00 (UTC when an offset is present), or undefined when the text is not an
 * ISO timestamp. `requireOffset` refuses a timestamptz without offset (its zone would be the session's).
 */
export function parseTimestampText(text: string, requireOffset: boolean): bigint | undefined {
  if (text === 'infinity') return TIMESTAMP_INFINITY
  if (text === '-infinity') return TIMESTAMP_MINUS_INFINITY
  const m = TIMESTAMP.exec(text)
  if (!m) return undefined
  const [, y, mo, d, h, mi, s, frac = '', offSign, offH, offM = '0', offS = '0', bc] = m
  if (requireOffset && offSign === undefined) return undefined
  const days = daysSince2000(astronomicalYear(y, bc), Number(mo), Number(d))
  const seconds = (Number(h) * 60 + Number(mi)) * 60 + Number(s)
  let usecs = days * USECS_PER_DAY + BigInt(seconds) * 1_000_000n + BigInt(frac.padEnd(6, '0') || '0')
  if (offSign !== undefined) {
    const offset = BigInt((Number(offH) * 60 + Number(offM)) * 60 + Number(offS)) * 1_000_000n
    usecs += offSign === '+' ? -offset : offset
  }
  return usecs
}
