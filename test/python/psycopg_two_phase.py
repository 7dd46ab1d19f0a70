"""psycopg 3 against a two-shard map with sharding.cross_shard_transactions: two_phase. Each check prints one
JSON line the tap test reads.

Usage: psycopg_two_phase.py CONNINFO KEY_ON_SHARD_0 KEY_ON_SHARD_1 ANOTHER_KEY_ON_SHARD_1
"""
import json
import sys

import psycopg

conninfo, k0, k1, k1b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def report(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)}), flush=True)


def failing_pipeline(conn, statements, commit=False):
    """Runs the statements in one pipeline ending with a sync, or with commit() inside it; returns the SQLSTATE it
    failed with, after rolling back."""
    state = None
    try:
        with conn.pipeline() as p:
            for sql, args in statements:
                conn.execute(sql, args)
            if commit:
                conn.commit()
            else:
                p.sync()
    except psycopg.Error as e:
        state = e.sqlstate
    conn.rollback()
    return state


def balances(conn):
    return [conn.execute("SELECT balance FROM accounts WHERE id = %s", (k,)).fetchone() for k in (k0, k1, k1b)]


with psycopg.connect(conninfo, prepare_threshold=0) as conn:
    # conn.transaction(): BEGIN, statements with bound parameters (server-side prepared), COMMIT
    with conn.transaction():
        conn.execute("INSERT INTO accounts (id, balance) VALUES (%s, %s)", (k0, 10))
        conn.execute("INSERT INTO accounts (id, balance) VALUES (%s, %s)", (k1, 20))
    conn.commit()
    got = balances(conn)
    conn.commit()
    report("transaction block across shards", got == [(10,), (20,), None], got)

    # pipeline mode: statements for both shards, then COMMIT, in one pipeline
    with conn.pipeline() as p:
        conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (k0,))
        conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (k1,))
        p.sync()
        conn.commit()
    got = balances(conn)
    conn.commit()
    report("pipeline across shards", got == [(11,), (21,), None], got)

    # an error in the part for the first shard: the rest of the pipeline is skipped, as on one server
    state = failing_pipeline(conn, [("INSERT INTO accounts (id, balance) VALUES (%s, 1)", (k0,)), ("UPDATE accounts SET balance = 99 WHERE id = %s", (k1,))])
    got = balances(conn)
    conn.commit()
    report("an error in a pipeline across shards skips the rest", state == "23505" and got == [(11,), (21,), None], f"{state} {got}")

    # a COMMIT that one shard refuses (a deferred unique code): nothing anywhere
    state = None
    try:
        with conn.transaction():
            conn.execute("UPDATE accounts SET balance = 0 WHERE id = %s", (k0,))
            conn.execute("UPDATE accounts SET code = 5 WHERE id = %s", (k1,))
            conn.execute("INSERT INTO accounts (id, balance, code) VALUES (%s, 1, 5)", (k1b,))
    except psycopg.Error as e:
        state = e.sqlstate
    got = balances(conn)
    conn.commit()
    report("a failing commit rolls back everywhere", state == "23505" and got == [(11,), (21,), None], f"{state} {got}")

    # a nested transaction block is a savepoint, opened while only the first shard is in the transaction
    with conn.transaction():
        conn.execute("UPDATE accounts SET balance = 12 WHERE id = %s", (k0,))
        with conn.transaction():
            conn.execute("UPDATE accounts SET balance = 40 WHERE id = %s", (k1,))
            conn.execute("UPDATE accounts SET balance = 41 WHERE id = %s", (k0,))
            raise psycopg.Rollback()
    got = balances(conn)
    conn.commit()
    report("a nested block rolled back undoes its writes on every shard", got == [(12,), (21,), None], got)

    # a named (server-side) cursor over shard 0 read 10 rows at a time, while each row updates shard 1
    n = 0
    with conn.transaction():
        with conn.cursor(name="batches") as cur:
            cur.itersize = 10
            cur.execute("SELECT g FROM accounts, generate_series(1, 50) g WHERE accounts.id = %s", (k0,))
            for (g,) in cur:
                n += 1
                conn.execute("UPDATE accounts SET balance = %s WHERE id = %s", (g, k1))
    got = balances(conn)
    conn.commit()
    report("a named cursor on one shard while writing to another", n == 50 and got == [(12,), (50,), None], f"{n} rows, {got}")

    # commit() inside the pipeline: the COMMIT comes before the pipeline's Sync, after statements on both shards;
    # then the same with a failing statement: the COMMIT is skipped and nothing stays
    with conn.pipeline():
        conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (k0,))
        conn.execute("UPDATE accounts SET balance = balance - 1 WHERE id = %s", (k1,))
        conn.commit()
    committed = balances(conn)
    conn.commit()
    state = failing_pipeline(conn, [("UPDATE accounts SET balance = 0 WHERE id = %s", (k0,)), ("UPDATE accounts SET balance = 1 / 0 WHERE id = %s", (k1,))], commit=True)
    got = balances(conn)
    conn.commit()
    report("commit inside a pipeline across shards", committed == [(13,), (49,), None] and state == "22012" and got == committed, f"{committed} {state} {got}")

# executemany in autocommit: one pipeline, all or nothing across shards as on one server
with psycopg.connect(conninfo, autocommit=True) as auto:
    with auto.cursor() as cur:
        cur.executemany("UPDATE accounts SET balance = %s WHERE id = %s", [(13, k0), (51, k1)])
        both = balances(auto)
        state = None
        try:
            cur.executemany("UPDATE accounts SET balance = 100 / %s WHERE id = %s", [(1, k0), (0, k1)])
        except psycopg.Error as e:
            state = e.sqlstate
        after = balances(auto)
    report("executemany in autocommit across shards is all or nothing", both == [(13,), (51,), None] and state == "22012" and after == both, f"{both} {state} {after}")

    # an autocommit pipeline across shards that fails on the second shard, or on the first before it reaches
    # the second: nothing stays, and the connection goes on
    states = []
    for steps in ([(14, k0, 1), (0, k1, 0), (15, k0, 1)], [(0, k0, 0), (52, k1, 1)]):
        try:
            with auto.pipeline():
                for balance, key, divisor in steps:
                    auto.execute("UPDATE accounts SET balance = %s / %s WHERE id = %s", (balance * max(divisor, 1), divisor, key))
        except psycopg.Error as e:
            states.append(e.sqlstate)
    after = balances(auto)
    report("an autocommit pipeline across shards that fails leaves nothing", states == ["22012", "22012"] and after == [(13,), (51,), None], f"{states} {after}")

    # a SET in such a pipeline is undone with it; the next statement's SET stays
    work_mem = auto.execute("SHOW work_mem").fetchone()
    try:
        with auto.pipeline():
            auto.execute("SET work_mem = '7MB'")
            auto.execute("UPDATE accounts SET balance = %s WHERE id = %s", (13, k0))
            auto.execute("UPDATE accounts SET balance = 1 / %s WHERE id = %s", (0, k1))
    except psycopg.Error:
        pass
    undone = auto.execute("SHOW work_mem").fetchone()
    auto.execute("SET application_name = 'after the pipeline'")
    kept = [auto.execute("SHOW application_name").fetchone(), auto.execute("SHOW work_mem").fetchone()]
    report("the SET of a failed pipeline is undone, the next one stays", undone == work_mem and kept == [("after the pipeline",), work_mem], f"{work_mem} {undone} {kept}")
