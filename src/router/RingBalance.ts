// How evenly a ring spreads the key space, and how many points per shard would spread it evenly enough. The
// balance depends on the shard names and the seed, so a map can be unlucky; more points even it out (at the cost
// of moving keys, since the points are part of the on-disk contract).
import { ShardRing } from './ShardRing.js'

/** max/mean share above which `pgshard check` warns (the ring acceptance bound). */
export const BALANCE_LIMIT = 1.05

const MAX_POINTS_PER_SHARD = 4096

/** The busiest shard's share of the key space over the mean share (1 is a perfect balance). */
export function balanceOf(ring: ShardRing): number {
  const shares = ring.shares()
  return Math.max(...shares) * shares.length
}

/** The smallest doubling of the ring's points per shard (up to 4096) that balances within `limit`, if any. */
export function pointsForBalance(ring: ShardRing, limit = BALANCE_LIMIT): number | undefined {
  for (let points = ring.options.pointsPerShard * 2; points <= MAX_POINTS_PER_SHARD; points *= 2) {
    if (balanceOf(new ShardRing(ring.shardNames, { ...ring.options, pointsPerShard: points })) <= limit) return points
  }
  return undefined
}
