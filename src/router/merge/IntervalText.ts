// interval and time (of day) values in text form, read as the numbers Postgres orders them by. An interval orders
// by its span in microseconds with a month as 30 days and a day as 24 hours (interval_cmp_value: '1 mon' and
// '30 days' are equal, as in GROUP BY and DISTINCT); its text is read in each IntervalStyle a server prints:
// postgres (`1 year 2 mons -3 days +04:05:06.5`), postgres_verbose (`@ 1 year 2 mons 4 hours ago`), sql_standard
// (`1-2 3 4:05:06`, one leading `-` negating every field unless each carries its own sign) and iso_8601
// (`P1Y2M3DT4H5M6.5S`). A time with time zone orders by its time in UTC, then by its zone.

const USECS_PER_DAY = 86_400_000_000n
const USECS_PER_SEC = 1_000_000n

const TIME_OF_DAY = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$/
const CLOCK = /^([+-]?)(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/
const INTEGER = /^[+-]?\d+$/
const YEAR_MONTH = /^([+-]?)(\d+)-(\d+)$/
const ISO = /^P(?:(-?\d+)Y)?(?:(-?\d+)M)?(?:(-?\d+)W)?(?:(-?\d+)D)?(?:T(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?\d+(?:\.\d{1,6})?)S)?)?$/
const SECONDS = /^([+-]?)(\d+)(?:\.(\d{1,6}))?$/

/**
 * Microseconds since midnight of a time of day (`HH:MM[:SS[.ffffff]]`, 24:00:00 included, as servers print it and
 * as a HAVING constant is usually written); undefined otherwise.
 */
export function parseTimeText(text: string): bigint | undefined {
  const m = TIME_OF_DAY.exec(text.trim())
  return m === null ? undefined : clock('', m[1]!, m[2]!, m[3] ?? '0', m[4])
}

