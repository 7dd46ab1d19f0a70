import { randomBytes } from 'node:crypto'
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { cleanUpOnExit } from './ExitCleanup.js'
import { freeLoopbackPorts } from './FreePort.js'
import { OrphanReaper } from './OrphanReaper.js'
import { findPostgresBinaries } from './PostgresBinaries.js'
import { formatConf, NODE_CONF, TEST_SETTINGS } from './PostgresConf.js'
import { giveToPostgres, postgresOsUser } from './PostgresOsUser.js'
import { ProgramFailedError, runAsPostgres, type RunOptions } from './PostgresProgram.js'
import { readPostmasterPidFile } from './PostmasterPidFile.js'
import { isAlive, processesUnder, signalQuietly, waitFor, worksIn } from './ProcessScan.js'
import { topologyParentDir } from './ScratchSpace.js'
import { quoteIdent, quoteLiteral } from '../router/SqlQuoting.js'
import { removeStaleSharedMemory } from './SysvSharedMemory.js'
import { tearDown, tearDownSync } from './TopologyTeardown.js'

/** The prefix of every temp dir a topology creates: scripts/leak-check.sh looks for it. */
export const BASE_DIR_PREFIX = 'pgshard-topo-'

export interface LocalTopologyOptions {
  shards: number
  replicas: number
  /** Created on every primary (so on every node), with passwords hashed per `auth`. */
  users?: { name: string; password: string; superuser?: boolean }[]
  /** Created on every primary, owned by the first user (default ['app']). */
  databases?: string[]
  /** An ICU locale for some of them (`{ app: 'en-US' }`): their text sorts by it, not by bytes as the cluster's C. */
  icuLocales?: Record<string, string>
  /** pg_hba method for TCP connections, replication included (default scram-sha-256). */
  auth?: 'scram-sha-256' | 'md5' | 'trust'
  /** synchronous_standby_names = 'ANY 1 (<the shard's replicas>)' on each primary. */
  synchronousReplicas?: boolean
  /** Extra postgresql.conf settings for every node. */
  settings?: Record<string, string>
  /** TLS on every node with this certificate and key (PEM files); `required`: TCP log-ins without TLS are refused. */
  tls?: { cert: string; key: string; required?: boolean }
  /** Default: a fresh mkdtemp under TMPDIR if set, else /dev/shm (tmpfs), else os.tmpdir(). Must be empty or absent; stop() removes it. */
  baseDir?: string
  log?: (line: string) => void
}

export interface LocalNode {
  name: string
  shard: number
  role: 'primary' | 'replica'
  host: '127.0.0.1'
  port: number
  dataDir: string
  logFile: string
  /** The physical replication slot this replica streams from, on its primary. */
  slot?: string
}

export interface LocalShard {
  name: string
  primary: LocalNode
  replicas: LocalNode[]
}

export interface ShardAddresses {
  name: string
  primary: { host: string; port: number }
  replicas: { host: string; port: number }[]
}

export type KillSignal = 'SIGKILL' | 'SIGSTOP' | 'SIGCONT' | 'SIGTERM'

const START_ATTEMPTS = 5
const PORT_TAKEN = /could not bind|Address already in use|could not create any TCP\/IP sockets/
const LEFTOVER_WAIT_MS = 10_000

/**
 * Real PostgreSQL servers on loopback ports in one temp dir: N shards of a primary and M streaming replicas.
 * Used by `pgshard dev` and by the tests; every process and file it makes goes away on stop(), on process
 * exit or signal, and (through a detached reaper) even when this process is SIGKILLed.
 */
export class LocalTopology {
  readonly superuser: { user: 'postgres'; password: string }
  private stopping?: Promise<void>
  private readonly reaper: OrphanReaper
  private readonly forgetExitCleanup: () => void

  private constructor(
    readonly baseDir: string,
    readonly nodes: LocalNode[],
    readonly shards: LocalShard[],
    password: string,
    private readonly binDir: string,
    private readonly log: (line: string) => void,
  ) {
    this.superuser = { user: 'postgres', password }
    this.reaper = OrphanReaper.start(baseDir)
    this.forgetExitCleanup = cleanUpOnExit(() => tearDownSync(baseDir, this.dataDirs()))
  }

