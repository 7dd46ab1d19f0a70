/** One pgbench workload of the pooling comparison. */
export interface Workload {
  id: string
  title: string
  /** pgbench arguments besides connection, duration, threads and logging. */
  args: string[]
  clients: number
  /**
   * Share of transactions logged for p99 (pgbench --sampling-rate): enough for tens of thousands of samples at
   * the rates seen here, while the fast read-only runs do not spend pgbench's CPU writing every line.
   */
  samplingRate: number
}

const select = (mode: 'simple' | 'prepared', clients: number): Workload => ({
  id: `select-${mode}-${clients}`,
  title: `\`-S -M ${mode}\`, ${clients} clients`,
  args: ['-S', '-M', mode, '-c', String(clients)],
  clients,
  samplingRate: 0.25,
})

export const WORKLOADS: Workload[] = [
  select('simple', 16),
  select('simple', 64),
  select('prepared', 16),
  select('prepared', 64),
  { id: 'tpcb-16', title: 'TPC-B-like, 16 clients', args: ['-M', 'simple', '-c', '16'], clients: 16, samplingRate: 1 },
  {
    id: 'connect-select-8',
    title: '`-C -S` (a connection per transaction), 8 clients',
    args: ['-C', '-S', '-M', 'simple', '-c', '8'],
    clients: 8,
    samplingRate: 1,
  },
]
