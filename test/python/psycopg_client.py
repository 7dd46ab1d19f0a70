"""psycopg 3 (Debian's python3-psycopg) against pgshard: each check prints one JSON line the tap test reads.

Usage: psycopg_client.py CONNINFO
"""
import json
import sys

import psycopg

conninfo = sys.argv[1]


def report(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)}), flush=True)


with psycopg.connect(conninfo, autocommit=True) as conn:
    conn.execute("DROP TABLE IF EXISTS py_items")
    conn.execute("CREATE TABLE py_items (id int PRIMARY KEY, name text, price numeric(10, 2))")

    # executemany in pipeline mode: one round trip for many statements
    rows = [(i, f"item {i}", i * 1.5) for i in range(1, 501)]
    with conn.pipeline():
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO py_items (id, name, price) VALUES (%s, %s, %s)", rows)
    count = conn.execute("SELECT count(*) FROM py_items").fetchone()[0]
    report("executemany in pipeline mode", count == 500, count)

    # a server-side cursor (DECLARE/FETCH) read in batches, inside a transaction
    with conn.transaction():
        with conn.cursor(name="py_cursor") as cur:
            cur.itersize = 64
            cur.execute("SELECT id FROM py_items ORDER BY id")
            ids = [r[0] for r in cur]
    report("server-side cursor", ids == list(range(1, 501)), len(ids))

    # COPY in and out
    with conn.cursor() as cur:
        with cur.copy("COPY py_items (id, name, price) FROM STDIN") as copy:
            for i in range(1001, 1201):
                copy.write_row((i, f"copied {i}", 2.25))
        out = []
        with cur.copy("COPY (SELECT id, name FROM py_items WHERE id > 1000 ORDER BY id) TO STDOUT") as copy:
            for row in copy.rows():
                out.append(row)
    report("COPY in and out", len(out) == 200 and out[0] == ("1001", "copied 1001"), len(out))

    # binary parameters and results, server-side prepared statements (prepare_threshold=0)
    conn.prepare_threshold = 0
    with conn.cursor(binary=True) as cur:
        got = [cur.execute("SELECT name, price FROM py_items WHERE id = %b", (i,)).fetchone() for i in (1, 2, 3, 1, 2, 3)]
    report("binary prepared statements", got[0][0] == "item 1" and str(got[4][1]) == "3.00", got[:3])

    # prepared statements in a pipeline, several executions
    conn.prepare_threshold = 1
    with conn.pipeline():
        curs = [conn.execute("SELECT %s::int * 2", (i,)) for i in range(50)]
    report("prepared statements in pipeline mode", [c.fetchone()[0] for c in curs] == [i * 2 for i in range(50)])

    # an error inside a pipeline, then the connection goes on
    try:
        with conn.pipeline():
            conn.execute("SELECT 1")
            conn.execute("SELECT * FROM no_such_table")
            conn.execute("SELECT 2")
        report("error inside a pipeline", False, "no error raised")
    except psycopg.errors.UndefinedTable:
        report("error inside a pipeline", conn.execute("SELECT 3").fetchone()[0] == 3)