  static async start(opts: LocalTopologyOptions): Promise<LocalTopology> {
    validateOptions(opts)
    const binDir = findPostgresBinaries()
    postgresOsUser() // as root without a postgres OS user, fail before creating anything
    const ports = await freeLoopbackPorts(opts.shards * (1 + opts.replicas))
    const baseDir = await makeBaseDir(opts.baseDir)
    const shards: LocalShard[] = []
    for (let s = 0; s < opts.shards; s++) {
      const node = (name: string, role: LocalNode['role'], slot?: string): LocalNode => ({
        name,
        shard: s,
        role,
        host: '127.0.0.1',
        port: ports.pop()!,
        dataDir: join(baseDir, name),
        logFile: join(baseDir, `${name}.log`),
        ...(slot === undefined ? {} : { slot }),
      })
      const replicas = Array.from({ length: opts.replicas }, (_, r) => node(`s${s}-replica${r + 1}`, 'replica', `s${s}_replica${r + 1}`))
      shards.push({ name: `s${s}`, primary: node(`s${s}-primary`, 'primary'), replicas })
    }
    const nodes = shards.flatMap((s) => [s.primary, ...s.replicas])
    const topo = new LocalTopology(baseDir, nodes, shards, randomBytes(18).toString('base64url'), binDir, opts.log ?? (() => {}))
    try {
      await topo.build(opts)
    } catch (err) {
      await topo.stop()
      throw err
    }
    return topo
  }

  node(name: string): LocalNode {
    const found = this.nodes.find((n) => n.name === name)
    if (found === undefined) throw new Error(`no node named ${JSON.stringify(name)} (have ${this.nodes.map((n) => n.name).join(', ')})`)
    return found
  }

  /**
   * Runs SQL as the superuser over the node's Unix socket (local trust, no password round trip). With several
   * statements, returns the rows of the last one.
   */
  async query(node: LocalNode | string, sql: string, database = 'postgres'): Promise<Record<string, unknown>[]> {
    const n = this.resolve(node)
    const client = new pg.Client({ host: this.baseDir, port: n.port, user: 'postgres', database, connectionTimeoutMillis: 10_000 })
    // A node killed mid-query must reject the query, not crash the process with an 'error' event.
    client.on('error', () => {})
    await client.connect()
    try {
      const result = (await client.query(sql)) as pg.QueryResult | pg.QueryResult[]
      const last = Array.isArray(result) ? result[result.length - 1] : result
      return last?.rows ?? []
    } finally {
      await client.end().catch(() => {})
    }
  }

  /** The same SQL on every shard's primary (as query() runs it): one result per shard, in shard order. */
  queryPrimaries(sql: string, database = 'postgres'): Promise<Record<string, unknown>[][]> {
    return Promise.all(this.shards.map((s) => this.query(s.primary, sql, database)))
  }

  /**
   * Waits until `replica` has replayed everything `from` (default: its shard's first primary) has written so far.
   */
  async waitForReplay(replica: LocalNode | string, opts: { from?: LocalNode | string; timeoutMs?: number } = {}): Promise<void> {
    const r = this.resolve(replica)
    const from = opts.from === undefined ? this.shards[r.shard].primary : this.resolve(opts.from)
    const timeoutMs = opts.timeoutMs ?? 10_000
    const [{ lsn }] = await this.query(from, 'SELECT pg_current_wal_lsn()::text AS lsn')
    const caughtUp = async () => {
      const [row] = await this.query(r, `SELECT coalesce(pg_last_wal_replay_lsn() >= ${quoteLiteral(String(lsn))}::pg_lsn, false) AS done`)
      return row.done === true
    }
    if (!(await waitFor(caughtUp, timeoutMs))) {
      throw new Error(`${r.name} did not replay ${from.name}'s WAL up to ${lsn} within ${timeoutMs} ms`)
    }
  }