const ZONE = /^(.*?)([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?$/

/**
 * A time with time zone as one number ordered as Postgres orders them (timetz_cmp: by the time in UTC, then by the
 * zone, so that only the same time in the same zone is equal): `HH:MM:SS[.ffffff]±HH[:MM[:SS]]`.
 */
export function parseTimeTzText(text: string): bigint | undefined {
  const m = ZONE.exec(text.trim())
  const time = m === null ? undefined : parseTimeText(m[1]!)
  if (m === null || time === undefined) return undefined
  const east = (Number(m[3]) * 3600 + Number(m[4] ?? 0) * 60 + Number(m[5] ?? 0)) * (m[2] === '-' ? -1 : 1)
  return timeTzOrder(time, -east)
}

/** Time (microseconds) and zone (seconds west of UTC, as Postgres keeps it) as one number in timetz's order. */
export function timeTzOrder(usecs: bigint, zoneWest: number): bigint {
  return (usecs + BigInt(zoneWest) * USECS_PER_SEC) * 131_072n + BigInt(zoneWest + 65_536)
}

/** An interval's three fields, as Postgres keeps them. */
export interface IntervalParts {
  months: bigint
  days: bigint
  usecs: bigint
}

export type IntervalStyle = 'postgres' | 'postgres_verbose' | 'sql_standard' | 'iso_8601'

/** An interval's span in microseconds (a month as 30 days); undefined when the text is none of the styles. */
export function parseIntervalText(text: string): bigint | undefined {
  const parts = parseInterval(text)
  return parts === undefined ? undefined : intervalSpan(parts.months, parts.days, parts.usecs)
}

/**
 * An interval's fields and the IntervalStyle it was printed in (a time alone of 10 hours or more reads as
 * postgres: sql_standard prints it alike); undefined when the text is none of the styles.
 */
export function parseInterval(text: string): (IntervalParts & { style: IntervalStyle }) | undefined {
  const t = text.trim()
  if (t.startsWith('@')) return styled(verbose(t.slice(1).trim().split(/\s+/)), 'postgres_verbose')
  if (t.startsWith('P')) return styled(iso(t), 'iso_8601')
  const tokens = t.split(/\s+/)
  const clockOnly = tokens.length === 1 ? CLOCK.exec(tokens[0]!) : null
  const standard = clockOnly !== null ? clockOnly[2]!.length === 1 : !tokens.some((token) => /^[a-z]/i.test(token))
  return styled(fields(tokens), standard ? 'sql_standard' : 'postgres')
}

function styled(parts: IntervalParts | undefined, style: IntervalStyle): (IntervalParts & { style: IntervalStyle }) | undefined {
  return parts === undefined ? undefined : { ...parts, style }
}

/** The span of months, days and microseconds, as interval_cmp_value computes it. */
export function intervalSpan(months: bigint, days: bigint, usecs: bigint): bigint {
  return usecs + (months * 30n + days) * USECS_PER_DAY
}

function clock(sign: string, hours: string, minutes: string, seconds: string, fraction: string | undefined): bigint {
  const usecs = ((BigInt(hours) * 60n + BigInt(minutes)) * 60n + BigInt(seconds)) * USECS_PER_SEC + BigInt((fraction ?? '').padEnd(6, '0'))
  return sign === '-' ? -usecs : usecs
}

/** Seconds with up to six decimals, as microseconds. */
function seconds(text: string): bigint | undefined {
  const m = SECONDS.exec(text)
  if (m === null) return undefined
  const usecs = BigInt(m[2]!) * USECS_PER_SEC + BigInt((m[3] ?? '').padEnd(6, '0'))
  return m[1] === '-' ? -usecs : usecs
}

/**
 * The unit of a postgres or postgres_verbose field (or of a HAVING constant's: `2 hours 30 minutes`), as a factor of
 * months, days or microseconds; seconds are read apart (they may have decimals).
 */
function unit(word: string): { months?: bigint; days?: bigint; usecs?: bigint } | undefined {
  switch (word.toLowerCase()) {
    case 'year':
    case 'years':
      return { months: 12n }
    case 'mon':
    case 'mons':
    case 'month':
    case 'months':
      return { months: 1n }
    case 'week':
    case 'weeks':
      return { days: 7n }
    case 'day':
    case 'days':
      return { days: 1n }
    case 'hour':
    case 'hours':
      return { usecs: 3_600n * USECS_PER_SEC }
    case 'min':
    case 'mins':
    case 'minute':
    case 'minutes':
      return { usecs: 60n * USECS_PER_SEC }
    default:
      return undefined
  }
}

function isSeconds(word: string | undefined): boolean {
  return word !== undefined && /^(sec|secs|second|seconds)$/i.test(word)
}

/** postgres and sql_standard: `N year(s)`, `N mon(s)`, `N day(s)`, `Y-M`, a bare day count, `[+-]H:MM:SS[.f]`. */
function fields(tokens: string[]): IntervalParts | undefined {
  const words = tokens.some((t) => /^[a-z]/i.test(t))
  // sql_standard: one leading '-' negates every field, unless every field carries its own sign (mixed signs, or
  // years or months with days or time).
  const negated = !words && tokens[0]!.startsWith('-') && tokens.slice(1).every((t) => !/^[+-]/.test(t))
  if (negated) tokens = [tokens[0]!.slice(1), ...tokens.slice(1)]
  let months = 0n
  let days = 0n
  let usecs = 0n
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!
    const time = CLOCK.exec(token)
    const yearMonth = YEAR_MONTH.exec(token)
    if (time !== null) usecs += clock(time[1]!, time[2]!, time[3]!, time[4]!, time[5])
    else if (yearMonth !== null) months += (yearMonth[1] === '-' ? -1n : 1n) * (BigInt(yearMonth[2]!) * 12n + BigInt(yearMonth[3]!))
    else if (words && isSeconds(tokens[i + 1])) {
      const s = seconds(token)
      if (s === undefined) return undefined
      usecs += s
      i++
    } else if (INTEGER.test(token)) {
      const n = BigInt(token)
      const u = words ? unit(tokens[++i] ?? '') : { days: 1n }
      if (u === undefined) return undefined
      months += n * (u.months ?? 0n)
      days += n * (u.days ?? 0n)
      usecs += n * (u.usecs ?? 0n)
    } else return undefined
  }
  return negated ? { months: -months, days: -days, usecs: -usecs } : { months, days, usecs }
}

/** postgres_verbose: `N unit` pairs (seconds may have decimals), `ago` at the end negating the whole. */
function verbose(tokens: string[]): IntervalParts | undefined {
  if (tokens.length === 1 && tokens[0] === '0') return { months: 0n, days: 0n, usecs: 0n }
  const ago = tokens[tokens.length - 1] === 'ago'
  if (ago) tokens = tokens.slice(0, -1)
  if (tokens.length % 2 !== 0) return undefined
  let months = 0n
  let days = 0n
  let usecs = 0n
  for (let i = 0; i < tokens.length; i += 2) {
    const word = tokens[i + 1]!
    if (isSeconds(word)) {
      const s = seconds(tokens[i]!)
      if (s === undefined) return undefined
      usecs += s
      continue
    }
    const u = unit(word)
    if (u === undefined || !INTEGER.test(tokens[i]!)) return undefined
    const n = BigInt(tokens[i]!)
    months += n * (u.months ?? 0n)
    days += n * (u.days ?? 0n)
    usecs += n * (u.usecs ?? 0n)
  }
  return ago ? { months: -months, days: -days, usecs: -usecs } : { months, days, usecs }
}

/** iso_8601: `P[nY][nM][nW][nD][T[nH][nM][n.nS]]`, each field with its own sign. */
function iso(text: string): IntervalParts | undefined {
  const m = ISO.exec(text)
  if (m === null || text === 'P' || text.endsWith('T')) return undefined
  const n = (i: number) => BigInt(m[i] ?? '0')
  const s = m[7] === undefined ? 0n : seconds(m[7])!
  return { months: n(1) * 12n + n(2), days: n(3) * 7n + n(4), usecs: (n(5) * 60n + n(6)) * 60n * USECS_PER_SEC + s }
}
