// The replies of one statement of a query run one by one, on their way to the client: its ReadyForQuery held
// back (the client waits for one, at the end), a quiet statement's (pgshard's own BEGIN or COMMIT) replies dropped
// but for errors, notices and settings, however the byte stream is cut into slices.
import t from 'tap'
import { commandComplete, errorResponse, readyForQuery } from '../src/protocol/ServerMessages.js'
import { PgError } from '../src/protocol/PgError.js'
import { PartReplies, type PartEnd } from '../src/proxy/PartReplies.js'

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5)
  header[0] = type.charCodeAt(0)
  header.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([header, body])
}

const dataRow = message('D', Buffer.from([0, 1, 0, 0, 0, 3, 0x61, 0x62, 0x63]))
const notice = message('N', Buffer.from('SWARNING\0Mhello\0\0'))
const setting = message('S', Buffer.from('application_name\0x\0'))
const tag = commandComplete('SELECT 1')
const error = errorResponse(new PgError('22012', 'division by zero'))
const empty = message('n', Buffer.alloc(0))

/** Feeds `stream` cut at `cuts`, returning what went on to the client and how the part ended. */
async function run(stream: Buffer, cuts: number[], quiet: boolean): Promise<{ out: Buffer; end: PartEnd }> {
  const out: Buffer[] = []
  const replies = new PartReplies((b) => out.push(Buffer.from(b)))
  const ended = replies.expect(quiet)
  let at = 0
  for (const cut of [...cuts, stream.length]) {
    replies.write(stream.subarray(at, cut))
    at = cut
  }
  return { out: Buffer.concat(out), end: await ended }
}

/** Every way of cutting `stream` once or twice. */
function cutsOf(stream: Buffer): number[][] {
  const all: number[][] = [[]]
  for (let i = 1; i < stream.length; i++) {
    all.push([i])
    for (let j = i + 1; j < stream.length; j += 3) all.push([i, j])
  }
  return all
}

t.test('a statement the client wrote: everything but its ReadyForQuery, however cut', async (t) => {
  const body = Buffer.concat([notice, dataRow, empty, dataRow, setting, tag])
  const stream = Buffer.concat([body, readyForQuery('T')])
  let same = 0
  const cuts = cutsOf(stream)
  for (const c of cuts) {
    const { out, end } = await run(stream, c, false)
    if (out.equals(body) && end.ok && end.status === 'T') same++
    else t.fail(`cut at ${c.join(', ')}: ${out.toString('hex')} ${JSON.stringify(end)}`)
  }
  t.equal(same, cuts.length, `all ${cuts.length} ways of cutting the stream`)
})

t.test('an error: passed on, and the part failed', async (t) => {
  const stream = Buffer.concat([dataRow, error, readyForQuery('E')])
  for (const c of [[], [3], [dataRow.length + 2], [stream.length - 1]]) {
    const { out, end } = await run(stream, c, false)
    t.ok(out.equals(Buffer.concat([dataRow, error])), `cut at ${c.join(', ') || 'nowhere'}: the rows and the error`)
    t.same(end, { ok: false, status: 'E' })
  }
})

t.test('a quiet statement: only what the client must see of it', async (t) => {
  const quietOk = Buffer.concat([commandComplete('BEGIN'), setting, readyForQuery('T')])
  const cuts = cutsOf(quietOk)
  let same = 0
  for (const c of cuts) {
    const { out, end } = await run(quietOk, c, true)
    if (out.equals(setting) && end.ok) same++
    else t.fail(`cut at ${c.join(', ')}: ${out.toString('hex')}`)
  }
  t.equal(same, cuts.length, `a quiet BEGIN, cut in all ${cuts.length} ways: only its setting`)
  const failed = Buffer.concat([notice, error, readyForQuery('I')])
  const { out, end } = await run(failed, [7], true)
  t.ok(out.equals(Buffer.concat([notice, error])), 'a failed COMMIT: its notice and error reach the client')
  t.same(end, { ok: false, status: 'I' })
})

t.test('the next part starts clean; an abandoned part ends failed', async (t) => {
  const out: Buffer[] = []
  const replies = new PartReplies((b) => out.push(b))
  const first = replies.expect(false)
  replies.write(Buffer.concat([error, readyForQuery('E')]))
  t.same(await first, { ok: false, status: 'E' })
  const second = replies.expect(false)
  replies.write(Buffer.concat([tag, readyForQuery('T')]))
  t.same(await second, { ok: true, status: 'T' }, 'an earlier part\u2019s error does not fail the next')
  const third = replies.expect(false)
  replies.abandon()
  t.same(await third, { ok: false, status: 'E' })
})