  /**
   * Signals the node's postmaster (scope 'all': every process of the node, so existing connections freeze too).
   * SIGKILL always takes the whole node down, like a crashed machine, and resolves once nothing of it is left,
   * so startNode() can follow at once.
   */
  async kill(node: LocalNode | string, signal: KillSignal, scope: 'postmaster' | 'all' = 'postmaster'): Promise<void> {
    const n = this.resolve(node)
    const pidFile = readPostmasterPidFile(n.dataDir)
    // The pid of a stale postmaster.pid may be another process by now: it must be working in this data dir.
    const running = (pid: number) => isAlive(pid) && worksIn(pid, n.dataDir)
    if (pidFile === undefined || !running(pidFile.pid)) throw new Error(`${n.name} is not running`)
    process.kill(pidFile.pid, signal)
    if (signal === 'SIGKILL') {
      await waitFor(() => !running(pidFile.pid), LEFTOVER_WAIT_MS)
      for (const pid of processesUnder(n.dataDir)) signalQuietly(pid, 'SIGKILL')
      await waitFor(() => processesUnder(n.dataDir).length === 0, LEFTOVER_WAIT_MS)
      // Until init reaps the dead postmaster, its pid still answers kill(pid, 0), and a restart would refuse
      // ("lock file already exists"): do what Postgres does with stale locks, drop them and the segment.
      removeStaleSharedMemory(pidFile)
      await rm(join(n.dataDir, 'postmaster.pid'), { force: true })
      await rm(join(this.baseDir, `.s.PGSQL.${n.port}.lock`), { force: true })
    } else if (scope === 'all') {
      for (const pid of processesUnder(n.dataDir)) signalQuietly(pid, signal)
    }
  }

  async stopNode(node: LocalNode | string, mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const n = this.resolve(node)
    await this.run('pg_ctl', ['stop', '-D', n.dataDir, '-m', mode, '-w', '-t', '60', '-s'])
    this.log(`${n.name} stopped (${mode})`)
  }

  async startNode(node: LocalNode | string): Promise<void> {
    const n = this.resolve(node)
    if (!(await waitFor(() => processesUnder(n.dataDir).length === 0, LEFTOVER_WAIT_MS))) {
      throw new Error(`${n.name}: processes of the previous server are still running`)
    }
    await this.startServer(n)
  }

  /** A primary_conninfo for `replica` to stream from `primary` (e.g. after a promotion), as pg_basebackup -R writes it. */
  primaryConninfo(primary: LocalNode | string, replica: LocalNode | string): string {
    const p = this.resolve(primary)
    const r = this.resolve(replica)
    return `host=${p.host} port=${p.port} user=postgres password=${this.superuser.password} application_name=${r.name}`
  }

  shardsConfig(): ShardAddresses[] {
    const address = (n: LocalNode) => ({ host: n.host, port: n.port })
    return this.shards.map((s) => ({ name: s.name, primary: address(s.primary), replicas: s.replicas.map(address) }))
  }

