/** Where each node keeps what differs per node (port, name, …); the template's postgresql.conf includes it last. */
export const NODE_CONF = 'pgshard-node.conf'

// Fast, disposable servers: durability off, small memory, room for many test connections, replication ready.
export const TEST_SETTINGS: Record<string, string> = {
  listen_addresses: '127.0.0.1',
  fsync: 'off',
  full_page_writes: 'off',
  shared_buffers: '32MB',
  max_connections: '300',
  // Cross-shard transactions (sharding.cross_shard_transactions: two_phase) prepare on every shard but the first.
  max_prepared_transactions: '64',
  wal_level: 'replica',
  max_wal_senders: '10',
  max_replication_slots: '10',
  hot_standby: 'on',
  hot_standby_feedback: 'on',
  wal_keep_size: '256MB',
  logging_collector: 'off',
  // Segments live in <dataDir>/pg_dynshmem instead of /dev/shm: a SIGKILLed server cannot leak them.
  dynamic_shared_memory_type: 'mmap',
  // A standby whose primary went away retries after 5 s by default; tests restart and repoint quickly.
  wal_retrieve_retry_interval: '200ms',
  log_line_prefix: '%m [%p] %q%u@%d ',
}

/** postgresql.conf lines; every value quoted, so any value is one setting. */
export function formatConf(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([name, value]) => {
      if (!/^[a-z_][a-z0-9_.]*$/i.test(name)) throw new Error(`invalid Postgres setting name: ${JSON.stringify(name)}`)
      return `${name} = '${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'\n`
    })
    .join('')
}
