import { float8, int8, text, type AdminCommand } from '../AdminCommand.js'
import { ShardMap } from '../../router/ShardMap.js'

export const showShards: AdminCommand = {
  words: ['SHOW', 'SHARDS'],
  argument: 'none',
  usage: 'SHOW SHARDS',
  description: 'the shards: current primary, replicas, share of the key space, failover mode',
  columns: [text('name'), int8('index'), text('primary'), text('replicas'), float8('keyspace_percent'), text('failover'), text('default')],
  run(ctx) {
    const { proxy } = ctx
    const map = new ShardMap(proxy.config)
    const shares = map.ring.shares()
    const rows = proxy.topology.shards.map((s, i) => {
      const primary = proxy.topology.primaryOf(i)
      const replicas = s.nodes.filter((n) => n !== primary && n.role === 'replica').map((n) => n.name)
      return [s.name, i, primary?.name ?? null, replicas.join(','), Math.round((shares[i] ?? 0) * 1e6) / 1e4, s.failover, i === map.defaultShard ? 'yes' : 'no']
    })
    return { rows, tag: 'SHOW' }
  },
}
