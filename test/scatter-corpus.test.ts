// Cross-shard SELECTs through pgshard over 3 shards against the same rows in one plain Postgres database (a 4th
// database, "plain", on the first shard's server; C collation, as every LocalTopology database): the same rows,
// column names, types (OID and modifier) and, where the query orders its result totally, the same order. Text and
// binary result formats, text parameters, NULLs, empty results and shards without rows.
import pg from 'pg'
import t from 'tap'
import { canonicalKey } from '../src/router/KeyEncoding.js'
import { ShardMap } from '../src/router/ShardMap.js'
import { proxyConfig } from './harness/startProxy.js'
import { startWithPlainTwin } from './harness/plainTwin.js'
import { seededRandom } from './harness/seededRandom.js'

const SHARDING = {
  tables: [
    { name: 'items', key: 'id', type: 'bigint' },
    { name: 'item_tags', key: 'item_id', type: 'bigint' },
    { name: 'sparse', key: 'id', type: 'bigint' },
    { name: 'empty_t', key: 'a', type: 'integer' },
  ],
  reference_tables: ['categories'],
}

const SCHEMA = [
  `CREATE TABLE items (id bigint PRIMARY KEY, grp int, name text, price numeric(12,2), qty int, ratio float8, f4 real,
     created timestamptz, day date, ts timestamp, u uuid, flag bool, small smallint, note varchar(20), code char(3), data bytea)`,
  'CREATE TABLE item_tags (item_id bigint, tag text)',
  'CREATE TABLE categories (grp int PRIMARY KEY, label text)',
  'CREATE TABLE sparse (id bigint PRIMARY KEY, v text)',
  'CREATE TABLE empty_t (a int, b text)',
  // Views over sharded tables: made on every shard through pgshard, read as their queries.
  'CREATE VIEW cheap_items AS SELECT id, grp, name, price, qty FROM items WHERE price < 5000',
  'CREATE VIEW tag_counts AS SELECT item_id, count(*) AS tags FROM item_tags GROUP BY item_id',
  'CREATE VIEW item_labels (item, label, qty) AS SELECT i.id, c.label, i.qty FROM items i JOIN categories c ON c.grp = i.grp',
]
const ITEM_COLUMNS = ['id', 'grp', 'name', 'price', 'qty', 'ratio', 'f4', 'created', 'day', 'ts', 'u', 'flag', 'small', 'note', 'code', 'data']

function items(count: number, seed: number): unknown[][] {
  const rand = seededRandom(seed)
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1))
  const maybe = <T>(v: T, nulls = 0.1): T | null => (rand() < nulls ? null : v)
  const pick = <T>(xs: T[]): T => xs[int(0, xs.length - 1)]!
  const names = ['apple', 'Apple', 'banana', 'éclair', 'Zebra', '', 'a b', 'a%', '日本', 'zz', 'Äpfel', 'apple pie', 'b']
  const words = ['red', 'green', 'Blue', 'yellow', 'x', 'long words here']
  const ids = new Set<number>()
  while (ids.size < count) ids.add(int(1, 1_000_000))
  return [...ids].map((id) => {
    const ratio = rand() < 0.02 ? pick(['NaN', 'Infinity', '-Infinity']) : String(int(-400, 400) / 4)
    const micros = String(int(0, 999_999)).padStart(6, '0')
    const stamp = `${int(2020, 2025)}-${String(int(1, 12)).padStart(2, '0')}-${String(int(1, 28)).padStart(2, '0')} ${String(int(0, 23)).padStart(2, '0')}:${String(int(0, 59)).padStart(2, '0')}:${String(int(0, 59)).padStart(2, '0')}.${micros}`
    const hex = Array.from({ length: 32 }, () => int(0, 15).toString(16)).join('')
    return [
      id,
      maybe(int(0, 7)),
      maybe(pick(names)),
      maybe((int(0, 1_000_000) / 100).toFixed(2)),
      maybe(int(0, 50)),
      maybe(ratio),
      maybe(String(int(-200, 200) / 2)),
      maybe(`${stamp}+0${int(0, 9)}`),
      maybe(new Date(Date.UTC(2024, 0, 1 + int(0, 400))).toISOString().slice(0, 10)),
      maybe(stamp),
      maybe(`${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`),
      maybe(rand() < 0.5),
      maybe(int(-50, 50)),
      maybe(pick(words)),
      maybe(pick(['abc', 'AB', 'xyz', 'a', 'zz'])),
      maybe(Buffer.from(Array.from({ length: int(0, 4) }, () => int(0, 255)))),
    ]
  })
}

type Order = 'ordered' | 'set'
interface Query {
  sql: string
  order: Order
  params?: unknown[]
  binary?: boolean
}

const Q = (sql: string, order: Order, extra: Partial<Query> = {}): Query => ({ sql, order, ...extra })

