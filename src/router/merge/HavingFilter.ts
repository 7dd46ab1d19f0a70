// Evaluates a HAVING condition on a merged group with SQL's three-valued logic (NULL is unknown; only a
// true condition keeps the group). A constant or parameter compared with a column is read as the column's
// type, as Postgres would coerce an untyped literal.
import type { BoundParam } from '../Route.js'
import type { MergeExpr } from '../StatementPlan.js'
import type { ColumnInfo } from './ColumnInfo.js'
import { MergeError } from './MergeError.js'
import { compareValues, decodeValue, valueFromText, type SqlValue } from './SqlValue.js'
import { TypeOid } from './TypeOid.js'

type Row = (Buffer | null)[]
type Truth = boolean | null

/** An operand before coercion: a column's value and type, or text (or a parameter) still waiting for a type. */
type Operand = { typed: SqlValue | null; oid: number } | { text: string | null; param?: BoundParam }

export class HavingFilter {
  constructor(
    private readonly expr: MergeExpr,
    private readonly columns: ColumnInfo[],
    private readonly param: (n: number) => BoundParam | undefined,
  ) {}

  keeps(row: Row): boolean {
    return this.truth(this.expr, row) === true
  }

  private truth(e: MergeExpr, row: Row): Truth {
    switch (e.op) {
      case 'and': {
        let result: Truth = true
        for (const arg of e.args) {
          const t = this.truth(arg, row)
          if (t === false) return false
          if (t === null) result = null
        }
        return result
      }
      case 'or': {
        let result: Truth = false
        for (const arg of e.args) {
          const t = this.truth(arg, row)
          if (t === true) return true
          if (t === null) result = null
        }
        return result
      }
      case 'not': {
        const t = this.truth(e.arg, row)
        return t === null ? null : !t
      }
      case 'is_null': {
        const isNull = this.isNull(this.operand(e.arg, row))
        return e.negated ? !isNull : isNull
      }
      case 'compare':
        return this.compare(e.cmp, this.operand(e.left, row), this.operand(e.right, row))
      default: {
        const v = this.typed(this.operand(e, row), TypeOid.bool)
        if (v === null) return null
        if (v.kind !== 'bool') throw new MergeError('HAVING condition is not a boolean', '42804')
        return v.value
      }
    }
  }

  private operand(e: MergeExpr, row: Row): Operand {
    switch (e.op) {
      case 'column': {
        const col = this.columns[e.column]
        const raw = row[e.column]
        if (!col) throw new MergeError(`HAVING refers to column ${e.column + 1}, which the shards do not return`, 'XX000')
        const typed = raw === null || raw === undefined ? null : decodeValue(raw, col.typeOid, col.format, col.collation)
        return { typed, oid: col.typeOid }
      }
      case 'const':
        return { text: e.value }
      case 'param': {
        const p = this.param(e.param)
        if (p === undefined) throw new MergeError(`no value is bound to parameter $${e.param}`, '08P01')
        if (p.value === null) return { text: null }
        if (typeof p.value === 'string') return { text: p.value }
        return p.format === 1 ? { text: '', param: p } : { text: p.value.toString('utf8') }
      }
      default:
        throw new MergeError(`a ${e.op} expression is not a value`, '42804')
    }
  }

  private isNull(o: Operand): boolean {
    return 'typed' in o ? o.typed === null : o.text === null
  }

  /**
   * The operand as a value: untyped text read as type `oid`, a binary parameter decoded as its own type or,
   * when unspecified, as `binaryOid` (the type the server inferred from the other side).
   */
  private typed(o: Operand, oid: number, binaryOid = oid): SqlValue | null {
    if ('typed' in o) return o.typed
    if (o.text === null) return null
    const p = o.param
    if (p && p.format === 1 && typeof p.value !== 'string' && p.value !== null) {
      return decodeValue(p.value, p.typeOid !== 0 ? p.typeOid : binaryOid, 1)
    }
    return valueFromText(o.text, oid)
  }

  private compare(cmp: string, left: Operand, right: Operand): Truth {
    if (this.isNull(left) || this.isNull(right)) return null
    let a: SqlValue | null
    let b: SqlValue | null
    if ('typed' in left) {
      a = left.typed
      b = this.typed(right, coercedType(left.oid), left.oid)
    } else if ('typed' in right) {
      b = right.typed
      a = this.typed(left, coercedType(right.oid), right.oid)
    } else {
      // Two untyped values: numbers if both read as numbers, else text.
      const numeric = [left, right].every((o) => o.text !== null && o.text.trim() !== '' && !Number.isNaN(Number(o.text)))
      const oid = numeric ? TypeOid.numeric : TypeOid.text
      a = this.typed(left, oid)
      b = this.typed(right, oid)
    }
    if (a === null || b === null) return null
    const c = compareValues(a, b)
    switch (cmp) {
      case '=':
        return c === 0
      case '<>':
        return c !== 0
      case '<':
        return c < 0
      case '<=':
        return c <= 0
      case '>':
        return c > 0
      case '>=':
        return c >= 0
      default:
        throw new MergeError(`unsupported comparison ${cmp} in HAVING`, '0A000')
    }
  }
}

/**
 * The type text compared with a column of type `oid` is read as: the column's own type, except that an
 * integer column compares with numeric (count(*) > 1.5) and float4 with float8, as Postgres's operators do.
 */
function coercedType(oid: number): number {
  if (oid === TypeOid.int2 || oid === TypeOid.int4 || oid === TypeOid.int8 || oid === TypeOid.oid) return TypeOid.numeric
  if (oid === TypeOid.float4) return TypeOid.float8
  return oid
}
