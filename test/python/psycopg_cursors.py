"""psycopg 3 named (server-side) cursors whose query reads several shards, inside a transaction: DECLARE and FETCH
go through the extended protocol, with parameters, and psycopg describes the cursor as a portal. Each check
prints one JSON line the tap test reads.

Usage: psycopg_cursors.py CONNINFO ROWS KEY_ON_SHARD_0 KEY_ON_SHARD_1
"""
import json
import sys

import psycopg

conninfo, rows, k0, k1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def report(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)}), flush=True)


with psycopg.connect(conninfo) as conn:
    with conn.transaction():
        cur = conn.cursor(name="across")
        cur.execute("SELECT id, label FROM items WHERE id > %s ORDER BY id DESC", [2])
        names = [d.name for d in cur.description]
        first = cur.fetchone()
        two = cur.fetchmany(2)
        conn.execute("UPDATE items SET label = 'seen' WHERE id IN (%s, %s)", [k0, k1])
        rest = cur.fetchall()
        cur.close()
        got = [first[0]] + [r[0] for r in two] + [r[0] for r in rest]
        seen = conn.execute("SELECT count(*) FROM items WHERE label = 'seen'").fetchone()[0]
        conn.execute("UPDATE items SET label = 'item ' || id WHERE id IN (%s, %s)", [k0, k1])
    report("a named cursor over both shards in order, with writes between fetches",
           names == ["id", "label"] and got == list(range(rows, 2, -1)) and seen == 2, f"{names} {len(got)} {got[:3]} {seen}")

    with conn.transaction():
        cur = conn.cursor(name="batches")
        cur.itersize = 7
        cur.execute("SELECT id FROM items ORDER BY id")
        got = [r[0] for r in cur]
        cur.close()
    report("iterating a named cursor in batches", got == list(range(1, rows + 1)), len(got))

    with conn.transaction():
        cur = conn.cursor(name="bin", binary=True)
        cur.execute("SELECT id, label FROM items WHERE id <= %s ORDER BY id", [20])
        got = cur.fetchmany(5) + cur.fetchall()
        cur.close()
    report("a binary named cursor", got == [(i, f"item {i}") for i in range(1, 21)], got[:3])

    with conn.transaction():
        cur = conn.cursor(name="agg")
        cur.execute("SELECT count(*), max(id) FROM items WHERE id BETWEEN %s AND %s", [10, 99])
        got = cur.fetchall()
        cur.close()
    report("a cursor with a parameter and an aggregate", got == [(90, 99)], got)