const CORPUS: Query[] = [
  // ORDER BY on each type the merge orders (ties broken by id so the order is total), NULLs first and last.
  Q('SELECT id, qty FROM items ORDER BY qty NULLS FIRST, id', 'ordered'),
  Q('SELECT id, small FROM items ORDER BY small DESC, id', 'ordered'),
  Q('SELECT id FROM items ORDER BY id DESC LIMIT 15', 'ordered'),
  Q('SELECT id, price FROM items ORDER BY price, id', 'ordered'),
  Q('SELECT id, ratio FROM items ORDER BY ratio DESC NULLS LAST, id', 'ordered'),
  Q('SELECT id, f4 FROM items ORDER BY f4, id', 'ordered'),
  Q('SELECT id, name FROM items ORDER BY name, id', 'ordered'),
  Q('SELECT id, note FROM items ORDER BY note DESC, id', 'ordered'),
  Q('SELECT id, code FROM items ORDER BY code, id DESC', 'ordered'),
  Q('SELECT id, created FROM items ORDER BY created, id', 'ordered'),
  Q('SELECT id, day FROM items ORDER BY day DESC NULLS LAST, id', 'ordered'),
  Q('SELECT id, ts FROM items ORDER BY ts NULLS FIRST, id', 'ordered'),
  Q('SELECT id, u FROM items ORDER BY u, id', 'ordered'),
  Q('SELECT id, flag FROM items ORDER BY flag, id', 'ordered'),
  Q('SELECT id, data FROM items ORDER BY data DESC, id', 'ordered'),
  // SELECT *, positions, aliases, hidden keys, LIMIT / OFFSET / FETCH.
  Q('SELECT * FROM items ORDER BY id LIMIT 10', 'ordered'),
  Q('SELECT * FROM items ORDER BY name DESC NULLS LAST, id LIMIT 5 OFFSET 7', 'ordered'),
  Q('SELECT * FROM items', 'set'),
  Q('SELECT id, lower(name) AS l FROM items ORDER BY l, id LIMIT 20', 'ordered'),
  Q('SELECT id, name FROM items ORDER BY 2 DESC, 1 LIMIT 12 OFFSET 3', 'ordered'),
  Q('SELECT id FROM items ORDER BY qty * 2 DESC NULLS LAST, id LIMIT 10', 'ordered'),
  Q('SELECT id, name FROM items ORDER BY id OFFSET 590', 'ordered'),
  Q('SELECT id FROM items ORDER BY id LIMIT 0', 'ordered'),
  Q('SELECT id FROM items ORDER BY id LIMIT ALL', 'ordered'),
  Q('SELECT id, name FROM items ORDER BY id FETCH FIRST 5 ROWS ONLY', 'ordered'),
  Q('SELECT id, name FROM items WHERE qty > $1 ORDER BY id LIMIT $2 OFFSET $3', 'ordered', { params: ['20', '7', '4'] }),
  Q("SELECT id, name FROM items WHERE name LIKE 'a%'", 'set'),
  // Aggregates over everything, over nothing, FILTER.
  Q('SELECT count(*), count(name), sum(qty), sum(price), min(price), max(price), avg(price), avg(qty) FROM items', 'ordered'),
  Q('SELECT sum(small), sum(qty), sum(id), sum(ratio), sum(f4), avg(ratio), avg(f4), avg(small) FROM items', 'ordered'),
  Q('SELECT min(name), max(name), min(created), max(day), min(ts), min(code), max(note), bool_and(flag), bool_or(flag), every(flag) FROM items', 'ordered'),
  Q('SELECT count(*) FROM items WHERE qty > 1000', 'ordered'),
  Q('SELECT sum(qty), avg(qty), min(name), max(price), count(*) FROM items WHERE qty > 100000', 'ordered'),
  Q('SELECT count(*), max(a) FROM empty_t', 'ordered'),
  Q('SELECT max(id), count(*), min(v) FROM sparse', 'ordered'),
  Q('SELECT avg(price) FILTER (WHERE flag), count(*) FILTER (WHERE qty > 5) FROM items', 'ordered'),
  Q('SELECT count(*)::int AS n, count(name)::bigint FROM items', 'ordered'),
  // GROUP BY, HAVING, DISTINCT.
  Q('SELECT grp, count(*), sum(price), avg(price), min(name), max(created) FROM items GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered'),
  Q('SELECT flag, grp, count(*) FROM items GROUP BY flag, grp ORDER BY 1, 2', 'ordered'),
  Q('SELECT grp, count(*) AS n FROM items GROUP BY grp ORDER BY n DESC, grp LIMIT 3', 'ordered'),
  Q('SELECT grp, count(*)::int AS n FROM items GROUP BY grp HAVING count(*) > 10 ORDER BY count(*)::int DESC, grp', 'ordered'),
  Q('SELECT grp, sum(qty) FROM items GROUP BY grp HAVING sum(qty) > 300 ORDER BY grp', 'ordered'),
  Q('SELECT grp, count(*) FROM items GROUP BY grp HAVING count(*) >= $1 ORDER BY grp', 'ordered', { params: ['70'] }),
  Q('SELECT day, count(*) FROM items GROUP BY day ORDER BY count(*) DESC, day LIMIT 5', 'ordered'),
  Q('SELECT grp, avg(ratio), sum(f4) FROM items GROUP BY grp ORDER BY grp', 'ordered'),
  Q('SELECT code, count(*) FROM items GROUP BY code', 'set'),
  Q('SELECT lower(note) AS ln, count(*) FROM items GROUP BY lower(note) ORDER BY ln NULLS FIRST', 'ordered'),
  Q('SELECT grp, count(*) FROM items WHERE qty IS NULL GROUP BY grp HAVING count(*) > 1 OR grp IS NULL ORDER BY grp', 'ordered'),
  Q('SELECT DISTINCT grp FROM items ORDER BY grp', 'ordered'),
  Q('SELECT DISTINCT flag, code FROM items', 'set'),
  // Joins the shards answer completely: co-located on the key, with a reference table, subqueries over it.
  Q('SELECT i.id, t.tag FROM items i JOIN item_tags t ON t.item_id = i.id ORDER BY i.id, t.tag', 'ordered'),
  Q('SELECT i.grp, count(t.tag) FROM items i LEFT JOIN item_tags t ON t.item_id = i.id GROUP BY i.grp ORDER BY i.grp', 'ordered'),
  Q('SELECT c.label, count(*), sum(i.qty) FROM items i JOIN categories c ON c.grp = i.grp GROUP BY c.label ORDER BY c.label', 'ordered'),
  // Variances and standard deviations from each shard's count, sum and sum of squares: numeric as Postgres computes it.
  Q('SELECT stddev(price), variance(qty), stddev_pop(price), var_pop(small), stddev_samp(id), count(*) FROM items', 'ordered', { binary: true }),
  Q('SELECT grp, stddev(qty) AS s, var_samp(price) FILTER (WHERE flag) FROM items GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered'),
  Q('SELECT grp, round(stddev(qty), 3) AS s FROM items GROUP BY grp HAVING variance(qty) > 100 ORDER BY grp', 'ordered'),
  Q('SELECT stddev(qty) FROM items WHERE id < 0', 'ordered'),
  // Ordered-set aggregates: each shard answers a count per value, the merge reads the answer off the values in order.
  Q('SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY price), percentile_disc(0.5) WITHIN GROUP (ORDER BY price), mode() WITHIN GROUP (ORDER BY qty) FROM items', 'ordered'),
  Q('SELECT grp, percentile_cont(0.9) WITHIN GROUP (ORDER BY qty DESC) AS p90, percentile_disc(0.25) WITHIN GROUP (ORDER BY day), count(*) FROM items GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered'),
  Q('SELECT percentile_cont(0.3) WITHIN GROUP (ORDER BY f4), percentile_cont(0.7) WITHIN GROUP (ORDER BY ratio), percentile_disc(0.7) WITHIN GROUP (ORDER BY small), percentile_disc(1) WITHIN GROUP (ORDER BY created) FROM items', 'ordered', { binary: true }),
  Q('SELECT grp, mode() WITHIN GROUP (ORDER BY code DESC), mode() WITHIN GROUP (ORDER BY flag), percentile_disc(0) WITHIN GROUP (ORDER BY u) FROM items GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered'),
  Q('SELECT percentile_cont($1) WITHIN GROUP (ORDER BY qty) FILTER (WHERE flag), sum(qty), count(DISTINCT grp), avg(price) FROM items', 'ordered', { params: [0.42] }),
  Q('SELECT grp, percentile_cont(0.5) WITHIN GROUP (ORDER BY price) AS median FROM items GROUP BY grp HAVING count(*) > 3 ORDER BY median DESC NULLS LAST LIMIT 4', 'ordered'),
  Q('SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY qty)::numeric * 2, 1) AS twice FROM items', 'ordered'),
  Q("SELECT percentile_cont(ARRAY[0.5, 0.9, NULL, 0.99]) WITHIN GROUP (ORDER BY price), percentile_disc('{0.1,0.5}'::float8[]) WITHIN GROUP (ORDER BY name), percentile_disc(ARRAY[0.2, 1]) WITHIN GROUP (ORDER BY created) FROM items", 'ordered'),
  Q('SELECT grp, percentile_cont(ARRAY[0.25, 0.75]) WITHIN GROUP (ORDER BY ratio), percentile_disc(ARRAY[$1::float8, 0.5]) WITHIN GROUP (ORDER BY note) FROM items GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered', { params: [0.1], binary: true }),
  Q('SELECT percentile_disc(ARRAY[]::float8[]) WITHIN GROUP (ORDER BY qty), percentile_cont(ARRAY[0.5]) WITHIN GROUP (ORDER BY qty) FROM items WHERE id < 0', 'ordered'),
  Q('SELECT grp, count(*) FROM items GROUP BY grp HAVING percentile_cont(0.5) WITHIN GROUP (ORDER BY price) > 4000 + grp ORDER BY grp', 'ordered'),
  Q('SELECT grp, mode() WITHIN GROUP (ORDER BY name), percentile_disc(0.5) WITHIN GROUP (ORDER BY name DESC) FROM items GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered'),
  Q('SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY qty), mode() WITHIN GROUP (ORDER BY name) FROM items WHERE id < 0', 'ordered'),
  Q('SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY qty + small NULLS FIRST), percentile_cont(NULL) WITHIN GROUP (ORDER BY qty) FROM items', 'ordered'),
  // A reference table's rows kept by an outer join come from every shard: regrouped, aggregates of the sharded
  // side's columns that ignore NULLs are exact (a category without items, 'unused', counts 0 once).
  Q('SELECT c.label, count(i.id), sum(i.qty), min(i.price), max(i.name), avg(i.qty), bool_or(i.flag) FROM categories c LEFT JOIN items i ON i.grp = c.grp GROUP BY c.grp, c.label ORDER BY c.label', 'ordered', { binary: true }),
  Q('SELECT c.grp, count(i.id) AS n FROM categories c LEFT JOIN items i ON i.grp = c.grp AND i.qty > 40 GROUP BY c.grp HAVING count(i.id) < 30 ORDER BY n DESC, c.grp LIMIT 4', 'ordered'),
  Q('SELECT count(t.tag), count(DISTINCT i.id), sum(i.qty::numeric) FROM categories c LEFT JOIN items i ON i.grp = c.grp LEFT JOIN item_tags t ON t.item_id = i.id', 'ordered'),
  Q('SELECT c.label, count(i.id) FROM items i RIGHT JOIN categories c ON c.grp = i.grp WHERE c.grp > 1 GROUP BY 1 ORDER BY 1', 'ordered'),
  Q("SELECT c.label, count(i.id), max(i.qty) FROM categories c LEFT JOIN items i ON i.grp = c.grp WHERE i.qty > 10 AND i.name IS NOT NULL AND i.name NOT LIKE 'a%' GROUP BY c.label ORDER BY c.label", 'ordered'),
  Q('SELECT i.id, c.label FROM items i LEFT JOIN categories c USING (grp) ORDER BY i.id LIMIT 30', 'ordered'),
  Q("SELECT id FROM items WHERE grp IN (SELECT grp FROM categories WHERE label LIKE 'c%') ORDER BY id", 'ordered'),
  Q('SELECT count(*) FROM items WHERE id = ANY($1::bigint[])', 'ordered', { params: ['{1,2,3}'] }),
  Q('SELECT id FROM sparse ORDER BY id DESC', 'ordered'),
  Q('SELECT a, b FROM empty_t ORDER BY a', 'ordered'),
  // count(DISTINCT key): a key lives on one shard, so the shards' counts add up.
  Q('SELECT count(DISTINCT id), count(*) FROM items', 'ordered'),
  Q('SELECT count(DISTINCT i.id), count(t.tag) FROM items i LEFT JOIN item_tags t ON t.item_id = i.id', 'ordered'),
  Q('SELECT i.grp, count(DISTINCT t.item_id), count(*), min(DISTINCT t.tag) FROM items i JOIN item_tags t ON t.item_id = i.id GROUP BY i.grp ORDER BY i.grp NULLS FIRST', 'ordered'),
  Q('SELECT COUNT(DISTINCT("Item"."id")) AS "cnt" FROM "items" "Item" LEFT JOIN "categories" "C" ON "C"."grp"="Item"."grp" WHERE "C"."label" = $1', 'ordered', { params: ['common'] }),
  // Subqueries in FROM that only filter, join and compute per row (TypeORM's pagination of joined entities).
  Q(
    'SELECT DISTINCT "distinctAlias"."Item_id" AS "ids_Item_id", "distinctAlias"."Item_id" FROM (SELECT "Item"."id" AS "Item_id", "Item"."name" AS "Item_name", "C"."label" AS "C_label" FROM "items" "Item" LEFT JOIN "categories" "C" ON "C"."grp"="Item"."grp" WHERE "C"."label" = $1) "distinctAlias" ORDER BY "distinctAlias"."Item_id" ASC, "Item_id" ASC LIMIT 5',
    'ordered',
    { params: ['common'] },
  ),
  Q(
    'SELECT DISTINCT "distinctAlias"."Item_id" AS "ids_Item_id", "distinctAlias"."Item_name" FROM (SELECT "Item"."id" AS "Item_id", "Item"."name" AS "Item_name", "T"."tag" AS "T_tag" FROM "items" "Item" LEFT JOIN "item_tags" "T" ON "T"."item_id"="Item"."id") "distinctAlias" ORDER BY "distinctAlias"."Item_name" DESC, "Item_id" ASC LIMIT 7 OFFSET 4',
    'ordered',
  ),
  Q('SELECT count(*), sum(q), max(n) FROM (SELECT qty AS q, lower(name) AS n FROM items WHERE qty > 10) s', 'ordered'),
  Q('SELECT g, sum(q), count(*) FROM (SELECT grp AS g, qty * 2 AS q FROM items) s GROUP BY g ORDER BY g NULLS FIRST', 'ordered'),
  Q('SELECT s.id, r.n FROM (SELECT id, grp FROM items) s JOIN (SELECT grp, count(*) AS n FROM categories GROUP BY grp) r ON r.grp = s.grp ORDER BY s.id LIMIT 20', 'ordered'),
  Q('SELECT x FROM (SELECT id AS x FROM (SELECT id FROM items WHERE flag) a) b ORDER BY x DESC LIMIT 10', 'ordered'),
  // Subqueries tied to the outer row on co-located sharding keys: every row they read is on that row's shard
  // (Django's Exists(OuterRef('pk')), Subquery annotations and __in querysets).
  Q(`SELECT i.id, i.name FROM items i WHERE EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = i.id AND t.tag = 'red') ORDER BY i.id`, 'ordered'),
  Q('SELECT "items"."id" FROM "items" WHERE NOT EXISTS (SELECT 1 AS "a" FROM "item_tags" U0 WHERE U0."item_id" = ("items"."id") LIMIT 1) ORDER BY "items"."id" LIMIT 25', 'ordered'),
  Q('SELECT "items"."id" FROM "items" WHERE "items"."id" IN (SELECT U0."item_id" FROM "item_tags" U0 WHERE U0."tag" <> $1) ORDER BY "items"."id" DESC', 'ordered', { params: ['x'] }),
  Q('SELECT i.id, (SELECT count(*) FROM item_tags t WHERE t.item_id = i.id) AS tags, (SELECT max(t.tag) FROM item_tags t WHERE t.item_id = i.id) AS last FROM items i ORDER BY tags DESC, i.id LIMIT 20', 'ordered'),
  Q('SELECT i.grp, count(*) FROM items i WHERE EXISTS (SELECT 1 FROM item_tags t WHERE i.id = t.item_id) GROUP BY i.grp ORDER BY i.grp NULLS FIRST', 'ordered'),
  Q('SELECT i.id, c.label FROM items i JOIN categories c ON c.grp = i.grp WHERE i.id IN (SELECT item_id FROM item_tags) AND i.qty > 5 ORDER BY i.id', 'ordered'),
  Q('SELECT id, ARRAY(SELECT t.tag FROM item_tags t WHERE t.item_id = items.id ORDER BY t.tag) AS tags FROM items ORDER BY id LIMIT 15', 'ordered'),
  Q(`SELECT t.item_id, t.tag FROM item_tags t WHERE EXISTS (SELECT 1 FROM items U0 INNER JOIN categories U1 ON U1.grp = U0.grp WHERE U1.label LIKE 'c%' AND U0.id = t.item_id) ORDER BY t.item_id, t.tag`, 'ordered'),
  Q(`SELECT t.item_id FROM item_tags t WHERE t.item_id IN (SELECT U0.id FROM items U0 WHERE U0.flag) AND EXISTS (SELECT 1 FROM items U0 INNER JOIN categories U1 ON U1.grp = U0.grp WHERE U0.id = t.item_id) ORDER BY 1`, 'ordered'),
  Q('SELECT "items"."id" FROM "items" ORDER BY EXISTS(SELECT (1) AS "a" FROM "item_tags" U0 WHERE U0."item_id" = "items"."id" LIMIT 1) DESC, "items"."id" LIMIT 12', 'ordered'),
  // key IN / NOT IN (SELECT key …) anywhere: the rows with an outer row's key are on its shard, and keys are never NULL.
  Q(`SELECT "items"."id" FROM "items" WHERE NOT ("items"."id" IN (SELECT U1."item_id" FROM "item_tags" U1 WHERE U1."tag" LIKE $1)) ORDER BY "items"."id" LIMIT 30`, 'ordered', { params: ['tag1%'] }),
  Q('SELECT count(*) FROM items WHERE id NOT IN (SELECT item_id FROM item_tags)', 'ordered'),
  Q('SELECT i.id, i.id IN (SELECT t.item_id FROM item_tags t WHERE t.tag > $1) AS tagged FROM items i ORDER BY i.id LIMIT 40', 'ordered', { params: ['tag3'] }),
  Q("SELECT id FROM items WHERE qty > 45 OR id IN (SELECT item_id FROM item_tags WHERE tag LIKE 'tag4%') ORDER BY id", 'ordered'),
  Q('SELECT count(*) FROM items WHERE id <> ALL (SELECT item_id FROM item_tags WHERE tag < $1)', 'ordered', { params: ['tag2'] }),
  // Existence tests: whether any shard holds a matching row (SQLAlchemy's exists(), TypeORM's exists()/existsBy()).
  Q(`SELECT EXISTS (SELECT 1 FROM items WHERE name = 'zz') AS e`, 'ordered'),
  Q('SELECT EXISTS (SELECT * FROM items WHERE qty > 1000) AS anon_1', 'ordered'),
  Q('SELECT EXISTS (SELECT DISTINCT t.tag FROM item_tags t WHERE t.tag = $1 LIMIT 1)', 'ordered', { params: ['red'] }),
  Q('SELECT EXISTS (SELECT 1 FROM empty_t)', 'ordered', { binary: true }),
  Q('SELECT EXISTS (SELECT 1 FROM sparse s WHERE s.v IS NOT NULL)', 'ordered'),
  Q('SELECT 1 AS "row_exists" FROM (SELECT 1 AS dummy_column) "dummy_table" WHERE EXISTS (SELECT 1 FROM "items" "Item" WHERE (("Item"."name" = $1))) LIMIT 1', 'ordered', { params: ['banana'] }),
  Q('SELECT 1 AS "row_exists" FROM (SELECT 1 AS dummy_column) "dummy_table" WHERE EXISTS (SELECT 1 FROM "items" "Item" WHERE (("Item"."name" = $1))) LIMIT 1', 'ordered', { params: ['no such name'] }),
  Q(`SELECT 'yes' AS answer WHERE EXISTS (SELECT 1 FROM item_tags WHERE lower(tag) = 'blue')`, 'ordered'),
  // Subqueries in FROM with tied subqueries, or grouped (or made DISTINCT) by a sharding key: every group on one
  // shard (Django's count() and aggregate() over annotated querysets, its Paginator).
  Q('SELECT COUNT(*) FROM (SELECT "items"."id" AS Col1, EXISTS(SELECT (1) AS "a" FROM "item_tags" U0 WHERE U0."item_id" = "items"."id" LIMIT 1) AS "h" FROM "items") subquery', 'ordered'),
  Q('SELECT COUNT(*) FROM (SELECT "items"."id" AS Col1, COUNT("item_tags"."tag") AS "n" FROM "items" LEFT OUTER JOIN "item_tags" ON ("items"."id" = "item_tags"."item_id") GROUP BY "items"."id" HAVING COUNT("item_tags"."tag") > 0) subquery', 'ordered'),
  Q('SELECT sum(n), max(n), count(*) FROM (SELECT (SELECT count(*) FROM item_tags t WHERE t.item_id = i.id) AS n FROM items i WHERE i.qty > 10) s', 'ordered'),
  Q('SELECT count(*) FROM (SELECT DISTINCT item_id FROM item_tags) s', 'ordered'),
  Q(`SELECT s.item_id, s.tags FROM (SELECT item_id, string_agg(tag, ',' ORDER BY tag) AS tags FROM item_tags GROUP BY item_id) s ORDER BY s.item_id LIMIT 10`, 'ordered'),
  Q('SELECT g, count(*) FROM (SELECT item_id, count(*) AS g FROM item_tags GROUP BY 1) s GROUP BY g ORDER BY g', 'ordered'),
  // A subquery in FROM that outputs a sharding key (as it is, renamed, through * or an alias list) joins on it
  // with sharded tables and other such subqueries (SQLAlchemy's join to a grouped subquery, Doctrine's count).
  Q('SELECT i.id, i.name, s.cnt FROM items i JOIN (SELECT item_id, count(*) AS cnt FROM item_tags GROUP BY item_id) s ON s.item_id = i.id ORDER BY s.cnt DESC, i.id LIMIT 15', 'ordered'),
  Q('SELECT i.id, coalesce(s.cnt, 0) FROM items i LEFT OUTER JOIN (SELECT item_tags.item_id AS item_id, count(*) AS cnt FROM item_tags GROUP BY item_tags.item_id) AS s ON i.id = s.item_id WHERE i.qty > $1 ORDER BY i.id', 'ordered', { params: [25] }),
  Q('SELECT count(*) AS dctrn_count FROM (SELECT DISTINCT id_0 FROM (SELECT i0_.id AS id_0, i0_.name AS name_1 FROM items i0_ LEFT JOIN item_tags t1_ ON i0_.id = t1_.item_id WHERE i0_.qty > 10) dctrn_result) dctrn_table', 'ordered'),
  Q('SELECT a.id, a.qty, t.tag FROM (SELECT * FROM items WHERE flag) a JOIN item_tags t ON t.item_id = a.id', 'set'),
  Q('SELECT a.k, b.tags FROM (SELECT id AS k FROM items WHERE qty > 30) a JOIN (SELECT item_id AS k2, count(*) AS tags FROM item_tags GROUP BY 1) b ON b.k2 = a.k ORDER BY a.k', 'ordered'),
  Q('SELECT x, label, n FROM (SELECT id, grp FROM items) AS a(x, g) JOIN categories c ON c.grp = a.g JOIN (SELECT item_id, count(*) AS n FROM item_tags GROUP BY item_id) t ON t.item_id = a.x ORDER BY n DESC, x LIMIT 10', 'ordered'),
  Q('SELECT a.grp, count(DISTINCT t.tag), count(*) FROM (SELECT id, grp FROM items WHERE name IS NOT NULL) a JOIN item_tags t ON t.item_id = a.id GROUP BY a.grp ORDER BY a.grp NULLS FIRST', 'ordered'),
  Q('SELECT c.id, c.price, t.tags FROM cheap_items c JOIN tag_counts t ON t.item_id = c.id ORDER BY t.tags DESC, c.id LIMIT 12', 'ordered'),
  // UNION [ALL]: each shard's is its share; the merge removes UNION's duplicates between shards, orders and limits.
  Q('SELECT id, name FROM items WHERE qty < 5 UNION SELECT id, name FROM items WHERE qty > 45 ORDER BY id', 'ordered'),
  Q("(SELECT item_id AS id FROM item_tags WHERE tag = 'red') UNION ALL (SELECT id FROM items WHERE flag) ORDER BY 1 LIMIT 10 OFFSET 3", 'ordered'),
  Q('SELECT grp FROM items UNION SELECT grp FROM categories ORDER BY grp NULLS FIRST', 'ordered', { binary: true }),
  Q('(SELECT "items"."id", "items"."name" FROM "items" WHERE "items"."qty" > $1) UNION (SELECT "items"."id", "items"."name" FROM "items" WHERE "items"."price" < $2) ORDER BY (1) ASC LIMIT 7', 'ordered', { params: [40, 300] }),
  Q('SELECT i.id, t.tag FROM items i JOIN item_tags t ON t.item_id = i.id WHERE i.grp = 2 UNION ALL SELECT id, code FROM items WHERE grp = 3', 'set'),
  Q('SELECT tag FROM item_tags UNION SELECT name FROM items WHERE qty > $1 ORDER BY tag DESC NULLS LAST OFFSET $2', 'ordered', { params: [10, 4] }),
  Q('SELECT a FROM empty_t UNION ALL SELECT a FROM empty_t WHERE b IS NULL', 'set'),
  // A UNION in FROM (SQLAlchemy's q1.union(q2)): UNION ALL adds up; UNION when a column holds the key in each SELECT.
  Q('SELECT anon_1.items_id, anon_1.items_name FROM (SELECT items.id AS items_id, items.name AS items_name FROM items WHERE items.qty < $1 UNION SELECT items.id AS items_id, items.name AS items_name FROM items WHERE items.qty > $2) AS anon_1 ORDER BY anon_1.items_id', 'ordered', { params: [5, 45] }),
  Q('SELECT count(*), count(DISTINCT k), sum(k) FROM (SELECT id AS k FROM items WHERE flag UNION ALL SELECT item_id FROM item_tags) s', 'ordered'),
  Q("SELECT s.k, i.name FROM (SELECT id AS k FROM items WHERE qty < 3 UNION SELECT item_id FROM item_tags WHERE tag LIKE 'tag1%') s JOIN items i ON i.id = s.k ORDER BY s.k", 'ordered'),
  Q("SELECT i.id, s.label FROM items i JOIN (SELECT grp, label FROM categories UNION SELECT 9, 'nine') s ON s.grp = i.grp ORDER BY i.id LIMIT 20", 'ordered'),
  Q('SELECT k, n FROM (SELECT item_id AS k, count(*) AS n FROM item_tags GROUP BY item_id UNION ALL SELECT id, 0 FROM items WHERE qty = 0) s ORDER BY k, n', 'ordered', { binary: true }),
  Q('SELECT * FROM (SELECT a FROM empty_t UNION SELECT a FROM empty_t) e', 'set'),
  // INTERSECT and EXCEPT (Django's intersection() and difference()) when a column holds the key in every SELECT.
  Q('SELECT id, name FROM items WHERE qty < 25 INTERSECT SELECT id, name FROM items WHERE flag ORDER BY id', 'ordered'),
  Q('SELECT id FROM items EXCEPT SELECT item_id FROM item_tags ORDER BY id LIMIT 20 OFFSET 5', 'ordered'),
  Q('SELECT item_id FROM item_tags EXCEPT ALL SELECT id FROM items WHERE qty > 10', 'set'),
  Q("SELECT item_id FROM item_tags INTERSECT ALL SELECT item_id FROM item_tags WHERE tag LIKE 'tag1%'", 'set'),
  Q('(SELECT "items"."id", "items"."name" FROM "items" WHERE "items"."qty" > $1) INTERSECT (SELECT "items"."id", "items"."name" FROM "items" WHERE "items"."price" < $2) ORDER BY (1) ASC', 'ordered', { params: [20, 5000] }),
  Q('SELECT count(*), sum(s.id) FROM (SELECT id FROM items EXCEPT SELECT item_id FROM item_tags) s', 'ordered'),
  Q('SELECT id FROM items WHERE grp = 1 UNION ALL (SELECT id FROM items WHERE grp = 2 UNION SELECT item_id FROM item_tags) ORDER BY 1', 'ordered', { binary: true }),
  // A CTE named once in FROM reads as the subquery it stands for (as Postgres inlines it), by the same rules.
  Q('WITH tot AS (SELECT item_id, count(*) AS n FROM item_tags GROUP BY item_id) SELECT i.id, i.name, tot.n FROM items i JOIN tot ON tot.item_id = i.id ORDER BY tot.n DESC, i.id LIMIT 10', 'ordered'),
  Q('WITH cheap AS (SELECT id, grp, price FROM items WHERE price < $1) SELECT grp, count(*), max(price) FROM cheap GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered', { params: [3000] }),
  Q("WITH a AS (SELECT * FROM item_tags WHERE tag <> 'x'), b AS (SELECT item_id, count(*) AS n FROM a GROUP BY item_id) SELECT sum(n), count(*), max(n) FROM b", 'ordered'),
  Q('WITH c(k, label) AS MATERIALIZED (SELECT i.id, c.label FROM items i JOIN categories c ON c.grp = i.grp) SELECT label, count(DISTINCT k) FROM c GROUP BY label ORDER BY label', 'ordered'),
  Q('WITH one AS (SELECT 1 AS x) SELECT count(*) FROM items, one WHERE qty > x', 'ordered'),
  // LATERAL subqueries tied the same way (Drizzle's relational queries), or computing per row.
  Q(`SELECT "items"."id", "t"."data" AS "tags" FROM "items" "items" LEFT JOIN LATERAL (SELECT coalesce(json_agg(json_build_array("t"."item_id", "t"."tag") ORDER BY "t"."tag"), '[]'::json) AS "data" FROM "item_tags" "t" WHERE "t"."item_id" = "items"."id") "t" ON true ORDER BY "items"."id" LIMIT 25`, 'ordered'),
  Q(`SELECT i.id, x.data FROM items i LEFT JOIN LATERAL (SELECT json_agg(json_build_array(t.tag) ORDER BY t.tag) AS data FROM (SELECT * FROM item_tags t WHERE t.item_id = i.id ORDER BY t.tag LIMIT $1) t) x ON true WHERE i.qty > 20 ORDER BY i.id`, 'ordered', { params: [2] }),
  Q('SELECT i.id, x.n, y.label FROM items i CROSS JOIN LATERAL (SELECT count(*) AS n FROM item_tags t WHERE t.item_id = i.id) x LEFT JOIN LATERAL (SELECT c.label FROM categories c WHERE c.grp = i.grp LIMIT 1) y ON true ORDER BY x.n DESC, i.id LIMIT 20', 'ordered'),
  // DISTINCT ON: each shard's first row per key, the merge keeps the first of those (Django's distinct('field')).
  Q('SELECT DISTINCT ON (grp) grp, id, name FROM items ORDER BY grp, id DESC', 'ordered'),
  Q('SELECT DISTINCT ON (grp) id, price FROM items ORDER BY grp NULLS FIRST, price DESC NULLS LAST, id', 'ordered'),
  Q('SELECT DISTINCT ON ("items"."code", "items"."flag") "items"."code", "items"."flag", "items"."id" FROM "items" ORDER BY "items"."code" ASC, "items"."flag" ASC, "items"."id" DESC LIMIT 7 OFFSET 2', 'ordered'),
  Q('SELECT DISTINCT ON (flag, grp) flag, grp, qty FROM items WHERE qty > $1 ORDER BY grp, flag, qty DESC, id', 'ordered', { params: [5] }),
  Q('SELECT DISTINCT ON (i.grp) i.grp, c.label, i.id FROM items i LEFT JOIN categories c ON c.grp = i.grp ORDER BY i.grp DESC, i.id', 'ordered'),
  // Locking reads: each shard locks the rows it returns.
  Q('SELECT id, qty FROM items WHERE qty > 40 ORDER BY id FOR UPDATE', 'ordered'),
  Q('SELECT i.id FROM items i JOIN categories c ON c.grp = i.grp WHERE i.flag ORDER BY i.id FOR SHARE OF i SKIP LOCKED', 'ordered'),
  // Binary result format.
  Q('SELECT id, price, ratio, f4, created, day, ts, u, flag, small, qty, data FROM items ORDER BY created, id LIMIT 40', 'ordered', { binary: true }),
  Q('SELECT grp, count(*), sum(price), avg(price), avg(qty), sum(ratio), min(created), max(small) FROM items GROUP BY grp ORDER BY grp', 'ordered', { binary: true }),
  Q('SELECT * FROM items ORDER BY u DESC, id LIMIT 25', 'ordered', { binary: true }),
  // count(*) of a subquery with LIMIT / OFFSET (Rails' limit(n).count, Django's qs[m:n].count(), SQLAlchemy's
  // query.limit(n).count()): each shard counts its first n + m rows, the proxy caps the sum.
  Q('SELECT COUNT(*) FROM (SELECT 1 AS one FROM items LIMIT 25) subquery_for_count', 'ordered'),
  Q('SELECT COUNT(*) FROM (SELECT "items"."id" AS "col1" FROM "items" WHERE qty > 10 ORDER BY id LIMIT 10 OFFSET 5) subquery', 'ordered'),
  Q('SELECT count(*) AS count_1 FROM (SELECT items.id AS items_id FROM items LIMIT $1 OFFSET $2) AS anon_1', 'ordered', { params: ['50', '590'] }),
  Q('SELECT count(*) FROM (SELECT id FROM items LIMIT $1 OFFSET $2) AS s', 'ordered', { params: ['50', '580'], binary: true }),
  Q('SELECT count(*) FROM (SELECT id FROM items LIMIT 10 OFFSET 700) s', 'ordered'),
  Q('SELECT count(*) FROM (SELECT id FROM items OFFSET 100) s', 'ordered'),
  Q('SELECT count(*) FROM (SELECT id, name FROM items FETCH FIRST 7 ROWS ONLY) s', 'ordered'),
  Q('SELECT count(*) FROM (SELECT * FROM items LIMIT 1000) s', 'ordered'),
  Q('SELECT count(*) FROM (SELECT id FROM sparse ORDER BY id LIMIT 3 OFFSET 1) s', 'ordered'),
  Q('SELECT count(*) FROM (SELECT i.id FROM items i JOIN item_tags g ON g.item_id = i.id LIMIT 30 OFFSET 3) s', 'ordered'),
  Q('SELECT DISTINCT day FROM items ORDER BY day', 'ordered', { binary: true }),
  // A subquery in FROM whose rows its LIMIT or OFFSET picks (SQLAlchemy's joinedload with limit() or first(),
  // Sequelize's include with limit): it runs first across shards, and each shard gets its share of the rows picked.
  Q('SELECT anon_1.items_id, anon_1.items_name, item_tags_1.tag FROM (SELECT items.id AS items_id, items.name AS items_name FROM items ORDER BY items.id LIMIT $1) AS anon_1 LEFT OUTER JOIN item_tags AS item_tags_1 ON anon_1.items_id = item_tags_1.item_id ORDER BY anon_1.items_id, item_tags_1.tag', 'ordered', { params: [5] }),
  Q('SELECT anon_1.items_id, anon_1.items_price, t.tag FROM (SELECT items.id AS items_id, items.price AS items_price FROM items WHERE items.qty > $1 ORDER BY items.price DESC NULLS LAST, items.id LIMIT $2 OFFSET $3) AS anon_1 LEFT OUTER JOIN item_tags AS t ON anon_1.items_id = t.item_id ORDER BY anon_1.items_price DESC NULLS LAST, anon_1.items_id, t.tag', 'ordered', { params: [10, 7, 4] }),
  Q('SELECT "Item".*, "tags"."tag" AS "tags.tag" FROM (SELECT "Item"."id", "Item"."name" FROM "items" AS "Item" ORDER BY "Item"."name" DESC, "Item"."id" LIMIT 8) AS "Item" LEFT OUTER JOIN "item_tags" AS "tags" ON "Item"."id" = "tags"."item_id" ORDER BY "Item"."name" DESC, "Item"."id", "tags"."tag"', 'ordered'),
  Q('SELECT count(*) FROM (SELECT id FROM items LIMIT 20) s JOIN items i ON i.id = s.id', 'ordered'),
  Q('SELECT count(t.tag), count(DISTINCT s.id), max(s.qty) FROM (SELECT id, qty FROM items ORDER BY qty DESC NULLS LAST, id LIMIT 30 OFFSET 10) s JOIN item_tags t ON t.item_id = s.id', 'ordered'),
  Q('SELECT s.id, s.price FROM (SELECT id, price FROM items ORDER BY price, id OFFSET 5 ROWS FETCH FIRST 6 ROWS ONLY) s ORDER BY s.price, s.id', 'ordered', { binary: true }),
  Q('SELECT s.id, s.v FROM (SELECT * FROM sparse ORDER BY id DESC LIMIT 2 OFFSET 1) s ORDER BY s.id', 'ordered'),
  Q('SELECT c.label, count(*) FROM (SELECT * FROM categories ORDER BY grp LIMIT 3) c JOIN items i ON i.grp = c.grp GROUP BY c.label ORDER BY c.label', 'ordered'),
  Q('SELECT e.a, t.tag FROM (SELECT a, b FROM empty_t ORDER BY a LIMIT 5) e LEFT JOIN item_tags t ON t.item_id = e.a', 'set'),
  Q('SELECT count(*) FROM (SELECT id FROM items ORDER BY id LIMIT 1000) s JOIN item_tags t ON t.item_id = s.id', 'ordered'),
  Q('SELECT s.id FROM (SELECT id FROM items ORDER BY id LIMIT 0) s', 'ordered'),
  // count(DISTINCT x) of columns that are not keys: each shard answers a row per value, pgshard counts them once.
  Q('SELECT count(DISTINCT grp), count(DISTINCT name), count(*), sum(qty) FROM items', 'ordered'),
  Q('SELECT grp, count(DISTINCT qty), count(DISTINCT code)::int AS codes, avg(qty) FROM items GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered', { binary: true }),
  Q('SELECT count(DISTINCT t.tag), count(DISTINCT i.id) FROM items i JOIN item_tags t ON t.item_id = i.id WHERE i.qty > $1', 'ordered', { params: ['5'] }),
  Q('SELECT count(DISTINCT price) FILTER (WHERE qty > 10), count(DISTINCT ratio), count(DISTINCT u), count(DISTINCT day), max(id) FROM items', 'ordered', { binary: true }),
  Q('SELECT grp FROM items GROUP BY grp HAVING count(DISTINCT code) > 3 ORDER BY count(DISTINCT note) DESC, grp', 'ordered'),
  Q('SELECT count(DISTINCT a), count(DISTINCT b) FROM empty_t', 'ordered'),
  Q("SELECT count(DISTINCT lower(name)), count(DISTINCT date_trunc('month', created)), count(DISTINCT qty % 7) FILTER (WHERE flag) FROM items", 'ordered'),
  Q('SELECT grp, count(DISTINCT tag) FROM items i JOIN item_tags t ON t.item_id = i.id GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered', { binary: true }),
  // Ranking windows over the groups of an aggregated query: pgshard numbers the merged groups.
  Q('SELECT grp, count(*), rank() OVER (ORDER BY count(*) DESC) AS r, dense_rank() OVER (ORDER BY sum(qty) DESC NULLS LAST) FROM items GROUP BY grp ORDER BY r, grp NULLS FIRST', 'ordered'),
  Q('SELECT grp, flag, count(*), row_number() OVER (PARTITION BY flag ORDER BY grp NULLS FIRST) FROM items GROUP BY grp, flag ORDER BY flag NULLS FIRST, grp NULLS FIRST', 'ordered', { binary: true }),
  Q('SELECT code, avg(price), rank() OVER (ORDER BY avg(price) DESC NULLS LAST) FROM items GROUP BY code HAVING count(*) > $1 ORDER BY 3, code LIMIT 3', 'ordered', { params: [5] }),
  Q('SELECT i.grp, count(t.tag), rank() OVER (ORDER BY count(t.tag) DESC) FROM items i JOIN item_tags t ON t.item_id = i.id GROUP BY i.grp ORDER BY 3, 1 NULLS FIRST', 'ordered'),
  Q('SELECT count(*), rank() OVER (ORDER BY count(*)) FROM items', 'ordered'),
  Q('SELECT a, rank() OVER (ORDER BY count(*)) FROM empty_t GROUP BY a', 'ordered'),
  // sum and avg of DISTINCT values: of a key they add up; of other values pgshard folds each value once.
  Q('SELECT sum(DISTINCT id), avg(DISTINCT id), count(DISTINCT id) FROM items', 'ordered'),
  Q('SELECT sum(DISTINCT qty), avg(DISTINCT qty), sum(DISTINCT price), avg(DISTINCT price), sum(DISTINCT ratio), avg(DISTINCT small), count(*) FROM items', 'ordered'),
  Q('SELECT grp, sum(DISTINCT qty) FILTER (WHERE flag), avg(DISTINCT price) FILTER (WHERE qty > $1), avg(qty) FROM items GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered', { params: [10], binary: true }),
  Q('SELECT grp, avg(DISTINCT qty) FROM items GROUP BY grp HAVING sum(DISTINCT qty) > 300 ORDER BY avg(DISTINCT qty) DESC, grp', 'ordered'),
  Q('SELECT sum(DISTINCT i.qty % 5), avg(DISTINCT length(t.tag)) FROM items i JOIN item_tags t ON t.item_id = i.id', 'ordered'),
  Q('SELECT sum(DISTINCT a), avg(DISTINCT a) FROM empty_t', 'ordered'),
  // Window functions partitioned by the sharding key: each partition's rows are on one shard.
  Q('SELECT item_id, tag, row_number() OVER (PARTITION BY item_id ORDER BY tag DESC) AS rn, count(*) OVER (PARTITION BY item_id) FROM item_tags ORDER BY item_id, tag', 'ordered'),
  Q('SELECT item_id, tag, lag(tag) OVER w, first_value(tag) OVER w, count(*) OVER (w ORDER BY tag) FROM item_tags WINDOW w AS (PARTITION BY item_id) ORDER BY item_id DESC, tag LIMIT 40 OFFSET 5', 'ordered'),
  Q('SELECT i.id, t.tag, i.qty, sum(i.qty) OVER (PARTITION BY i.id ORDER BY t.tag), rank() OVER (PARTITION BY t.item_id ORDER BY t.tag) FROM items i JOIN item_tags t ON t.item_id = i.id ORDER BY i.id, t.tag', 'ordered', { binary: true }),
  Q('SELECT item_id, tag FROM (SELECT item_id, tag, row_number() OVER (PARTITION BY item_id ORDER BY tag) AS rn FROM item_tags) s WHERE rn = 1 ORDER BY item_id', 'ordered'),
  Q('SELECT count(*), max(n) FROM (SELECT t.item_id, count(*) OVER (PARTITION BY t.item_id) AS n FROM item_tags t WHERE t.tag > $1) s', 'ordered', { params: ['tag2'] }),
  Q('SELECT id, name, array_agg(id) OVER (PARTITION BY id) FROM items ORDER BY name NULLS FIRST, id LIMIT 12', 'ordered'),
  // array_agg(x ORDER BY x) (Django's ArrayAgg with ordering): each shard's sorted array, merged by the elements.
  Q('SELECT ARRAY_AGG(name ORDER BY name) AS s FROM items WHERE qty > 40', 'ordered'),
  Q('SELECT grp, array_agg(id ORDER BY id DESC), count(*) FROM items GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered', { binary: true }),
  Q('SELECT array_agg(price ORDER BY price DESC NULLS LAST), array_agg(grp ORDER BY grp NULLS FIRST) FROM items WHERE qty BETWEEN 10 AND 14', 'ordered'),
  Q('SELECT array_agg(created ORDER BY created), array_agg(u ORDER BY u DESC) FROM items WHERE qty < $1', 'ordered', { params: [4] }),
  Q('SELECT array_agg(code ORDER BY code) FILTER (WHERE flag), array_agg(day ORDER BY day) FROM items WHERE qty < 8', 'ordered', { binary: true }),
  Q('SELECT array_agg(a ORDER BY a), coalesce(array_agg(b ORDER BY b), $1) FROM empty_t', 'ordered', { params: ['{}'] }),
  Q("SELECT array_agg(DISTINCT grp), string_agg(DISTINCT code, ',' ORDER BY code DESC) FROM items", 'ordered'),
  Q('SELECT grp, array_agg(DISTINCT qty ORDER BY qty DESC NULLS LAST) FROM items GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered', { binary: true }),
  // Grouped by a sharding key, each shard computes its groups whole: any aggregate (ordered by anything, json_agg,
  // percentiles), HAVING on the shards; the merge orders and limits rows (Django's annotate over the key's model).
  Q("SELECT item_id, string_agg(tag, ',' ORDER BY tag DESC), percentile_cont(0.5) WITHIN GROUP (ORDER BY length(tag)) FROM item_tags GROUP BY item_id ORDER BY item_id LIMIT 20", 'ordered'),
  Q('SELECT i.id, array_agg(t.tag ORDER BY t.tag DESC) FILTER (WHERE t.tag IS NOT NULL), json_agg(t.tag ORDER BY t.tag) FROM items i LEFT JOIN item_tags t ON t.item_id = i.id GROUP BY i.id HAVING count(t.tag) > 1 ORDER BY count(t.tag) DESC, i.id LIMIT 10 OFFSET 3', 'ordered'),
  Q('SELECT item_id, stddev_pop(length(tag)), var_samp(length(tag)) FROM item_tags GROUP BY 1 ORDER BY 1 LIMIT 25', 'ordered', { binary: true }),
  Q('SELECT DISTINCT item_id, json_agg(tag ORDER BY tag)::text FROM item_tags WHERE tag > $1 GROUP BY item_id ORDER BY item_id LIMIT 5', 'ordered', { params: ['tag2'] }),
  // string_agg(x, d ORDER BY x): the shards run array_agg, the merge joins the merged elements with d.
  Q("SELECT grp, string_agg(name, ', ' ORDER BY name) FROM items GROUP BY grp ORDER BY grp NULLS FIRST", 'ordered'),
  Q('SELECT string_agg(code, $1 ORDER BY code DESC) AS codes, count(*) FROM items WHERE qty < 10', 'ordered', { params: ['|'], binary: true }),
  Q("SELECT string_agg(note, E'\\n' ORDER BY note) AS notes FROM items WHERE qty > 45", 'ordered'),
  Q("SELECT string_agg(data, '\\x2c2c'::bytea ORDER BY data) FROM items WHERE qty < 3", 'ordered'),
  Q("SELECT string_agg(data, '\\x2c'::bytea ORDER BY data) FROM items WHERE qty < 3", 'ordered', { binary: true }),
  Q("SELECT string_agg(b, ',') FROM empty_t", 'ordered'),
  // count(*) of a subquery that combines rows by what is not a key (Django's values().distinct().count(), its
  // Paginator over a grouped queryset): pgshard counts the rows of the subquery read across shards.
  Q('SELECT COUNT(*) FROM (SELECT DISTINCT "items"."grp" AS Col1 FROM "items") subquery', 'ordered'),
  Q('SELECT COUNT(*) FROM (SELECT "items"."code" AS Col1, COUNT("items"."id") AS "n" FROM "items" GROUP BY "items"."code") subquery', 'ordered'),
  Q('SELECT COUNT(*) FROM (SELECT DISTINCT "items"."grp" AS Col1 FROM "items" ORDER BY "items"."grp" ASC LIMIT 2) subquery', 'ordered'),
  Q('SELECT count(*) AS n FROM (SELECT name FROM items GROUP BY name HAVING count(*) > $1) s', 'ordered', { params: [1], binary: true }),
  Q('SELECT count(*) FROM (SELECT DISTINCT t.tag FROM items i JOIN item_tags t ON t.item_id = i.id WHERE i.qty > $1) s', 'ordered', { params: [20] }),
  Q('SELECT count(*) FROM (SELECT DISTINCT b FROM empty_t) s', 'ordered'),
  // COALESCE(aggregate, constant) (Django's Sum(…, default=0)): the shards' values where they had one, else the constant.
  Q('SELECT COALESCE(SUM(price), 0) AS s, coalesce(max(qty), -1), coalesce(min(name), $2), coalesce(max(small), 0), coalesce(count(*), 0) FROM items WHERE qty > $1', 'ordered', { params: [10, 'none'] }),
  Q('SELECT COALESCE(SUM(price), 0) AS s, coalesce(max(qty), -1), coalesce(min(name), $2), coalesce(max(small), 0) FROM items WHERE qty > $1', 'ordered', { params: [1000, 'none'], binary: true }),
  Q('SELECT grp, coalesce(sum(price) FILTER (WHERE flag), 0), coalesce(max(small), 0::smallint), coalesce(bool_and(flag), true) FROM items GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered', { binary: true }),
  Q('SELECT grp, coalesce(sum(qty), 0) AS s FROM items GROUP BY grp ORDER BY s DESC, grp NULLS FIRST', 'ordered'),
  Q("SELECT coalesce(sum(a), 0), coalesce(max(b), 'x') FROM empty_t", 'ordered'),
  Q("SELECT coalesce(max(v), 'zzz'), coalesce(sum(id), 100), coalesce(min(id), -5) FROM sparse WHERE id > 2", 'ordered'),
  // Aggregates over all rows as windows beside a page of rows: the merge adds up the shards' totals.
  Q('SELECT *, count(*) OVER () AS total FROM items WHERE qty > $1 ORDER BY id LIMIT 20 OFFSET 40', 'ordered', { params: [10] }),
  Q('SELECT id, count(*) OVER ()::int AS total, sum(qty) OVER (), min(price) OVER (), max(created) OVER (), bool_or(flag) OVER () FROM items ORDER BY id DESC LIMIT 15', 'ordered', { binary: true }),
  Q("SELECT i.id, t.tag, count(*) FILTER (WHERE t.tag LIKE 'tag1%') OVER () AS ones, count(*) OVER () FROM items i JOIN item_tags t ON t.item_id = i.id ORDER BY i.id, t.tag LIMIT 10", 'ordered'),
  Q('SELECT DISTINCT grp, count(*) OVER () FROM items WHERE qty < 10', 'set'),
  Q('SELECT id, v, count(*) OVER () FROM sparse ORDER BY id', 'ordered'),
  Q('SELECT a, count(*) OVER () FROM empty_t', 'set'),
  Q('SELECT id, count(*) OVER () FROM items WHERE id < 0', 'set'),
  // Ranking windows over all rows when the statement orders by them (a leaderboard, Django's Window(Rank())): the
  // merge orders by the window's keys and numbers the merged rows.
  Q('SELECT "items"."name", RANK() OVER (ORDER BY "items"."price" DESC) AS "r" FROM "items" ORDER BY "r" ASC, "items"."name" ASC LIMIT 5', 'ordered'),
  Q('SELECT id, rank() OVER (ORDER BY qty DESC NULLS LAST) AS r FROM items ORDER BY r, id LIMIT 15', 'ordered'),
  Q('SELECT id, price, row_number() OVER (ORDER BY price, id) AS rn, dense_rank() OVER (ORDER BY price, id) FROM items WHERE price IS NOT NULL ORDER BY rn LIMIT 10 OFFSET 5', 'ordered'),
  Q('SELECT name, dense_rank() OVER (ORDER BY grp NULLS FIRST) AS d FROM items ORDER BY d, name NULLS LAST, id LIMIT 25', 'ordered'),
  Q('SELECT id, rank() OVER (ORDER BY day DESC NULLS LAST) FROM items ORDER BY 2, id LIMIT 12', 'ordered', { binary: true }),
  Q('SELECT row_number() OVER (ORDER BY grp) AS rn, grp FROM items WHERE qty > $1 ORDER BY rn LIMIT 30', 'ordered', { params: [20] }),
  // Views over sharded tables.
  Q('SELECT id, name, price FROM cheap_items ORDER BY price DESC NULLS LAST, id LIMIT 15', 'ordered'),
  Q('SELECT count(*), sum(price), max(qty), avg(qty) FROM cheap_items', 'ordered'),
  Q('SELECT grp, count(*) FROM cheap_items GROUP BY grp ORDER BY grp NULLS FIRST', 'ordered'),
  Q('SELECT item_id, tags FROM tag_counts WHERE tags > 2 ORDER BY item_id', 'ordered'),
  Q('SELECT count(*), max(tags), sum(tags) FROM tag_counts', 'ordered'),
  Q('SELECT label, count(*), sum(qty) FROM item_labels GROUP BY label ORDER BY label', 'ordered'),
  Q('SELECT i.id, c.tags FROM items i JOIN tag_counts c ON c.item_id = i.id WHERE i.id = $1', 'set', { params: ['FIRST_ID'] }),
  Q('SELECT item, label FROM item_labels WHERE item IN ($1, $2) ORDER BY item', 'ordered', { params: ['FIRST_ID', 'LAST_ID'] }),
  // Subqueries read first: their answers written in as constants of their types, text and binary.
  Q('SELECT id, price, created, u FROM items WHERE price >= (SELECT max(price) FROM items) OR created = (SELECT min(created) FROM items) ORDER BY id', 'ordered', { binary: true }),
  Q('SELECT id, ratio FROM items WHERE id IN (SELECT item_id FROM item_tags GROUP BY item_id ORDER BY count(*) DESC, item_id LIMIT 5) ORDER BY id', 'ordered', { binary: true }),
  Q('SELECT id FROM items WHERE u = (SELECT u FROM items WHERE u IS NOT NULL ORDER BY u LIMIT 1) OR day = (SELECT max(day) FROM items) ORDER BY id', 'ordered'),
  Q('SELECT count(*) FROM items WHERE grp NOT IN (SELECT grp FROM items WHERE grp > $1 AND grp IS NOT NULL)', 'ordered', { params: [4] }),
  Q('SELECT grp, n, total FROM (SELECT grp, count(*) AS n, sum(price) AS total FROM items GROUP BY grp) s WHERE n > 10 ORDER BY grp NULLS FIRST', 'ordered', { binary: true }),
  Q('SELECT max(n), min(n) FROM (SELECT name, count(*) AS n FROM items GROUP BY name) s', 'ordered'),
  Q('SELECT sum(price) / count(*), max(ratio) - min(ratio), count(*) FILTER (WHERE flag) * 100 / count(*) FROM items', 'ordered', { binary: true }),
  Q('SELECT grp, round(avg(price), 1) AS a, max(created) - min(created) AS span FROM items GROUP BY grp HAVING count(*) > 5 ORDER BY a DESC NULLS LAST, grp', 'ordered', { binary: true }),
]

