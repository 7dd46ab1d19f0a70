import t from 'tap'
import { ClientStatements, type ClientStatement } from '../src/proxy/ClientStatements.js'

function parsed(text: string): ClientStatement {
  return { text, paramTypes: [], tail: Buffer.alloc(0), serverName: '', plan: null, literals: [], sources: [], firstParam: 1 }
}
const sqlPrepared = (serverName: string) => ({ serverName, prepareSql: `PREPARE ${serverName} AS SELECT 1`, plan: null })

t.test('Parse and SQL PREPARE names share one namespace', async (t) => {
  const s = new ClientStatements(10)
  s.setSql('a', sqlPrepared('p1'))
  t.equal(s.has('a'), true)
  t.equal(s.get('a'), undefined, 'a SQL statement is not a protocol statement')
  t.equal(s.getSql('a')?.serverName, 'p1')
  t.equal(s.delete('a'), true, 'Close or DEALLOCATE removes either kind')
  t.equal(s.has('a'), false)
  t.equal(s.delete('a'), false, 'a name that is not there')
})

t.test('one limit counts both kinds; the unnamed statement is never refused', async (t) => {
  const s = new ClientStatements(2)
  t.equal(s.set('p', parsed('SELECT 1')), true)
  s.setSql('q', sqlPrepared('p2'))
  t.equal(s.full, true)
  t.equal(s.set('r', parsed('SELECT 2')), false, 'a third name is refused')
  t.equal(s.set('p', parsed('SELECT 3')), true, 'replacing a held name is not a new one')
  t.equal(s.set('', parsed('SELECT 4')), true, 'the unnamed statement does not count')
})

t.test('DEALLOCATE ALL keeps the unnamed statement; DISCARD ALL does not', async (t) => {
  const s = new ClientStatements(10)
  s.set('', parsed('SELECT 1'))
  s.set('p', parsed('SELECT 2'))
  s.setSql('q', sqlPrepared('p3'))
  s.deallocateAll()
  t.equal(s.has('p'), false)
  t.equal(s.has('q'), false)
  t.equal(s.get('')?.text, 'SELECT 1')
  s.clear()
  t.equal(s.has(''), false)
})
