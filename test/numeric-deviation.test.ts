// Variance and standard deviation of numeric values from their count, sum and sum of squares, digit for digit as
// Postgres prints them (expected values read off Postgres 15 for the same values).
import t from 'tap'
import { numericDeviation, type DeviationKind } from '../src/router/merge/NumericDeviation.js'
import { numericToText, parseNumeric } from '../src/router/merge/NumericValue.js'

const KINDS: DeviationKind[] = ['var_samp', 'var_pop', 'stddev_samp', 'stddev_pop']

/** count, sum, sum of squares, then var_samp, var_pop, stddev_samp, stddev_pop as Postgres prints them. */
const CASES: [string, number, string, string, (string | null)[]][] = [
  ['1, 2, 3, 4', 4, '10', '30', ['1.6666666666666667', '1.2500000000000000', '1.2909944487358056', '1.1180339887498948']],
  ['10.25, 3.50, 7.75, -2.00, 0.01', 5, '19.51', '181.3751', ['26.3117700000000000', '21.0494160000000000', '5.1294999756311531', '4.5879642544379092']],
  ['one value', 1, '5', '25', [null, '0', null, '0']],
  ['equal values', 3, '6', '12', ['0', '0', '0', '0']],
  ['large integers', 3, '24691356908', '24996189332830972124050', ['12396484148755779508614', '8264322765837186339076', '111339499499', '90908320663']],
  ['no value', 0, '0', '0', [null, null, null, null]],
]

for (const [name, n, sum, squares, expected] of CASES) {
  const got = KINDS.map((k) => {
    const v = numericDeviation(k, BigInt(n), parseNumeric(sum)!, parseNumeric(squares)!)
    return v === null ? null : numericToText(v)
  })
  t.same(got, expected, name)
}
t.same(numericToText(numericDeviation('stddev_pop', 2n, parseNumeric('NaN')!, parseNumeric('NaN')!)!), 'NaN', 'NaN among the values')
