/** A WAL position as Postgres prints it (`16/B374D848`) turned into a number; null (no WAL yet) is 0. */
export function parseLsn(text: string | null | undefined): bigint {
  if (!text) return 0n
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text)
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(text)}`)
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`)
}

/** The text form Postgres accepts as a pg_lsn. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
}
