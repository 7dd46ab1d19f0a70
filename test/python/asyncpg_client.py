"""asyncpg (Debian's python3-asyncpg) against pgshard over two shards: each check prints one JSON line the tap test reads.

asyncpg prepares with Parse/Describe/Flush and no Sync, fetches single values with an Execute row limit, and
copies records in binary format: each of these once failed through pgshard.

Usage: asyncpg_client.py DSN
"""
import asyncio
import json
import sys

import asyncpg

dsn = sys.argv[1]


def report(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)}), flush=True)


async def main():
    conn = await asyncpg.connect(dsn)
    await conn.execute("DROP TABLE IF EXISTS apg_items")
    await conn.execute("CREATE TABLE apg_items (id int PRIMARY KEY, name text, qty int, tags text[])")
    await conn.executemany(
        "INSERT INTO apg_items (id, name, qty, tags) VALUES ($1, $2, $3, $4)",
        [(i, f"item {i}", i, ["a", str(i)]) for i in range(1, 41)],
    )

    # fetchval and fetchrow ask for one row (Execute with a row limit), here of reads across shards
    count = await conn.fetchval("SELECT count(*) FROM apg_items")
    first = await conn.fetchrow("SELECT id, name FROM apg_items ORDER BY id")
    top = await conn.fetchval("SELECT id FROM apg_items ORDER BY qty DESC LIMIT 5")
    report("fetchval and fetchrow across shards", count == 40 and first["id"] == 1 and top == 40, (count, dict(first), top))

    # prepare() sends Parse, Describe and Flush without a Sync; a query for another shard follows
    names = []
    for k in range(1, 11):
        stmt = await conn.prepare("SELECT name FROM apg_items WHERE id = $1")
        await conn.execute(f"UPDATE apg_items SET qty = qty + 100 WHERE id = {k}")
        names.append(await stmt.fetchval(k))
    qtys = [r["qty"] for r in await conn.fetch("SELECT qty FROM apg_items WHERE id = ANY($1::int[]) ORDER BY id", list(range(1, 11)))]
    report("prepare then a query for another shard", names == [f"item {k}" for k in range(1, 11)] and qtys == [k + 100 for k in range(1, 11)], (names[:3], qtys[:3]))

    # copy_records_to_table sends binary COPY data: split by key
    records = [(1000 + i, f"copied {i}", i, None) for i in range(500)]
    await conn.copy_records_to_table("apg_items", records=records, columns=["id", "name", "qty", "tags"])
    copied = await conn.fetchval("SELECT count(*) FROM apg_items WHERE id >= 1000")
    some = await conn.fetchrow("SELECT name, qty FROM apg_items WHERE id = 1234")
    report("binary COPY split by key", copied == 500 and some["name"] == "copied 234" and some["qty"] == 234, (copied, dict(some)))

    # a NULL key in binary COPY data: refused, nothing stored
    try:
        await conn.copy_records_to_table("apg_items", records=[(5000, "x", 1, None), (None, "y", 2, None)], columns=["id", "name", "qty", "tags"])
        report("binary COPY with a NULL key is refused", False, "no error")
    except asyncpg.PostgresError as e:
        left = await conn.fetchval("SELECT count(*) FROM apg_items WHERE id = 5000")
        report("binary COPY with a NULL key is refused", e.sqlstate == "23502" and left == 0, (e.sqlstate, str(e), left))

    # a transaction across shards with a savepoint rolled back
    async with conn.transaction():
        await conn.execute("UPDATE apg_items SET qty = 1 WHERE id = 1")
        await conn.execute("UPDATE apg_items SET qty = 2 WHERE id = 2")
        try:
            async with conn.transaction():
                await conn.execute("UPDATE apg_items SET qty = -3 WHERE id = 3")
                await conn.execute("UPDATE apg_items SET qty = -4 WHERE id = 4")
                raise RuntimeError("roll back to the savepoint")
        except RuntimeError:
            pass
    got = [tuple(r) for r in await conn.fetch("SELECT id, qty FROM apg_items WHERE id IN (1, 2, 3, 4) ORDER BY id")]
    report("savepoint rolled back across shards", got == [(1, 1), (2, 2), (3, 103), (4, 104)], got)

    # a cursor over a read across shards, fetched 50 rows at a time, with other queries in between
    async with conn.transaction():
        got = []
        async for r in conn.cursor("SELECT id FROM apg_items ORDER BY id DESC", prefetch=50):
            got.append(r["id"])
            if len(got) % 100 == 0:
                await conn.fetchval("SELECT count(*) FROM apg_items")
        cur = await conn.cursor("SELECT id FROM apg_items ORDER BY id")
        first = await cur.fetch(3)
        then = await cur.fetch(5)
        row = await cur.fetchrow()
    want = list(range(1499, 999, -1)) + list(range(40, 0, -1))
    report(
        "cursor across shards",
        got == want and [r["id"] for r in first + then] == list(range(1, 9)) and row["id"] == 9,
        (len(got), got[:3], [r["id"] for r in first + then], row["id"]),
    )
    await conn.close()

    # a pool of 20 clients over the proxy's smaller pool, every answer right
    pool = await asyncpg.create_pool(dsn, min_size=5, max_size=20)

    async def work(i):
        async with pool.acquire() as c:
            k = 1000 + i % 500
            return await c.fetchval("SELECT qty FROM apg_items WHERE id = $1", k) == k - 1000

    answers = await asyncio.gather(*[work(i) for i in range(400)])
    await pool.close()
    report("pool of 20 clients", all(answers), sum(answers))


asyncio.run(main())
