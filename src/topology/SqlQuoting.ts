export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`

/** A string literal under standard_conforming_strings (the default since 9.1). */
export const quoteLiteral = (value: string): string => `'${value.replace(/'/g, "''")}'`
