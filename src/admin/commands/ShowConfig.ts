import { ConfigSchema, type Config } from '../../config/ConfigSchema.js'
import { text, type AdminCommand } from '../AdminCommand.js'

/** Keys whose values never leave the proxy. */
const SECRET_KEYS = new Set(['password', 'server_password', 'scram_verifier'])
const MASK = '********'

/** Settings a reload cannot change: the sockets they describe are opened once, at start. */
const NEEDS_RESTART = [/^listen\.(host|port)$/, /^admin\./]

type Flat = Map<string, string>

/** Every leaf of the config as `path = text`; lists of plain values joined with commas, secrets masked. */
export function flattenConfig(value: unknown, path = '', out: Flat = new Map()): Flat {
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) out.set(path, value.join(','))
  else if (Array.isArray(value)) value.forEach((v, i) => flattenConfig(v, `${path}[${i}]`, out))
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const p = path === '' ? k : `${path}.${k}`
      if (SECRET_KEYS.has(k) && v !== undefined) out.set(p, MASK)
      else flattenConfig(v, p, out)
    }
  } else if (value !== undefined) out.set(path, String(value))
  return out
}

let defaults: Flat | null = null

/** The schema's defaults for the keys outside lists, from the smallest valid document. */
function schemaDefaults(): Flat {
  defaults ??= flattenConfig(
    ConfigSchema.parse({ users: [{ name: 'u', auth: 'trust' }], databases: [{ name: 'd' }], shards: [{ name: 's', primary: { host: 'h' } }] }),
  )
  return defaults
}

export function configRows(config: Config): string[][] {
  const d = schemaDefaults()
  return [...flattenConfig(config)].map(([key, value]) => [
    key,
    value,
    key.includes('[') ? '' : (d.get(key) ?? ''),
    NEEDS_RESTART.some((r) => r.test(key)) ? 'no' : 'yes',
  ])
}

export const showConfig: AdminCommand = {
  words: ['SHOW', 'CONFIG'],
  argument: 'none',
  usage: 'SHOW CONFIG',
  description: 'the running configuration (secrets masked); changeable = applied by RELOAD',
  columns: [text('key'), text('value'), text('default'), text('changeable')],
  run: (ctx) => ({ rows: configRows(ctx.proxy.config), tag: 'SHOW' }),
}
