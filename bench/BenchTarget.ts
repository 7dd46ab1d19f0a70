/** Where pgbench connects: Postgres itself or one of the poolers in front of it. */
export interface BenchTarget {
  readonly name: string
  readonly host: string
  readonly port: number
  /** The serving process whose memory is reported (undefined for direct Postgres). */
  readonly pid: number | undefined
  stop(): Promise<void>
}

/** The role and database every target serves, with the same password everywhere. */
export interface BenchLogin {
  user: string
  password: string
  database: string
}
