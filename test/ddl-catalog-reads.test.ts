// The catalog reads that follow DDL: a statement refused for want of a table made moments ago may ask for one at
// once, but only after DDL, sharing a read that runs, and, without new DDL, not more often than a few times a second.
import t from 'tap'
import { DdlCatalogReads } from '../src/health/DdlCatalogReads.js'

t.test('a read on demand only after DDL, shared while it runs, then not again at once', async (t) => {
  let reads = 0
  let finish: () => void = () => undefined
  const reads$ = new DdlCatalogReads(() => {
    reads++
    return new Promise<void>((resolve) => (finish = resolve))
  })
  t.teardown(() => reads$.stop())
  t.equal(await reads$.readNow(), false, 'no DDL seen: nothing to read')
  t.equal(reads, 0)
  reads$.changed()
  const first = reads$.readNow()
  const second = reads$.readNow()
  t.equal(reads, 1, 'two statements share one read')
  finish()
  t.same(await Promise.all([first, second]), [true, true], 'both route again once it ran')
  t.equal(await reads$.readNow(), false, 'a moment later, without new DDL, no second read')
  t.equal(reads, 1)
  reads$.changed()
  const again = reads$.readNow()
  t.equal(reads, 2, 'new DDL: a read at once')
  finish()
  t.equal(await again, true)
})

t.test('a failed read tells the statement to keep its refusal', async (t) => {
  const reads$ = new DdlCatalogReads(() => Promise.reject(new Error('shard down')))
  t.teardown(() => reads$.stop())
  reads$.changed()
  t.equal(await reads$.readNow(), false)
})
