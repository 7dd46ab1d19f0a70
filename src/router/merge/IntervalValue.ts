// Interval values the merge reads from the shards and writes to the client, and the scaling Postgres 15 does to
// them (interval_mul, interval_div): a fraction of a month cascades into days of 30, of a day into microseconds,
// each rounded to microseconds as TSROUND does.
import { formatInterval } from './IntervalFormat.js'
import { parseInterval, type IntervalParts, type IntervalStyle } from './IntervalText.js'
import { MergeError } from './MergeError.js'

const INT32 = 2n ** 31n
const INT64 = 2n ** 63n
const SECS_PER_DAY = 86_400

/**
 * A shard's interval value; in text, with the style it shows (`shown`: false for a time alone of 10 hours or
 * more, which two styles print alike).
 */
export function readInterval(raw: Buffer, format: 0 | 1): IntervalParts & { style?: IntervalStyle; shown: boolean } {
  if (format === 1) {
    if (raw.length !== 16) throw new MergeError('invalid binary value of interval from a shard', '22P03')
    return { usecs: raw.readBigInt64BE(0), days: BigInt(raw.readInt32BE(8)), months: BigInt(raw.readInt32BE(12)), shown: true }
  }
  const text = raw.toString('utf8')
  const parts = parseInterval(text)
  if (parts === undefined) throw new MergeError(`invalid input syntax for type interval: "${text.slice(0, 64)}"`, '22P02')
  return { ...parts, shown: !/^-?[1-9]\d+:\d{2}:\d{2}(\.\d+)?$/.test(text.trim()) }
}

/** An interval the merge computed, in `format`: printed in `style`, or binary; 22008 beyond its range. */
export function writeInterval(parts: IntervalParts, format: 0 | 1, style: IntervalStyle): Buffer {
  if (!within(parts.months, INT32) || !within(parts.days, INT32) || !within(parts.usecs, INT64)) throw new MergeError('interval out of range', '22008')
  if (format === 0) return Buffer.from(formatInterval(parts, style))
  const out = Buffer.alloc(16)
  out.writeBigInt64BE(parts.usecs, 0)
  out.writeInt32BE(Number(parts.days), 8)
  out.writeInt32BE(Number(parts.months), 12)
  return out
}

/** Postgres 15's interval_div, step for step in float8 as it computes. */
export function divideInterval(span: IntervalParts, factor: number): IntervalParts {
  return scaled(span, (n) => n / factor)
}

/** Postgres 15's interval_mul, the same steps with a product; 22008 when a field's product leaves its range. */
export function multiplyInterval(span: IntervalParts, factor: number): IntervalParts {
  const months = Number(span.months) * factor
  const days = Number(span.days) * factor
  if (!(Math.abs(months) <= 2 ** 31) || !(Math.abs(days) <= 2 ** 31)) throw new MergeError('interval out of range', '22008')
  return scaled(span, (n) => n * factor)
}

/**
 * Each field scaled: the whole months and days kept, the fraction of a month cascaded into days of 30 and the
 * fraction of a day into seconds, each rounded to microseconds (TSROUND), as interval_mul and interval_div do.
 */
function scaled(span: IntervalParts, by: (n: number) => number): IntervalParts {
  const months = by(Number(span.months))
  const days = by(Number(span.days))
  const month = Math.trunc(months)
  let day = Math.trunc(days)
  const monthRemainderDays = tsRound((months - month) * 30)
  let secRemainder = tsRound((days - day + monthRemainderDays - Math.trunc(monthRemainderDays)) * SECS_PER_DAY)
  // 24:00:00 from rounding, or more from the cascade of months and days.
  if (Math.abs(secRemainder) >= SECS_PER_DAY) {
    day += Math.trunc(secRemainder / SECS_PER_DAY)
    secRemainder -= Math.trunc(secRemainder / SECS_PER_DAY) * SECS_PER_DAY
  }
  day += Math.trunc(monthRemainderDays)
  const usecs = rint(by(Number(span.usecs)) + secRemainder * 1_000_000)
  return { months: BigInt(month), days: BigInt(day), usecs: BigInt(usecs) }
}

/** C's rint: to the nearest integer, halves to even. */
function rint(x: number): number {
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x)
}

/** Rounded to microseconds, as TSROUND does. */
function tsRound(x: number): number {
  return rint(x * 1_000_000) / 1_000_000
}

function within(n: bigint, limit: bigint): boolean {
  return n >= -limit && n < limit
}
