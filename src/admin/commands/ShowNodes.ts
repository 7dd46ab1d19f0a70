import type { NodeState } from '../../health/NodeState.js'
import { bool, float8, int8, text, type AdminCommand } from '../AdminCommand.js'
import { formatLsn } from '../../health/Lsn.js'
import { consoleTime } from '../ConsoleFormat.js'

export function nodeStateText(n: NodeState): 'up' | 'down' | 'fenced' {
  return n.fenced ? 'fenced' : n.up ? 'up' : 'down'
}

export const showNodes: AdminCommand = {
  words: ['SHOW', 'NODES'],
  argument: 'none',
  usage: 'SHOW NODES',
  description: 'every Postgres server: shard, role, up/down/fenced, replication lag',
  columns: [
    text('name'),
    text('shard'),
    text('role'),
    text('state'),
    int8('lag_bytes'),
    float8('lag_seconds'),
    text('replay_lsn'),
    text('host'),
    int8('port'),
    text('configured_role'),
    int8('weight'),
    bool('in_recovery'),
    text('current_lsn'),
    bool('sync_required'),
    int8('sync_standbys'),
    int8('failures'),
    text('last_check'),
    text('last_error'),
  ],
  run(ctx) {
    const { topology } = ctx.proxy
    const rows = topology.shards.flatMap((s) =>
      s.nodes.map((n) => [
        n.name,
        s.name,
        n.role,
        nodeStateText(n),
        n.role === 'replica' ? n.lagBytes : null,
        n.role === 'replica' ? n.lagSeconds : null,
        n.replayLsn > 0n ? formatLsn(n.replayLsn) : null,
        n.host,
        n.port,
        n.configuredRole,
        n.weight,
        n.inRecovery,
        n.role === 'primary' && n.currentLsn > 0n ? formatLsn(n.currentLsn) : null,
        n.role === 'primary' ? n.syncRequired : null,
        n.role === 'primary' ? n.syncStandbys : null,
        n.failures,
        n.lastCheckAt > 0 ? consoleTime(n.lastCheckAt) : null,
        n.lastError,
      ]),
    )
    return { rows, tag: 'SHOW' }
  },
}
