import t from 'tap'
import { formatInterval } from '../src/router/merge/IntervalFormat.js'
import { intervalSpan, parseInterval, parseIntervalText, parseTimeText, parseTimeTzText, timeTzOrder, type IntervalStyle } from '../src/router/merge/IntervalText.js'

// Each interval as Postgres 15 prints it in IntervalStyle postgres, postgres_verbose, sql_standard and iso_8601
// (taken from psql), with its months, days and microseconds.
const PRINTED: [string[], [bigint, bigint, bigint]][] = [
  [['-1 years -2 mons +3 days -04:05:06.5', '@ 1 year 2 mons -3 days 4 hours 5 mins 6.5 secs ago', '-1-2 +3 -4:05:06.5', 'P-1Y-2M3DT-4H-5M-6.5S'], [-14n, 3n, -14_706_500_000n]],
  [['1 day -00:00:01', '@ 1 day -1 sec', '+0-0 +1 -0:00:01', 'P1DT-1S'], [0n, 1n, -1_000_000n]],
  [['00:00:00', '@ 0', '0', 'PT0S'], [0n, 0n, 0n]],
  [['-3 days -04:05:06', '@ 3 days 4 hours 5 mins 6 secs ago', '-3 4:05:06', 'P-3DT-4H-5M-6S'], [0n, -3n, -14_706_000_000n]],
  [['1 year 2 mons', '@ 1 year 2 mons', '1-2', 'P1Y2M'], [14n, 0n, 0n]],
  [['-1 years -2 mons', '@ 1 year 2 mons ago', '-1-2', 'P-1Y-2M'], [-14n, 0n, 0n]],
  [['-00:00:00.000001', '@ 0.000001 secs ago', '-0:00:00.000001', 'PT-0.000001S'], [0n, 0n, -1n]],
]

t.test('an interval printed in any IntervalStyle reads as its span, a month as 30 days', async (t) => {
  for (const [texts, [months, days, usecs]] of PRINTED) {
    for (const text of texts) t.equal(parseIntervalText(text), intervalSpan(months, days, usecs), text)
  }
  t.equal(parseIntervalText('1 mon'), parseIntervalText('30 days'), 'a month is 30 days, as Postgres compares them')
  t.equal(parseIntervalText('30 days'), parseIntervalText('720:00:00'))
})

const STYLES: IntervalStyle[] = ['postgres', 'postgres_verbose', 'sql_standard', 'iso_8601']

t.test('an interval is printed as Postgres prints it in each IntervalStyle, and its style is told from its text', async (t) => {
  for (const [texts, [months, days, usecs]] of PRINTED) {
    STYLES.forEach((style, i) => t.equal(formatInterval({ months, days, usecs }, style), texts[i], `${style}: ${texts[i]}`))
    texts.forEach((text, i) => t.equal(parseInterval(text)?.style, STYLES[i], `${text} is ${STYLES[i]}`))
  }
})

t.test('HAVING constants as people write them', async (t) => {
  t.equal(parseIntervalText('2 hours 30 minutes'), intervalSpan(0n, 0n, 9_000_000_000n))
  t.equal(parseIntervalText('1 week 1.5 seconds'), intervalSpan(0n, 7n, 1_500_000n))
  t.equal(parseIntervalText('1 Year'), intervalSpan(12n, 0n, 0n))
  for (const bad of ['', 'soon', '1 fortnight', '1.5 days', 'P', 'PT', '@ 1', '1:2']) t.equal(parseIntervalText(bad), undefined, `"${bad}" is not read`)
})

t.test('a time of day reads as microseconds since midnight', async (t) => {
  t.equal(parseTimeText('00:00:00'), 0n)
  t.equal(parseTimeText('24:00:00'), 86_400_000_000n)
  t.equal(parseTimeText('13:05:09.25'), 47_109_250_000n)
  t.equal(parseTimeText('1:00'), 3_600_000_000n, 'HH:MM, as a HAVING constant')
  t.equal(parseTimeText('1:00 PM'), undefined)
})

t.test('a time with time zone orders by its time in UTC, then by its zone', async (t) => {
  t.equal(parseTimeTzText('10:00:00+02'), timeTzOrder(36_000_000_000n, -7200))
  t.equal(parseTimeTzText('04:30:00-05:30'), timeTzOrder(16_200_000_000n, 19_800))
  t.ok(parseTimeTzText('10:00:00+02')! < parseTimeTzText('08:00:00+00')!, 'the same instant: the zone further east first (Postgres keeps zones as seconds west)')
  t.ok(parseTimeTzText('10:00:00+02')! < parseTimeTzText('09:00:00+00')!, 'an earlier instant first')
  t.equal(parseTimeTzText('10:00:00'), undefined, 'a time without its zone is not read')
})
