// `SELECT count(*) FROM (sub) s` answered by counting the merged rows of sub read across shards
// (ScatterPlan.countRows): the read's answer goes through this output, which keeps its rows from the client and
// answers their number as the statement's one row, described as count(*) is (bigint).
import { commandComplete, dataRow, rowDescription } from '../protocol/ServerMessages.js'
import type { ClientOutput } from './MultiShardExecutor.js'

const ROW_DESCRIPTION = 0x54
const DATA_ROW = 0x44
const COMMAND_COMPLETE = 0x43
const INT8_OID = 20

/** `out` with the rows of the read counted; `format`: the client's result format for the count (1 binary). */
export function countedRowsOutput(out: ClientOutput, name: string, format: 0 | 1): ClientOutput {
  let rows = 0n
  return {
    emit: (bytes) => {
      switch (bytes[0]) {
        case ROW_DESCRIPTION:
          return out.emit(rowDescription([{ name, typeOid: INT8_OID, typeSize: 8, typeModifier: -1, format }]))
        case DATA_ROW:
          rows++
          return true
        case COMMAND_COMPLETE: {
          const value = format === 1 ? Buffer.alloc(8) : Buffer.from(String(rows))
          if (format === 1) value.writeBigInt64BE(rows)
          out.emit(dataRow([value]))
          return out.emit(commandComplete('SELECT 1'))
        }
        default:
          return out.emit(bytes)
      }
    },
    drained: () => out.drained(),
  }
}