  /** Stops every server (immediate shutdown) and removes baseDir. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await tearDown(this.baseDir, this.dataDirs())
      this.reaper.stop()
      this.forgetExitCleanup()
      this.log(`topology in ${this.baseDir} stopped and removed`)
    })()
    return this.stopping
  }

  private dataDirs(): string[] {
    return this.nodes.map((n) => n.dataDir)
  }

  private resolve(node: LocalNode | string): LocalNode {
    return typeof node === 'string' ? this.node(node) : this.node(node.name)
  }

  private run(program: string, args: string[], opts: Partial<RunOptions> = {}) {
    return runAsPostgres(join(this.binDir, program), args, { cwd: this.baseDir, ...opts })
  }

  private async build(opts: LocalTopologyOptions): Promise<void> {
    const began = Date.now()
    const template = join(this.baseDir, 'template')
    await this.initTemplate(template, opts)
    this.log(`initdb template ready in ${Date.now() - began} ms`)
    await Promise.all(this.shards.map((shard) => this.buildShard(shard, template, opts)))
    await rm(template, { recursive: true, force: true })
    this.log(`${this.nodes.length} nodes up in ${Date.now() - began} ms (${this.baseDir})`)
  }

  /** initdb once, the settings every node shares, then users and databases (single-user mode: no server start). */
  private async initTemplate(template: string, opts: LocalTopologyOptions): Promise<void> {
    const auth = opts.auth ?? 'scram-sha-256'
    const pwFile = join(this.baseDir, 'superuser.pw')
    await writeFile(pwFile, `${this.superuser.password}\n`, { mode: 0o600 })
    await giveToPostgres(pwFile)
    await this.run('initdb', [
      '-D', template, '-U', 'postgres', `--pwfile=${pwFile}`, '--auth-local=trust', `--auth-host=${auth}`,
      '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions',
    ])
    await rm(pwFile)
    if (opts.tls) await this.enableTls(template, opts.tls)
    const shared = {
      ...TEST_SETTINGS,
      ...(opts.tls ? { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key' } : {}),
      unix_socket_directories: this.baseDir,
      // md5 in pg_hba only really asks for md5 when the stored hash is md5; otherwise Postgres upgrades to SCRAM.
      password_encryption: auth === 'md5' ? 'md5' : 'scram-sha-256',
      ...opts.settings,
    }
    await appendFile(join(template, 'postgresql.conf'), `\n# pgshard local topology\n${formatConf(shared)}include_if_exists = '${NODE_CONF}'\n`)
    const statements = setupStatements(opts)
    if (statements.length > 0) {
      await this.run('postgres', ['--single', '-D', template, '-c', 'exit_on_error=true', 'postgres'], { input: `${statements.join('\n')}\n` })
    }
  }

  /** The certificate and key go into the template (so into every node, as `cp -a` keeps modes and owner). */
  private async enableTls(template: string, tls: NonNullable<LocalTopologyOptions['tls']>): Promise<void> {
    for (const [from, to] of [[tls.cert, 'server.crt'], [tls.key, 'server.key']]) {
      const file = join(template, to)
      await writeFile(file, await readFile(from), { mode: 0o600 })
      await giveToPostgres(file)
    }
    if (!tls.required) return
    const hba = join(template, 'pg_hba.conf')
    await writeFile(hba, (await readFile(hba, 'utf8')).replace(/^host(\s)/gm, 'hostssl$1'))
  }

  private async buildShard(shard: LocalShard, template: string, opts: LocalTopologyOptions): Promise<void> {
    const primary = shard.primary
    // cp -a as postgres keeps modes and ownership, and is several times faster than fs.cp on ~1000 files.
    await runAsPostgres('cp', ['-a', template, primary.dataDir], { cwd: this.baseDir })
    const sync = opts.synchronousReplicas === true && shard.replicas.length > 0
    const primarySettings: Record<string, string> = sync
      ? { synchronous_standby_names: `ANY 1 (${shard.replicas.map((r) => quoteIdent(r.name)).join(', ')})` }
      : {}
    await this.startFresh(primary, primarySettings)
    await Promise.all(
      shard.replicas.map(async (replica) => {
        // -R writes primary_conninfo (with this application_name, so synchronous_standby_names can name it)
        // and standby.signal; -C creates the slot on the primary.
        await this.run(
          'pg_basebackup',
          [
            '-D', replica.dataDir, '-R', '-C', '-S', replica.slot!, '-X', 'stream', '-c', 'fast', '--no-sync',
            '-d', `host=${primary.host} port=${primary.port} user=postgres application_name=${replica.name}`,
          ],
          { env: { PGPASSWORD: this.superuser.password } },
        )
        await this.startFresh(replica, {})
        // Slots for the siblings (unreserved, so they hold no WAL until used): after pg_promote() the other
        // replicas can be repointed here with primary_conninfo alone, as their primary_slot_name already exists.
        for (const sibling of shard.replicas.filter((r) => r !== replica)) {
          await this.query(replica, `SELECT pg_create_physical_replication_slot(${quoteLiteral(sibling.slot!)})`)
        }
      }),
    )
  }

  /** First start of a node: writes its own settings, and moves to another port if someone took ours meanwhile. */
  private async startFresh(node: LocalNode, settings: Record<string, string>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const conf = join(node.dataDir, NODE_CONF)
      await writeFile(conf, formatConf({ port: String(node.port), cluster_name: node.name, ...settings }))
      await giveToPostgres(conf)
      try {
        await this.startServer(node)
        return
      } catch (err) {
        const log = await readFile(node.logFile, 'utf8').catch(() => '')
        if (attempt >= START_ATTEMPTS || !PORT_TAKEN.test(log.slice(-2000))) throw err
        const [port] = await freeLoopbackPorts(1)
        this.log(`${node.name}: port ${node.port} was taken, retrying on ${port}`)
        node.port = port
      }
    }
  }

  private async startServer(node: LocalNode): Promise<void> {
    try {
      // Detached: a Ctrl-C aimed at us must not reach the servers before stop() does, in order.
      await this.run('pg_ctl', ['start', '-D', node.dataDir, '-l', node.logFile, '-w', '-t', '60', '-s'], { detached: true })
    } catch (err) {
      const log = await readFile(node.logFile, 'utf8').catch(() => '')
      const detail = err instanceof ProgramFailedError ? err.message : String(err)
      throw new Error(`${node.name} did not start: ${detail}\n--- ${node.logFile} (tail) ---\n${log.slice(-1500)}`)
    }
    this.log(`${node.name} up on ${node.host}:${node.port}`)
  }
}

function validateOptions(opts: LocalTopologyOptions): void {
  const count = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max) throw new Error(`LocalTopology: ${name} must be an integer from ${min} to ${max}, got ${v}`)
  }
  count('shards', opts.shards, 1, 32)
  count('replicas', opts.replicas, 0, 8)
  // Single-user mode reads one statement per line, and names go into SQL: keep them printable.
  const printable = (what: string, v: string) => {
    if (v.length === 0 || v.length > 63 * 4 || /[\u0000-\u001f\u007f]/.test(v)) {
      throw new Error(`LocalTopology: ${what} must be non-empty printable text`)
    }
  }
  for (const u of opts.users ?? []) {
    printable('user name', u.name)
    printable(`password of ${u.name}`, u.password)
  }
  for (const d of opts.databases ?? []) printable('database name', d)
  for (const locale of Object.values(opts.icuLocales ?? {})) printable('ICU locale', locale)
}