// Values as the server sent them: text as is, binary as hex.
const RAW = { getTypeParser: () => (v: string | Buffer) => (Buffer.isBuffer(v) ? `\\x${v.toString('hex')}` : v) } as unknown as pg.CustomTypesConfig

interface Answer {
  fields: [string, number, number, string][]
  rows: unknown[][]
  count: number | null
}

async function answer(client: pg.Client, q: Query): Promise<Answer> {
  // Binary results come only through the extended protocol.
  const binary = q.binary === true ? { binary: true, queryMode: 'extended' } : {}
  const config = { text: q.sql, values: q.params, rowMode: 'array', types: RAW, ...binary } as pg.QueryArrayConfig
  const r = await client.query(config)
  const rows = q.order === 'set' ? [...r.rows].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)) : r.rows
  return { fields: r.fields.map((f) => [f.name, f.dataTypeID, f.dataTypeModifier, f.format]), rows, count: r.rowCount }
}

t.test('cross-shard SELECTs answer as one Postgres does', async (t) => {
  const { fx, proxy, plain } = await startWithPlainTwin(t, 3, { sharding: SHARDING }, SCHEMA)
  const map = new ShardMap(proxyConfig(fx.topo, { sharding: SHARDING }))
  const both = async (sql: string, values?: unknown[]) => {
    await proxy.query(sql, values)
    await plain.query(sql, values)
  }

  const rows = items(600, 20261125)
  for (let i = 0; i < rows.length; i += 40) {
    const chunk = rows.slice(i, i + 40)
    const values = chunk.map((_, r) => `(${ITEM_COLUMNS.map((_, c) => `$${r * ITEM_COLUMNS.length + c + 1}`).join(', ')})`).join(', ')
    await both(`INSERT INTO items (${ITEM_COLUMNS.join(', ')}) VALUES ${values}`, chunk.flat())
  }
  const rand = seededRandom(7)
  const tags = rows.flatMap(([id]) => Array.from({ length: Math.floor(rand() * 4) }, (_, j) => [id, `tag${Math.floor(rand() * 5)}-${j}`]))
  for (let i = 0; i < tags.length; i += 100) {
    const chunk = tags.slice(i, i + 100)
    await both(`INSERT INTO item_tags (item_id, tag) VALUES ${chunk.map((_, r) => `($${2 * r + 1}, $${2 * r + 2})`).join(', ')}`, chunk.flat())
  }
  await both("INSERT INTO categories (grp, label) VALUES (0, 'cheap'), (1, 'common'), (2, 'rare'), (3, 'classic'), (5, 'new'), (7, 'custom'), (8, 'unused')")
  const onS1: number[] = []
  for (let k = 1; onS1.length < 5; k++) if (map.ring.shardFor(canonicalKey('bigint', String(k), 0, 0)) === 1) onS1.push(k)
  await both(`INSERT INTO sparse (id, v) VALUES ${onS1.map((k) => `(${k}, 'v${k}')`).join(', ')}`)

  const perShard = await Promise.all(fx.topo.shards.map((s) => fx.topo.query(s.primary, 'SELECT (SELECT count(*) FROM items)::int AS items, (SELECT count(*) FROM sparse)::int AS sparse', 'app')))
  t.same(perShard.map((r) => r[0]!.sparse), [0, 5, 0], 'sparse has rows on one shard only: the others answer empty')
  t.ok(perShard.every((r) => (r[0]!.items as number) > 150), `items spread over the shards: ${perShard.map((r) => r[0]!.items).join(', ')}`)
  t.equal(perShard.reduce((a, r) => a + (r[0]!.items as number), 0), 600)

  t.ok(CORPUS.length >= 40, `${CORPUS.length} queries`)
  // FIRST_ID and LAST_ID stand for keys of rows the test made (a read of one shard).
  const keys: Record<string, string> = { FIRST_ID: String(rows[0]![0]), LAST_ID: String(rows.at(-1)![0]) }
  for (const written of CORPUS) {
    const q = written.params ? { ...written, params: written.params.map((p) => (typeof p === 'string' ? (keys[p] ?? p) : p)) } : written
    const label = `${q.sql}${q.params ? ` [${q.params.join(', ')}]` : ''}${q.binary ? ' (binary)' : ''}`
    const [got, want] = await Promise.allSettled([answer(proxy, q), answer(plain, q)])
    if (want.status === 'rejected') {
      t.fail(`${label}: plain Postgres refused it: ${String(want.reason)}`)
      continue
    }
    if (got.status === 'rejected') {
      t.fail(`${label}: ${String((got.reason as Error).message)}`)
      continue
    }
    t.same(got.value.fields, want.value.fields, `${label}: column names and types`)
    t.same(got.value.rows, want.value.rows, `${label}: ${want.value.rows.length} rows${q.order === 'ordered' ? ', in order' : ''}`)
    t.equal(got.value.count, want.value.count, `${label}: command tag count`)
  }
})
