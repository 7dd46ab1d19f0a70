// An interval the merge computed (a sum of the shards' sums), printed as a server prints it in each IntervalStyle
// (Postgres's EncodeInterval): its months split into years and months, its microseconds into hours, minutes,
// seconds and a fraction without trailing zeros, each with its sign where the style puts one.
import type { IntervalParts, IntervalStyle } from './IntervalText.js'

const USECS_PER_HOUR = 3_600_000_000n
const USECS_PER_MINUTE = 60_000_000n
const USECS_PER_SEC = 1_000_000n

interface Fields {
  year: bigint
  mon: bigint
  mday: bigint
  hour: bigint
  min: bigint
  sec: bigint
  fsec: bigint
}

const abs = (n: bigint): bigint => (n < 0n ? -n : n)

/** Splits the fields as interval2itm does: every part truncated toward zero, so each carries the sign of its field. */
function split({ months, days, usecs }: IntervalParts): Fields {
  const hour = usecs / USECS_PER_HOUR
  const min = (usecs - hour * USECS_PER_HOUR) / USECS_PER_MINUTE
  const sec = (usecs - hour * USECS_PER_HOUR - min * USECS_PER_MINUTE) / USECS_PER_SEC
  const fsec = usecs - hour * USECS_PER_HOUR - min * USECS_PER_MINUTE - sec * USECS_PER_SEC
  return { year: months / 12n, mon: months % 12n, mday: days, hour, min, sec, fsec }
}

/** Seconds (two digits with `pad`) and, when there is one, the fraction without its trailing zeros; no sign. */
function seconds(sec: bigint, fsec: bigint, pad: boolean): string {
  const whole = pad ? String(abs(sec)).padStart(2, '0') : String(abs(sec))
  return fsec === 0n ? whole : `${whole}.${String(abs(fsec)).padStart(6, '0').replace(/0+$/, '')}`
}

const two = (n: bigint): string => String(abs(n)).padStart(2, '0')

export function formatInterval(parts: IntervalParts, style: IntervalStyle): string {
  const f = split(parts)
  switch (style) {
    case 'postgres':
      return postgres(f)
    case 'postgres_verbose':
      return verbose(f)
    case 'sql_standard':
      return sqlStandard(f)
    case 'iso_8601':
      return iso(f)
  }
}

function postgres(f: Fields): string {
  let out = ''
  let zero = true
  let before = false
  const part = (value: bigint, unit: string) => {
    if (value === 0n) return
    out += `${zero ? '' : ' '}${before && value > 0n ? '+' : ''}${value} ${unit}${value !== 1n ? 's' : ''}`
    // Each nonzero field decides whether the next one shows its '+'.
    before = value < 0n
    zero = false
  }
  part(f.year, 'year')
  part(f.mon, 'mon')
  part(f.mday, 'day')
  if (zero || f.hour !== 0n || f.min !== 0n || f.sec !== 0n || f.fsec !== 0n) {
    const minus = f.hour < 0n || f.min < 0n || f.sec < 0n || f.fsec < 0n
    out += `${zero ? '' : ' '}${minus ? '-' : before ? '+' : ''}${two(f.hour)}:${two(f.min)}:${seconds(f.sec, f.fsec, true)}`
  }
  return out
}

function verbose(f: Fields): string {
  let out = '@'
  let zero = true
  let before = false
  const part = (value: bigint, unit: string) => {
    if (value === 0n) return
    // The first nonzero field decides whether the whole is "ago"; the others are printed relative to it.
    if (zero) {
      before = value < 0n
      value = abs(value)
    } else if (before) value = -value
    out += ` ${value} ${unit}${value === 1n ? '' : 's'}`
    zero = false
  }
  part(f.year, 'year')
  part(f.mon, 'mon')
  part(f.mday, 'day')
  part(f.hour, 'hour')
  part(f.min, 'min')
  if (f.sec !== 0n || f.fsec !== 0n) {
    out += ' '
    if (f.sec < 0n || (f.sec === 0n && f.fsec < 0n)) {
      if (zero) before = true
      else if (!before) out += '-'
    } else if (before) out += '-'
    out += `${seconds(f.sec, f.fsec, false)} sec${abs(f.sec) !== 1n || f.fsec !== 0n ? 's' : ''}`
    zero = false
  }
  if (zero) out += ' 0'
  if (before) out += ' ago'
  return out
}

function sqlStandard(f: Fields): string {
  const values = [f.year, f.mon, f.mday, f.hour, f.min, f.sec, f.fsec]
  const negative = values.some((v) => v < 0n)
  const positive = values.some((v) => v > 0n)
  const yearMonth = f.year !== 0n || f.mon !== 0n
  const dayTime = f.mday !== 0n || f.hour !== 0n || f.min !== 0n || f.sec !== 0n || f.fsec !== 0n
  // One sign for the whole, as the standard has it, unless the signs are mixed or it has both kinds of fields.
  const standard = !(negative && positive) && !(yearMonth && dayTime)
  if (!negative && !positive) return '0'
  if (!standard) {
    const yearSign = f.year < 0n || f.mon < 0n ? '-' : '+'
    const daySign = f.mday < 0n ? '-' : '+'
    const secSign = f.hour < 0n || f.min < 0n || f.sec < 0n || f.fsec < 0n ? '-' : '+'
    return `${yearSign}${abs(f.year)}-${abs(f.mon)} ${daySign}${abs(f.mday)} ${secSign}${abs(f.hour)}:${two(f.min)}:${seconds(f.sec, f.fsec, true)}`
  }
  const sign = negative ? '-' : ''
  if (yearMonth) return `${sign}${abs(f.year)}-${abs(f.mon)}`
  const time = `${abs(f.hour)}:${two(f.min)}:${seconds(f.sec, f.fsec, true)}`
  return f.mday !== 0n ? `${sign}${abs(f.mday)} ${time}` : `${sign}${time}`
}

function iso(f: Fields): string {
  if ([f.year, f.mon, f.mday, f.hour, f.min, f.sec, f.fsec].every((v) => v === 0n)) return 'PT0S'
  const part = (value: bigint, unit: string) => (value === 0n ? '' : `${value}${unit}`)
  let out = `P${part(f.year, 'Y')}${part(f.mon, 'M')}${part(f.mday, 'D')}`
  if (f.hour !== 0n || f.min !== 0n || f.sec !== 0n || f.fsec !== 0n) out += 'T'
  out += `${part(f.hour, 'H')}${part(f.min, 'M')}`
  if (f.sec !== 0n || f.fsec !== 0n) out += `${f.sec < 0n || f.fsec < 0n ? '-' : ''}${seconds(f.sec, f.fsec, false)}S`
  return out
}
