// How a merge orders text: as the shards' database does. C, POSIX and the C.UTF-8 locales order by bytes (UTF-8
// bytes order as code points); an ICU locale orders as ICU's collator for it, here Node's own ICU, with Postgres's
// tie-break by bytes for strings the collator calls equal (its collations are deterministic); a libc locale
// (en_US.UTF-8) orders as ICU's collator for the same language and region, which glibc's rules follow for letters,
// digits, case and accents and may not for some punctuation and symbols (pgshard cannot call the C library's
// strcoll).

export interface TextCollation {
  /** What it is, for messages: `C`, `icu:en-US`, `libc:en_US.UTF-8 (as ICU en-US)`. */
  readonly name: string
  compare(a: Buffer, b: Buffer): number
}

/** The database's default collation as its catalog row tells it. */
export interface DatabaseCollation {
  /** pg_database.datlocprovider: 'c' libc, 'i' ICU, 'b' builtin (Postgres 17); null before Postgres 15 (libc). */
  provider: string | null
  /** datcollate: the libc locale. */
  collate: string
  /** The ICU or builtin locale (daticulocale, datlocale), if any. */
  locale: string | null
}

export const BYTE_ORDER: TextCollation = { name: 'C', compare: (a, b) => Buffer.compare(a, b) }

const BYTE_ORDER_LOCALES = /^(?:C|POSIX|C\.UTF-?8|ucs_basic|pg_c_utf8|pg_unicode_fast)$/i

/** The collation of a database whose catalog says so. */
export function databaseCollation(d: DatabaseCollation): TextCollation {
  if (d.provider === 'i' && d.locale !== null) return icu(d.locale, `icu:${d.locale}`)
  if (d.provider === 'b') return BYTE_ORDER
  return libc(d.collate)
}

/**
 * The collation a `COLLATE "name"` clause names (the catalog's names: C, POSIX, ucs_basic, "default", ICU's
 * `und-x-icu` / `de-DE-x-icu`, libc's `en_US` / `en_US.utf8`); undefined for a name pgshard cannot tell (one made
 * with CREATE COLLATION).
 */
export function namedCollation(name: string, databaseDefault: TextCollation): TextCollation | undefined {
  if (name === 'default') return databaseDefault
  if (BYTE_ORDER_LOCALES.test(name)) return BYTE_ORDER
  const icuName = /^(.+)-x-icu$/.exec(name)
  if (icuName) return icu(icuName[1]!, `icu:${icuName[1]}`)
  if (/^[a-z]{2,3}_[A-Z]{2}(?:\.[\w-]+)?(?:@\w+)?$/.test(name)) return libc(name)
  return undefined
}

function libc(locale: string): TextCollation {
  if (BYTE_ORDER_LOCALES.test(locale)) return BYTE_ORDER
  // en_US.UTF-8@euro → en-US
  const tag = locale.replace(/[.@].*$/, '').replace(/_/g, '-')
  return icu(tag, `libc:${locale} (as ICU ${tag})`)
}

const collators = new Map<string, TextCollation>()

function icu(locale: string, name: string): TextCollation {
  const known = collators.get(name)
  if (known) return known
  let collator: Intl.Collator
  try {
    collator = new Intl.Collator(locale === 'root' ? 'und' : locale, { usage: 'sort', sensitivity: 'variant' })
  } catch {
    // Not a locale ICU knows by that name: its root collation, which every locale tailors.
    collator = new Intl.Collator('und', { usage: 'sort', sensitivity: 'variant' })
  }
  const collation: TextCollation = {
    name,
    compare: (a, b) => collator.compare(a.toString('utf8'), b.toString('utf8')) || Buffer.compare(a, b),
  }
  collators.set(name, collation)
  return collation
}
