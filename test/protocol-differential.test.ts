// The same raw message sequences sent to a Postgres server directly and through the proxy (in transaction and
// in session pooling) must get the same replies, message for message: pipelines, Flush without Sync, errors
// inside a batch, Sync in the middle, BEGIN/COMMIT inside a batch, named statements and portals, COPY.
import t from 'tap'
import {
  FLUSH,
  SYNC,
  encodeBind,
  encodeExecute,
  encodeParse,
  encodeQuery,
  encodeTarget,
  encodeUnnamedRun,
} from '../src/protocol/FrontendMessages.js'
import { decodeCommandTag, decodeDataRow, decodeRowDescription } from '../src/protocol/RowMessages.js'
import { encodeStartup } from '../src/protocol/StartupEncoder.js'
import { RawClient, errorFields, type ServerMessage } from './harness/RawClient.js'
import { startProxy } from './harness/startProxy.js'

const copyData = (s: string) => {
  const b = Buffer.from(s)
  const out = Buffer.alloc(5 + b.length)
  out[0] = 0x64
  out.writeInt32BE(4 + b.length, 1)
  b.copy(out, 5)
  return out
}
const COPY_DONE = Buffer.from([0x63, 0, 0, 0, 4])

/** A step: bytes to send, then how many ReadyForQuery (or, with `quiet`, how long) to wait for. */
interface Step {
  send: Buffer[]
  ready?: number
  quietMs?: number
}

const scenarios: Record<string, Step[]> = {
  'several statements in one Query, and an empty Query': [{ send: [encodeQuery('SELECT 1 AS a; SELECT 2 AS b, 3 AS c'), encodeQuery(''), encodeQuery(';')], ready: 3 }],
  'a pipeline of two statements before one Sync': [
    {
      send: [
        encodeParse('', 'SELECT $1::int + 1 AS n', [23]),
        encodeBind('', '', [Buffer.from('41')], [0], [0]),
        encodeTarget('Describe', 'P', ''),
        encodeExecute('', 0),
        encodeParse('', 'SELECT $1::text AS s', [25]),
        encodeBind('', '', [Buffer.from('x')], [0], [0]),
        encodeTarget('Describe', 'P', ''),
        encodeExecute('', 0),
        SYNC,
      ],
      ready: 1,
    },
  ],
  'an error in the middle of a batch skips to Sync': [
    {
      send: [
        encodeParse('', 'SELECT 1', []),
        encodeBind('', '', [], [], []),
        encodeExecute('', 0),
        encodeParse('', 'SELECT 1/0', []),
        encodeBind('', '', [], [], []),
        encodeExecute('', 0),
        encodeParse('', 'SELECT 3', []),
        encodeBind('', '', [], [], []),
        encodeExecute('', 0),
        SYNC,
        encodeQuery('SELECT 4'),
      ],
      ready: 2,
    },
  ],
  'Flush without Sync (asyncpg style), then Bind and Sync': [
    { send: [encodeParse('q1', 'SELECT $1::int * 2 AS d', [0]), encodeTarget('Describe', 'S', 'q1'), FLUSH], quietMs: 300 },
    { send: [encodeBind('', 'q1', [Buffer.from('21')], [0], [0]), encodeExecute('', 0), SYNC], ready: 1 },
  ],
  'Sync in the middle of a pipeline, BEGIN and COMMIT inside batches': [
    {
      send: [
        encodeQuery('CREATE TEMP TABLE IF NOT EXISTS scratch (x int)'),
        encodeParse('', 'BEGIN', []),
        encodeBind('', '', [], [], []),
        encodeExecute('', 0),
        SYNC,
        encodeParse('', 'SELECT 7 AS seven', []),
        encodeBind('', '', [], [], []),
        encodeExecute('', 0),
        encodeParse('', 'COMMIT', []),
        encodeBind('', '', [], [], []),
        encodeExecute('', 0),
        SYNC,
      ],
      ready: 3,
    },
  ],
  'named statements across groups, Close, then use after Close': [
    { send: [encodeParse('st', 'SELECT $1::int AS v', [23]), SYNC], ready: 1 },
    { send: [encodeTarget('Describe', 'S', 'st'), SYNC], ready: 1 },
    { send: [encodeBind('', 'st', [Buffer.from('5')], [0], [0]), encodeExecute('', 0), SYNC], ready: 1 },
    { send: [encodeParse('st', 'SELECT 1', []), SYNC], ready: 1 },
    { send: [encodeTarget('Close', 'S', 'st'), SYNC], ready: 1 },
    { send: [encodeBind('', 'st', [Buffer.from('5')], [0], [0]), encodeExecute('', 0), SYNC], ready: 1 },
    { send: [encodeTarget('Close', 'S', 'never-existed'), SYNC], ready: 1 },
  ],
  'a named portal read with a row limit inside a transaction': [
    {
      send: [
        encodeQuery('BEGIN'),
        encodeParse('', 'SELECT g FROM generate_series(1, 5) g', []),
        encodeBind('p', '', [], [], []),
        encodeExecute('p', 2),
        encodeExecute('p', 2),
        SYNC,
        encodeExecute('p', 2),
        encodeTarget('Close', 'P', 'p'),
        SYNC,
        encodeExecute('p', 0),
        SYNC,
        encodeQuery('ROLLBACK'),
      ],
      ready: 5,
    },
  ],
  'COPY FROM STDIN and COPY TO STDOUT': [
    { send: [encodeQuery('CREATE TEMP TABLE IF NOT EXISTS copied (a int, b text)'), encodeQuery('COPY copied FROM STDIN')], ready: 1, quietMs: 200 },
    { send: [copyData('1\tone\n'), copyData('2\ttwo\n'), COPY_DONE], ready: 1 },
    { send: [encodeQuery('COPY copied TO STDOUT'), encodeQuery('DROP TABLE copied')], ready: 2 },
  ],
  // pgjdbc with autosave sends its SAVEPOINT as a Query between the BEGIN and the statement of one group.
  'a Query among extended-protocol messages (pgjdbc autosave)': [
    {
      send: [
        encodeUnnamedRun('BEGIN'),
        encodeQuery('SAVEPOINT autosave'),
        encodeParse('', 'SELECT $1::int AS n', [23]),
        encodeBind('', '', [Buffer.from('8')], [0], [0]),
        encodeTarget('Describe', 'P', ''),
        encodeExecute('', 0),
        SYNC,
        encodeQuery('SELECT 1/0'),
        encodeQuery('ROLLBACK TO SAVEPOINT autosave'),
        encodeUnnamedRun('SELECT 9 AS nine'),
        encodeQuery('RELEASE SAVEPOINT autosave'),
        encodeUnnamedRun('COMMIT'),
        SYNC,
      ],
      ready: 6,
    },
  ],
  // Extended messages without their Sync, then simple Queries: the server decides what the pipeline's implicit
  // transaction becomes (a BEGIN keeps it open and ROLLBACK undoes it; another statement commits it).
  'simple Queries after extended messages that have no Sync yet': [
    { send: [encodeQuery('CREATE TABLE IF NOT EXISTS unsynced (x int)'), encodeQuery('TRUNCATE unsynced')], ready: 2 },
    {
      send: [
        encodeUnnamedRun('INSERT INTO unsynced VALUES (1)'),
        encodeQuery('BEGIN'),
        encodeQuery('ROLLBACK'),
        encodeQuery('SELECT count(*) AS n FROM unsynced'),
      ],
      ready: 3,
    },
    {
      send: [
        encodeUnnamedRun('INSERT INTO unsynced VALUES (2)'),
        encodeQuery('SELECT 1 AS one'),
        SYNC,
        encodeQuery('SELECT count(*) AS n FROM unsynced'),
      ],
      ready: 3,
    },
  ],
  'a Bind to a statement that does not exist, and a duplicate Parse': [
    { send: [encodeBind('', 'nope', [], [], []), encodeExecute('', 0), SYNC], ready: 1 },
    { send: [encodeParse('dup', 'SELECT 1', []), encodeParse('dup', 'SELECT 2', []), SYNC], ready: 1 },
  ],
}

