// The aggregates the merge folds across shards, by the names SQL calls them, and the built-in ones it cannot fold
// (or not exactly): shared by the planner of a read across shards and the description of what its levels read.
import type { AggregateKind } from './StatementPlan.js'

export const MERGEABLE: Record<string, AggregateKind> = {
  count: 'count', sum: 'sum', min: 'min', max: 'max', avg: 'avg', bool_and: 'bool_and', bool_or: 'bool_or', every: 'bool_and', array_agg: 'array_agg', string_agg: 'string_agg',
  stddev: 'stddev_samp', stddev_samp: 'stddev_samp', stddev_pop: 'stddev_pop', variance: 'var_samp', var_samp: 'var_samp', var_pop: 'var_pop',
  corr: 'corr', covar_pop: 'covar_pop', covar_samp: 'covar_samp', regr_avgx: 'regr_avgx', regr_avgy: 'regr_avgy', regr_count: 'regr_count',
  regr_intercept: 'regr_intercept', regr_r2: 'regr_r2', regr_slope: 'regr_slope', regr_sxx: 'regr_sxx', regr_sxy: 'regr_sxy', regr_syy: 'regr_syy',
  bit_and: 'bit_and', bit_or: 'bit_or', bit_xor: 'bit_xor', percentile_cont: 'percentile_cont', percentile_disc: 'percentile_disc', mode: 'mode',
}

/** The variance and standard deviation kinds: folded from hidden counts, sums and sums of squares. */
export const DEVIATIONS = new Set<AggregateKind>(['var_samp', 'var_pop', 'stddev_samp', 'stddev_pop'])

/** The statistics of two variables: folded from hidden counts, means and sums of squared deviations. */
export const REGRESSIONS = new Set<AggregateKind>([
  'corr', 'covar_pop', 'covar_samp', 'regr_avgx', 'regr_avgy', 'regr_count', 'regr_intercept', 'regr_r2', 'regr_slope', 'regr_sxx', 'regr_sxy', 'regr_syy',
])

/** The ordered-set aggregates: folded from a count per value of their ORDER BY (OrderedSetFold). */
export const ORDERED_SETS = new Set<AggregateKind>(['percentile_cont', 'percentile_disc', 'mode'])

// Built-in aggregates whose partial results cannot be combined (or not exactly).
export const UNMERGEABLE_AGGREGATES = new Set([
  'json_agg', 'jsonb_agg', 'json_object_agg', 'jsonb_object_agg', 'json_agg_strict',
  'jsonb_agg_strict', 'json_object_agg_strict', 'jsonb_object_agg_strict', 'json_object_agg_unique',
  'jsonb_object_agg_unique', 'json_object_agg_unique_strict', 'jsonb_object_agg_unique_strict', 'xmlagg',
  'rank', 'dense_rank', 'percent_rank', 'cume_dist',
  'range_agg', 'range_intersect_agg', 'any_value',
])
