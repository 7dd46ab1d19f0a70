// Framing whatever the TCP chunking: a message split over several reads, several messages in one read. The
// client side (FrontendReader) and the server side (BackendScanner) are fed the same streams cut at every
// possible place, and must see exactly the messages that were sent.
import t from 'tap'
import { BackendScanner, FORWARD, INSPECT, NOTIFY } from '../src/protocol/BackendScanner.js'
import { FrontendReader } from '../src/protocol/FrontendReader.js'
import { encodeBind, encodeParse, encodeQuery, SYNC } from '../src/protocol/FrontendMessages.js'
import { commandComplete, dataRow, readyForQuery, rowDescription } from '../src/protocol/ServerMessages.js'
import { PgError } from '../src/protocol/PgError.js'

const clientStream = Buffer.concat([
  encodeQuery('SELECT 1'),
  encodeParse('s1', 'SELECT $1::int', [23]),
  encodeBind('', 's1', [Buffer.from('42')], [0], [0]),
  SYNC,
  encodeQuery('x'.repeat(300)),
])

function cuts(stream: Buffer, parts: number[]): Buffer[] {
  const out: Buffer[] = []
  let at = 0
  for (const p of parts) {
    out.push(stream.subarray(at, p))
    at = p
  }
  out.push(stream.subarray(at))
  return out
}

t.test('FrontendReader: every single cut and every pair of cuts of the stream', async (t) => {
  const whole = new FrontendReader(1 << 20)
  whole.push(clientStream)
  const expected: string[] = []
  for (let f = whole.next(); f; f = whole.next()) expected.push(f.raw.toString('hex'))
  t.equal(expected.length, 5)
  let failures = 0
  for (let i = 0; i <= clientStream.length; i++) {
    for (let j = i; j <= clientStream.length; j += 7) {
      const r = new FrontendReader(1 << 20)
      const got: string[] = []
      for (const chunk of cuts(clientStream, [i, j])) {
        r.push(chunk)
        for (let f = r.next(); f; f = r.next()) got.push(f.raw.toString('hex'))
      }
      if (got.join() !== expected.join()) failures++
    }
  }
  t.equal(failures, 0, 'the same messages whatever the chunking')
})

t.test('FrontendReader: impossible and oversized lengths are refused before buffering', async (t) => {
  const r = new FrontendReader(1024)
  r.push(Buffer.from([0x51, 0, 0, 0, 2]))
  const thrown = (f: () => unknown): PgError | null => {
    try {
      f()
      return null
    } catch (e) {
      return e instanceof PgError ? e : null
    }
  }
  t.equal(thrown(() => r.next())?.code, '08P01')
  const big = new FrontendReader(1024)
  big.push(Buffer.from([0x51, 0, 1, 0, 0]))
  const e = thrown(() => big.next())
  t.equal(e?.code, '08P01')
  t.match(e?.message ?? '', /over the limit of 1024 bytes/)
  t.equal(big.buffered, 5, 'nothing beyond the header was buffered')
})

const serverMessages = [
  rowDescription([{ name: 'a', typeOid: 23 }]),
  ...Array.from({ length: 5 }, (_, i) => dataRow([String(i), 'y'.repeat(i * 40)])),
  commandComplete('SELECT 5'),
  readyForQuery('I'),
]
const serverStream = Buffer.concat(serverMessages)

t.test('BackendScanner: forwards every byte once and reports each message once, whatever the cuts', async (t) => {
  let failures = 0
  const expectedTypes = serverMessages.map((m) => m[0]).join()
  for (let i = 0; i <= serverStream.length; i++) {
    for (let j = i; j <= serverStream.length; j += 5) {
      const forwarded: Buffer[] = []
      const notified: number[] = []
      const inspected: string[] = []
      const scanner = new BackendScanner({
        onHeader: (type) => (type === 0x44 ? FORWARD : FORWARD | NOTIFY | (type === 0x5a ? INSPECT : 0)),
        onMessage: (type, body) => {
          notified.push(type)
          if (body) inspected.push(body.toString('hex'))
        },
        forward: (b) => forwarded.push(Buffer.from(b)),
      })
      for (const c of cuts(serverStream, [i, j])) scanner.scan(c)
      const ok =
        Buffer.concat(forwarded).equals(serverStream) &&
        notified.join() === [0x54, 0x43, 0x5a].join() &&
        inspected.join() === '49' &&
        scanner.atBoundary
      if (!ok) failures++
    }
  }
  t.equal(failures, 0, `bytes forwarded unchanged, messages ${expectedTypes} reported once`)
})

t.test('BackendScanner: suppressed messages are cut out exactly', async (t) => {
  let failures = 0
  for (let i = 0; i <= serverStream.length; i++) {
    const forwarded: Buffer[] = []
    const scanner = new BackendScanner({
      onHeader: (type) => (type === 0x43 ? NOTIFY : FORWARD),
      onMessage: () => undefined,
      forward: (b) => forwarded.push(Buffer.from(b)),
    })
    for (const c of cuts(serverStream, [i])) scanner.scan(c)
    const want = Buffer.concat(serverMessages.filter((m) => m[0] !== 0x43))
    if (!Buffer.concat(forwarded).equals(want)) failures++
  }
  t.equal(failures, 0)
})
