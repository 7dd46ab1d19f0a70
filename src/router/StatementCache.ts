// A bounded LRU of plans. Statements are looked up by their normalized text (literals replaced by $n), so a client
// that inlines a new value every time still parses each statement shape once. A normalized text that does not
// parse (a literal stood where only a constant may) is remembered, and such statements are cached by raw text. A
// statement that reads views over sharded tables is analyzed as written with their queries in place (ViewInliner).
import type { SessionEffect, StatementPlan } from './StatementPlan.js'
import { highestParam, normalizeLiterals } from './LiteralNormalizer.js'
import { resolveSessionEffect, sessionEffectParams } from './SessionEffects.js'
import { analyzeStatement } from './StatementAnalyzer.js'
import { SqlSyntaxError } from './SqlParser.js'
import type { InlinedText } from './ViewInliner.js'

export interface CacheLookup {
  plan: StatementPlan
  /** The text the plan was made from (normalized, or the raw text): its byte offsets (insert rows) refer to it. */
  text: string
  /** Values of $firstParam, $firstParam+1, … that the normalizer took out of the text. */
  literals: string[]
  /** The same literals as written, for restoreLiterals() on texts derived from the plan (shardSql, INSERT parts). */
  sources: string[]
  /** First parameter number the normalizer introduced; lower ones are the client's own Bind parameters. */
  firstParam: number
  hit: boolean
}

/** A normalized text that does not parse: use the raw text. */
const RAW = Symbol('raw')

/** A plan, and the text it was made from when that is not the key (views written in place). */
interface Entry {
  plan: StatementPlan
  text?: string
}

export interface StatementCacheOptions {
  /** Longer texts are analyzed but not kept, so the cache's memory stays bounded. Default 64 KiB. */
  maxTextLength?: number
  /** The text with the views it reads written in place, if it reads any. */
  inline?: (text: string) => InlinedText | undefined
}

export class StatementCache {
  private readonly entries = new Map<string, Entry | typeof RAW>()
  private readonly maxTextLength: number
  private hitCount = 0
  private missCount = 0

  constructor(
    private readonly maxEntries: number,
    options: StatementCacheOptions = {},
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('StatementCache needs at least one entry')
    this.maxTextLength = options.maxTextLength ?? 65536
    this.inline = options.inline
  }

  private readonly inline: StatementCacheOptions['inline']

  /** Forgets every plan: what a statement reads changed (a view was made, changed or dropped). */
  clear(): void {
    this.entries.clear()
  }

  get hits(): number {
    return this.hitCount
  }

  get misses(): number {
    return this.missCount
  }

  get size(): number {
    return this.entries.size
  }

  /** The plan of `sql`. Parses at most once per distinct normalized text. Throws SqlSyntaxError / InvalidHintError. */
  lookup(sql: string): CacheLookup {
    const firstParam = highestParam(sql) + 1
    const normalized = normalizeLiterals(sql, firstParam)
    if (normalized !== null) {
      const known = this.get(normalized.text)
      if (known !== RAW) {
        let entry = known
        const hit = entry !== undefined
        if (entry === undefined) {
          try {
            entry = this.analyze(normalized.text)
          } catch (err) {
            if (!(err instanceof SqlSyntaxError) || normalized.values.length === 0) throw err
            const raw = this.raw(sql)
            this.put(normalized.text, RAW)
            return raw
          }
          this.put(normalized.text, entry)
        }
        this.count(hit)
        const { plan, text = normalized.text } = entry
        return { plan: withLiterals(plan, normalized.values, firstParam), text, literals: normalized.values, sources: normalized.sources, firstParam, hit }
      }
    }
    return this.raw(sql)
  }

  private raw(sql: string): CacheLookup {
    const known = this.get(sql)
    const hit = known !== undefined && known !== RAW
    const entry = hit ? known : this.analyze(sql)
    if (!hit) this.put(sql, entry)
    this.count(hit)
    return { plan: entry.plan, text: entry.text ?? sql, literals: [], sources: [], firstParam: entry.plan.paramCount + 1, hit }
  }

  private analyze(text: string): Entry {
    const inlined = this.inline?.(text)
    if (inlined === undefined) return { plan: analyzeStatement(text) }
    return { plan: { ...analyzeStatement(inlined.text), viewsRead: inlined.views }, text: inlined.text }
  }

  private count(hit: boolean): void {
    if (hit) this.hitCount++
    else this.missCount++
  }

  private get(key: string): Entry | typeof RAW | undefined {
    const entry = this.entries.get(key)
    if (entry !== undefined) {
      this.entries.delete(key)
      this.entries.set(key, entry)
    }
    return entry
  }

  private put(key: string, entry: Entry | typeof RAW): void {
    if (key.length > this.maxTextLength) return
    this.entries.set(key, entry)
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!)
  }
}

/** set_config() effects fed only by literals the normalizer took out get their values back (the plan is shared). */
function withLiterals(plan: StatementPlan, literals: readonly string[], firstParam: number): StatementPlan {
  const fillable = (e: SessionEffect): boolean => {
    const params = sessionEffectParams(e)
    return params.length > 0 && params.every((n) => n >= firstParam)
  }
  if (literals.length === 0 || !plan.session.some(fillable)) return plan
  const value = (n: number): string | undefined => literals[n - firstParam]
  return { ...plan, session: plan.session.map((e) => (fillable(e) ? resolveSessionEffect(e, value) : e)) }
}
