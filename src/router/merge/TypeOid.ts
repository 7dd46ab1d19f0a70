// Postgres type OIDs (pg_type.oid) of the types the router and the merger understand.

export const TypeOid = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  xml: 142,
  cidr: 650,
  float4: 700,
  float8: 701,
  unknown: 705,
  inet: 869,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const

const NAMES = new Map<number, string>(Object.entries(TypeOid).map(([name, oid]) => [oid, name]))

/** The name SQL text writes a type by (`'v'::int8`), for the types above; undefined for unknown and any other. */
export function sqlTypeName(oid: number): string | undefined {
  if (oid === TypeOid.char) return '"char"'
  return oid === TypeOid.unknown ? undefined : NAMES.get(oid)
}

/** Name for messages: the type's name when known, else "type oid N". */
export function typeName(oid: number): string {
  return NAMES.get(oid) ?? (isCreatedType(oid) ? `type oid ${oid} (a type created on the shards: an enum, an extension's type)` : `type oid ${oid}`)
}

/** A type created after initdb (CREATE TYPE, CREATE EXTENSION): each server numbers these itself, from FirstNormalObjectId. */
export function isCreatedType(oid: number): boolean {
  return oid >= 16384
}

/** Types whose values are strings compared byte by byte. */
export function isStringType(oid: number): boolean {
  return (
    oid === TypeOid.text ||
    oid === TypeOid.varchar ||
    oid === TypeOid.bpchar ||
    oid === TypeOid.name ||
    oid === TypeOid.unknown ||
    oid === TypeOid.char
  )
}

export function isIntegerType(oid: number): boolean {
  return oid === TypeOid.int2 || oid === TypeOid.int4 || oid === TypeOid.int8
}
