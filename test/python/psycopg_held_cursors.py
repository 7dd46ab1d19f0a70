"""psycopg 3 named cursors declared WITH HOLD in autocommit (what Django's iterator() sends outside a transaction)
whose query reads several shards: DECLARE with a parameter through the extended protocol, a Describe of the
cursor as a portal, FETCH FORWARD in batches, other statements between fetches. Each check prints one JSON line
the tap test reads.

Usage: psycopg_held_cursors.py CONNINFO ROWS KEY_ON_SHARD_0 KEY_ON_SHARD_1
"""
import json
import sys

import psycopg

conninfo, rows, k0, k1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def report(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)}), flush=True)


with psycopg.connect(conninfo, autocommit=True) as conn:
    cur = conn.cursor(name="held", withhold=True)
    cur.execute("SELECT id, label FROM items WHERE id > %s ORDER BY id DESC", [2])
    names = [d.name for d in cur.description]
    first = cur.fetchone()
    two = cur.fetchmany(2)
    conn.execute("UPDATE items SET label = 'later' WHERE id IN (%s, %s)", [k0, k1])
    rest = cur.fetchall()
    cur.close()
    got = [first[0]] + [r[0] for r in two] + [r[0] for r in rest]
    labels = {r[0]: r[1] for r in rest}
    conn.execute("UPDATE items SET label = 'item ' || id WHERE id IN (%s, %s)", [k0, k1])
    report("a cursor WITH HOLD over both shards in autocommit, in order, with writes between fetches",
           names == ["id", "label"] and got == list(range(rows, 2, -1)) and labels.get(k0) == f"item {k0}" and labels.get(k1) == f"item {k1}",
           f"{names} {len(got)} {got[:3]}")

    cur = conn.cursor(name="iterated", withhold=True)
    cur.itersize = 700
    cur.execute("SELECT id FROM items ORDER BY id")
    got = [r[0] for r in cur]
    cur.close()
    report("iterating it in batches, as Django's iterator() does", got == list(range(1, rows + 1)), len(got))

    cur = conn.cursor(name="bin", binary=True, withhold=True)
    cur.execute("SELECT id, label FROM items WHERE id <= %s ORDER BY id", [20])
    got = cur.fetchmany(5) + cur.fetchall()
    cur.close()
    report("a binary cursor WITH HOLD", got == [(i, f"item {i}") for i in range(1, 21)], got[:3])

    cur = conn.cursor(name="broken", withhold=True)
    try:
        cur.execute("SELECT id / (id - %s) FROM items ORDER BY id", [k1])
        cur.fetchall()
        failed = None
    except psycopg.Error as e:
        failed = e.sqlstate
    count = conn.execute("SELECT count(*) FROM items").fetchone()[0]
    report("a shard's error at DECLARE reaches the client, and the connection goes on", failed == "22012" and count == rows, f"{failed} {count}")
