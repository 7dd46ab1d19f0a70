"""asyncpg and psycopg 3 read and write an enum column on two shards that number the enum differently.

Both drivers look a type OID up in pg_type, which pgshard answers from the default shard: a row of the other
shard must come described with the default shard's OID. Each check prints one JSON line the tap test reads.

Usage: type_oids_client.py DSN IDS_ON_DEFAULT_SHARD IDS_ON_OTHER_SHARD   (ids comma-separated; every id's mood is
MOODS[id % 3])
"""
import asyncio
import enum
import json
import sys

import asyncpg
import psycopg
from psycopg.types.enum import EnumInfo, register_enum

dsn = sys.argv[1]
ids_default = [int(x) for x in sys.argv[2].split(",")]
ids_other = [int(x) for x in sys.argv[3].split(",")]
MOODS = ["sad", "ok", "happy"]


def report(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)}), flush=True)


async def with_asyncpg():
    conn = await asyncpg.connect(dsn)
    try:
        got = []
        for k in ids_default + ids_other:
            got.append((k, await conn.fetchval("SELECT mood FROM people WHERE id = $1", k)))
        report("asyncpg reads the enum of either shard", got == [(k, MOODS[k % 3]) for k in ids_default + ids_other], got)

        rows = await conn.fetch("SELECT id, mood FROM people ORDER BY mood, id")
        want = sorted(ids_default + ids_other, key=lambda k: (k % 3, k))
        report("asyncpg reads the enum across shards (binary, in declared order)", [r["id"] for r in rows] == want and all(r["mood"] == MOODS[r["id"] % 3] for r in rows), [tuple(r) for r in rows])

        k = ids_other[0]
        found = await conn.fetch("SELECT id FROM people WHERE id = $1 AND mood = $2", k, MOODS[k % 3])
        stmt = await conn.prepare("SELECT id FROM people WHERE id = $1 AND mood = $2::mood")
        again = await stmt.fetchval(k, MOODS[k % 3])
        report("asyncpg binds an enum parameter on the other shard", [r["id"] for r in found] == [k] and again == k, (found, again))
    finally:
        await conn.close()


class Mood(enum.Enum):
    sad = "sad"
    ok = "ok"
    happy = "happy"


def with_psycopg():
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn:
        info = EnumInfo.fetch(conn, "mood")
        register_enum(info, conn, Mood)
        got = [(k, conn.execute("SELECT mood FROM people WHERE id = %s", (k,)).fetchone()[0]) for k in ids_default + ids_other]
        report("psycopg loads the registered enum from either shard", all(isinstance(m, Mood) and m.value == MOODS[k % 3] for k, m in got), got)

        k = ids_other[1]
        conn.execute("UPDATE people SET mood = %s WHERE id = %s", (Mood.happy, k))
        back = conn.execute("SELECT mood FROM people WHERE id = %s", (k,)).fetchone()[0]
        conn.execute("UPDATE people SET mood = %s WHERE id = %s", (Mood(MOODS[k % 3]), k))
        report("psycopg sends an enum parameter (its OID) to the other shard", back is Mood.happy, back)


asyncio.run(with_asyncpg())
with_psycopg()