function setupStatements(opts: LocalTopologyOptions): string[] {
  const users = opts.users ?? []
  const owner = users[0] === undefined ? '' : ` OWNER ${quoteIdent(users[0].name)}`
  return [
    ...users.map((u) => `CREATE ROLE ${quoteIdent(u.name)} LOGIN${u.superuser === true ? ' SUPERUSER' : ''} PASSWORD ${quoteLiteral(u.password)}`),
    ...(opts.databases ?? ['app']).map((d) => {
      const icu = opts.icuLocales?.[d]
      return `CREATE DATABASE ${quoteIdent(d)}${owner}${icu === undefined ? '' : ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE ${quoteLiteral(icu)}`}`
    }),
  ]
}

async function makeBaseDir(wanted: string | undefined): Promise<string> {
  let dir: string
  if (wanted === undefined) {
    dir = await mkdtemp(join(topologyParentDir(), BASE_DIR_PREFIX))
  } else {
    await mkdir(wanted, { recursive: true })
    if ((await readdir(wanted)).length > 0) throw new Error(`LocalTopology: baseDir ${wanted} is not empty (stop() would remove it)`)
    dir = wanted
  }
  try {
    await assertReachableByPostgres(dir)
    await giveToPostgres(dir)
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  return dir
}

/** As root the servers run as `postgres`, which must be able to walk down to the base dir. */
async function assertReachableByPostgres(dir: string): Promise<void> {
  const user = postgresOsUser()
  if (user === undefined) return
  for (let d = dirname(dir); ; d = dirname(d)) {
    const s = await stat(d)
    const searchable = (s.mode & 0o001) !== 0 || (s.uid === user.uid && (s.mode & 0o100) !== 0) || (s.gid === user.gid && (s.mode & 0o010) !== 0)
    if (!searchable) {
      throw new Error(`LocalTopology: the postgres OS user cannot enter ${d}; use a baseDir (or TMPDIR) it can reach, such as /tmp`)
    }
    if (d === dirname(d)) return
  }
}