/** One reply message as comparable text: what a client would act on. */
function describe(m: ServerMessage): string {
  switch (m.type) {
    case 'C':
      return `C ${decodeCommandTag(m.body)}`
    case 'E': {
      const f = errorFields(m.body)
      return `E ${f.code}`
    }
    case 'Z':
      return `Z ${m.body.toString('latin1')}`
    case 'D':
      return `D ${decodeDataRow(m.body).map((v) => (v === null ? 'NULL' : v.toString())).join('|')}`
    case 'T':
      return `T ${decodeRowDescription(m.body).map((f) => `${f.name}:${f.typeOid}`).join(',')}`
    case 'd':
      return `d ${m.body.toString()}`
    case 'S':
    case 'N':
      return ''
    default:
      return m.type
  }
}

async function play(port: number, direct: boolean, steps: Step[]): Promise<string[]> {
  const c = direct ? await RawClient.connect(port) : await RawClient.connect(port)
  c.send(encodeStartup({ user: 'app', database: 'app' }))
  await c.until('Z')
  const out: string[] = []
  for (const step of steps) {
    for (const b of step.send) c.send(b)
    let ready = step.ready ?? 0
    while (ready > 0) {
      const msgs = await c.until('Z', 5000)
      out.push(...msgs.map(describe).filter(Boolean))
      if (!msgs.some((m) => m.type === 'Z')) {
        out.push('(timeout)')
        break
      }
      ready--
    }
    if (step.quietMs) {
      const msgs = await c.until('\u0000', step.quietMs)
      out.push(...msgs.map(describe).filter(Boolean))
    }
  }
  c.end()
  return out
}

for (const mode of ['transaction', 'session'] as const) {
  t.test(`the proxy in ${mode} pooling replies like Postgres`, async (t) => {
    const fx = await startProxy(t, {
      topology: { auth: 'trust' },
      config: { users: [{ name: 'app', auth: 'trust' }], pool: { mode, size: 2 } },
    })
    const serverPort = fx.topo.shards[0].primary.port
    for (const [name, steps] of Object.entries(scenarios)) {
      const want = await play(serverPort, true, steps)
      const got = await play(fx.port, false, steps)
      t.same(got, want, name)
    }
  })
}
