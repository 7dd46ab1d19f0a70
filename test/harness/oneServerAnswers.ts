import type pg from 'pg'
import type { Test } from 'tap'

/**
 * Each query (its table written `{t}`) run on the sharded table and on `single`, a table of the same rows on one
 * server: a subtest per query asserting that the merge across shards answers as that server does.
 */
export function answersAsOneServer(t: Test, client: pg.Client, queries: string[], sharded: string, single: string): void {
  for (const q of queries) {
    t.test(q.replace('{t}', sharded), async (t) => {
      const expected = await client.query(q.replace('{t}', single))
      const merged = await client.query(q.replace('{t}', sharded))
      t.same(merged.rows, expected.rows, 'merged across shards as one server answers')
    })
  }
}
