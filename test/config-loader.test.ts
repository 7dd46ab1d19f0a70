import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, loadConfig, parseConfig } from '../src/config/ConfigLoader.js'

// Line 1 is `users:`; tests that assert line numbers count from here.
const VALID = `users:
  - name: app
    password: app-secret
databases:
  - name: app
shards:
  - name: s1
    primary: { host: 127.0.0.1, port: 5432 }
    replicas:
      - { host: 127.0.0.1, port: 5433 }
  - name: s2
    primary: { host: 127.0.0.1, port: 5434 }
`

/** The error lines a config text produces; fails the test when it parses. */
function problems(t: Test, text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'test.yaml', env)
  } catch (e) {
    t.type(e, ConfigError)
    return (e as ConfigError).message.split('\n')
  }
  t.fail('expected a ConfigError')
  return []
}

t.test('a valid file gets every default filled in', async (t) => {
  const config = parseConfig(VALID, 'test.yaml', {})
  t.equal(config.version, 1)
  t.equal(config.map_version, '1')
  t.same(config.listen, { host: '127.0.0.1', port: 6432, max_client_connections: 10000, max_message_size: 64 * 1024 * 1024 })
  t.equal(config.users[0].auth, 'scram-sha-256')
  t.equal(config.users[0].admin, false)
  t.equal(config.shards[1].primary.port, 5434)
  t.same(config.shards[1].replicas, [])
  t.equal(config.shards[0].failover, 'manual')
  t.equal(config.pool.mode, 'transaction')
  t.equal(config.pool.size, 20)
  t.equal(config.pool.checkout_timeout, 5000)
  t.equal(config.pool.idle_timeout, 600_000)
  t.same(config.sharding.ring, { version: 1, points_per_shard: 1024, seed: 'pgshard' })
  t.same(config.sharding.tables, [])
  t.equal(config.health.interval, 1000)
  t.equal(config.log.level, 'info')
  t.equal(config.shutdown_timeout, 30_000)
})

t.test('schema mistakes name the exact path, a clear message and the line', async (t) => {
  const base = VALID.replace('port: 5434', 'port: "5434"')
  t.same(problems(t, base), ['shards[1].primary.port: expected an integer (line 12)'])
  t.same(problems(t, VALID.replace('port: 5434', 'port: 70000')), [
    'shards[1].primary.port: expected an integer from 1 to 65535 (line 12)',
  ])
  t.same(problems(t, VALID.replace('    password: app-secret', '    pasword: app-secret')), [
    'users[0].password: required (or scram_verifier) for auth scram-sha-256 (line 2)',
    'users[0].pasword: unknown key "pasword" (did you mean "password"?) (line 3)',
  ])
  t.same(problems(t, `${VALID}colour: blue\n`), [
    'colour: unknown key "colour" (allowed: version, map_version, listen, tls, server_tls, server_tls_ca, admin, control, users, ' +
      'auth_query, databases, shards, pool, sharding, routing, health, log, shutdown_timeout) (line 13)',
  ])
  t.same(problems(t, `${VALID}pool: { mode: statement }\n`), [
    'pool.mode: expected one of transaction, session (line 13)',
  ])
  t.same(problems(t, `${VALID}pool: { size: 2.5, min_idle: -1 }\n`), [
    'pool.size: expected an integer (line 13)',
    'pool.min_idle: expected an integer of at least 0 (line 13)',
  ])
  t.same(problems(t, VALID.replace('  - name: s2\n    primary: { host: 127.0.0.1, port: 5434 }\n', '  - name: s2\n')), [
    'shards[1].primary: required (line 11)',
  ])
  t.same(problems(t, VALID.replace('databases:\n  - name: app\n', 'databases: []\n')), [
    'databases: expected at least one item (line 4)',
  ])
  t.same(problems(t, VALID.replace('  - name: s1', '  - name: ""')), ['shards[0].name: expected a non-empty string (line 7)'])
  t.same(problems(t, `${VALID}listen: 6432\n`), ['listen: expected a mapping (key: value lines) (line 13)'])
  t.same(problems(t, `${VALID}routing: { volatile_functions: nextval }\n`), [
    'routing.volatile_functions: expected a list (line 13)',
  ])
  t.same(problems(t, `${VALID}version: 2\n`), ['version: expected 1 (line 13)'])
  t.same(problems(t, `${VALID}log: { log_parameters: "yes" }\n`), ['log.log_parameters: expected true or false (line 13)'])
  t.same(problems(t, 'users: []\n'), [
    'users: expected at least one item (line 1)',
    'databases: required (line 1)',
    'shards: required (line 1)',
  ])
})

t.test('cross-field rules name the path of the offending entry', async (t) => {
  t.same(problems(t, VALID.replace('name: s2', 'name: s1')), ['shards[1].name: duplicate shard name "s1" (first at shards[0].name) (line 11)'])
  t.same(problems(t, VALID.replace('port: 5434', 'port: 5433')), [
    'shards[1].primary: duplicate host:port "127.0.0.1:5433" (first at shards[0].replicas[0]) (line 12)',
  ])
  t.same(problems(t, `${VALID}sharding: { default_shard: shard2 }\n`), [
    'sharding.default_shard: no shard named "shard2" (shards: s1, s2) (line 13)',
  ])
  t.same(
    problems(
      t,
      `${VALID}sharding:
  tables:
    - { name: accounts, key: id, type: bigint }
    - { name: accounts, key: owner, type: text }
  reference_tables: [countries, accounts]
`,
    ),
    [
      'sharding.tables[1].name: duplicate sharded table "accounts" (first at sharding.tables[0].name) (line 16)',
      'sharding.reference_tables[1]: "accounts" is also a sharded table (sharding.tables[0].name) (line 17)',
    ],
  )
  t.same(problems(t, `${VALID}sharding:\n  tables:\n    - { name: accounts, key: id, type: bigint, key_sequence: accounts_id_seq }\n    - { name: notes, key: tenant, type: text, key_sequence: notes_seq }\n`), [
    'sharding.tables[1].key_sequence: only an integer or bigint key can come from a sequence: remove key_sequence, or give the key in every INSERT (line 16)',
  ])
  t.same(problems(t, `${VALID}sharding:\n  tables:\n    - { name: accounts, key: id, type: bigint, key_uuid: true }\n`), [
    'sharding.tables[0].key_uuid: only a uuid key can be a random UUID: remove key_uuid, or use key_sequence for an integer key (line 15)',
  ])
  t.same(
    problems(
      t,
      `${VALID}sharding:
  tables: [{ name: orders, key: customer_id, type: bigint }]
  reference_tables: [countries]
  made_columns:
    - { table: orderz, column: id, sequence: s }
    - { table: orders, column: customer_id, sequence: s }
    - { table: countries, column: id, sequence: s }
    - { table: countries, column: id, sequence: t }
    - { table: countries, column: code, sequence: s, uuid: true }
`,
    ),
    [
      'sharding.made_columns[0].table: "orderz" is not in sharding.tables or sharding.reference_tables (did you mean "orders"?) (line 17)',
      'sharding.made_columns[1].column: "customer_id" is the sharding key of orders: use key_sequence on the table for it (line 18)',
      'sharding.made_columns[3]: countries.id is listed twice (line 20)',
      'sharding.made_columns[4]: give either a sequence or uuid: true (where the column\'s values come from) (line 21)',
    ],
  )
  t.same(
    problems(
      t,
      `${VALID}sharding:
  tables:
    - { name: orders, key: customer_id, type: bigint }
    - { name: notes, key: tenant, type: text }
    - name: lineitems
      key: customer_id
      type: bigint
      parents:
        - { column: order_id, table: orderz, references: id }
        - { column: customer_id, table: orders, references: customer_id }
        - { column: note_id, table: notes, references: id }
        - { column: parent_id, table: lineitems, references: id }
        - { column: order_id, table: orders, references: id }
`,
    ),
    [
      'sharding.tables[2].parents[0].table: "orderz" is not in sharding.tables: a parent is a sharded table (did you mean "orders"?) (line 21)',
      'sharding.tables[2].parents[1].column: "customer_id" is this table\'s sharding key: a join on the keys needs no parent (line 22)',
      'sharding.tables[2].parents[2].table: notes\'s key is text and this table\'s is bigint: keys of different types are not placed alike (line 23)',
      'sharding.tables[2].parents[3].table: "lineitems" is this table: a row cannot be placed by another row of its own table (line 24)',
    ],
    'parents: another sharded table, of the same key family, by a column that is not the key',
  )
  const verifier = 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVka2V5:c2VydmVya2V5'
  t.same(problems(t, `${VALID}auth_query:\n  query: SELECT rolpassword FROM pg_authid WHERE rolname = current_user\n`), [
    'auth_query.query: must name the user as $1 (it is passed as the only parameter) (line 14)',
  ])
  const passThrough = parseConfig(VALID.replace('    password: app-secret', `    scram_verifier: "${verifier}"`), undefined, {}).users[0]
  t.same([passThrough.scram_verifier, passThrough.password, passThrough.server_password], [verifier, undefined, undefined], 'a scram_verifier alone: SCRAM pass-through to the servers')
  t.same(problems(t, VALID.replace('    password: app-secret', `    scram_verifier: "${verifier}"\n    server_password: x\n    auth: md5`)), [
    'users[0].password: required for auth md5 (a SCRAM verifier cannot check md5) (line 2)',
  ])
  t.equal(parseConfig(VALID.replace('    password: app-secret', '    auth: trust'), undefined, {}).users[0].auth, 'trust')
  t.same(problems(t, VALID.replace('  - name: app\nshards', '  - name: pgshard\n  - name: app\n  - name: app\nshards')), [
    'databases[0].name: "pgshard" is reserved for the admin console (line 5)',
    'databases[2].name: duplicate database name "app" (first at databases[1].name) (line 7)',
  ])
})

t.test('several mistakes at once are all reported, in file order', async (t) => {
  const text = `users:
  - name: app
    auth: md5
databases:
  - name: pgshard
shards:
  - name: s1
    primary: { host: 127.0.0.1, port: "5432", hots: x }
  - name: s1
    primary: { host: 127.0.0.1 }
pool:
  checkout_timeout: soon
sharding:
  default_shard: s9
`
  t.same(problems(t, text), [
    'users[0].password: required for auth md5 (a SCRAM verifier cannot check md5) (line 2)',
    'databases[0].name: "pgshard" is reserved for the admin console (line 5)',
    'shards[0].primary.port: expected an integer (line 8)',
    'shards[0].primary.hots: unknown key "hots" (did you mean "host"?) (line 8)',
    'shards[1].name: duplicate shard name "s1" (first at shards[0].name) (line 9)',
    'pool.checkout_timeout: expected a duration such as 500ms, 30s, 5m or an integer of milliseconds (line 12)',
    'sharding.default_shard: no shard named "s9" (shards: s1) (line 14)',
  ])
  try {
    parseConfig(text, 'test.yaml', {})
  } catch (e) {
    const err = e as ConfigError
    t.equal(err.code, 'F0000', 'a RELOAD refused for a bad file carries SQLSTATE config_file_error')
    t.equal(err.source, 'test.yaml')
    t.same(err.problems[2], { path: 'shards[0].primary.port', message: 'expected an integer', line: 8 })
  }
})

t.test('environment variables fill in secrets', async (t) => {
  // A replacer function: a replacement string would turn "$$" into "$".
  const withPassword = (value: string) => VALID.replace('password: app-secret', () => `password: "${value}"`)
  const password = (value: string, env: NodeJS.ProcessEnv) => parseConfig(withPassword(value), undefined, env).users[0].password
  t.equal(password('${APP_PW}', { APP_PW: 's3cret' }), 's3cret')
  t.equal(password('pre-${A}-${B}-post', { A: '1', B: '2' }), 'pre-1-2-post')
  t.equal(password('${APP_PW:-fallback}', {}), 'fallback')
  t.equal(password('${APP_PW:-fallback}', { APP_PW: '' }), 'fallback', 'an empty variable takes the default, as in the shell')
  t.equal(password('${APP_PW:-fallback}', { APP_PW: 'set' }), 'set')
  t.equal(password('a$${APP_PW}b', {}), 'a${APP_PW}b', '$${ is a literal ${')
  t.equal(password('cost $5', {}), 'cost $5')
  t.same(problems(t, withPassword('${PGSHARD_APP_PASSWORD}')), [
    'users[0].password: environment variable PGSHARD_APP_PASSWORD is not set (line 3)',
  ])
  t.same(problems(t, withPassword('${A}${B}'), { B: 'x' }), ['users[0].password: environment variable A is not set (line 3)'])
  t.same(problems(t, withPassword('ab${APP_PW')), [
    'users[0].password: unterminated "${" (write "$${" for a literal "${") (line 3)',
  ])
  t.same(problems(t, withPassword('${not a name}')), [
    'users[0].password: "${…}" must hold an environment variable name (letters, digits, _) (line 3)',
  ])
  t.equal(
    parseConfig(`${VALID}control: { password: "\${CTL}" }
`, undefined, { CTL: 'c' }).control.password,
    'c',
    'substitution reaches nested strings',
  )
})

t.test('durations accept milliseconds and units, and name the path when wrong', async (t) => {
  const pool = (text: string) => parseConfig(`${VALID}pool: ${text}
`, undefined, {}).pool
  t.equal(pool('{ checkout_timeout: 30s }').checkout_timeout, 30_000)
  t.equal(pool('{ checkout_timeout: 250ms }').checkout_timeout, 250)
  t.equal(pool('{ checkout_timeout: 5m }').checkout_timeout, 300_000)
  t.equal(pool('{ checkout_timeout: 2h }').checkout_timeout, 7_200_000)
  t.equal(pool('{ checkout_timeout: 1500 }').checkout_timeout, 1500)
  const message = 'expected a duration such as 500ms, 30s, 5m or an integer of milliseconds (line 13)'
  t.same(problems(t, `${VALID}pool: { checkout_timeout: abc }\n`), [`pool.checkout_timeout: ${message}`])
  t.same(problems(t, `${VALID}pool: { checkout_timeout: 1.5s }\n`), [`pool.checkout_timeout: ${message}`])
  t.same(problems(t, `${VALID}health: { interval: true }\n`), [`health.interval: ${message}`])
  t.same(problems(t, `${VALID}health: { max_lag: -5 }\n`), ['health.max_lag: expected an integer of at least 0 (line 13)'])
})

t.test('YAML syntax errors give the line and column', async (t) => {
  t.same(problems(t, 'users:\n  - name: app\n    password: "unclosed\n'), ['(yaml): Missing closing "quote (line 4, column 1)'])
  t.same(problems(t, 'users: [1, 2\ndatabases: x\n'), [
    '(yaml): Flow sequence in block collection must be sufficiently indented and end with a ] (line 2, column 1)',
  ])
  t.same(problems(t, `${VALID}users: again\n`), ['(yaml): Map keys must be unique (line 13, column 1)'])
  t.same(problems(t, 'users: *nowhere\n'), ['(yaml): Unresolved alias (the anchor must be set before the alias): nowhere'])
  t.same(problems(t, `${VALID}---\nusers: []\n`), ['(yaml): the file holds more than one YAML document (line 13, column 1)'])
  t.same(problems(t, ''), ['(top level): the file is empty'])
  t.same(problems(t, '- a\n- b\n'), ['(top level): expected a mapping (key: value lines) (line 1)'])
})

t.test('secrets never appear in error messages', async (t) => {
  const secret = 'Tr0ub4dor-s3cret'
  const cases: [string, NodeJS.ProcessEnv][] = [
    [VALID.replace('password: app-secret', `password: "${secret}`), {}],
    [VALID.replace('password: app-secret', `password: [${secret}]`), {}],
    [VALID.replace('password: app-secret', `scram_verifier: "${secret}"`), {}],
    [VALID.replace('password: app-secret', `password: "\${PW}"\n    auth: ${secret}`), { PW: 'x' }],
    [VALID.replace('port: 5434', 'port: ${PORT}'), { PORT: secret }],
    [VALID.replace('password: app-secret', `password: "${secret}\${UNSET}"`), {}],
    [VALID.replace('password: app-secret', `password: "${secret}\${bad name}"`), {}],
    [`${VALID}control: { password: ${secret}, pasword: ${secret} }\n`, {}],
    [`${VALID}control:\n  password: |${secret}\n    x\n`, {}],
    [`${VALID}control:\n  password: "\\q${secret}"\n`, {}],
  ]
  for (const [text, env] of cases) {
    const lines = problems(t, text, env)
    t.ok(lines.length > 0)
    t.notMatch(lines.join('\n'), secret, `not echoed: ${lines.join(' | ')}`)
  }
})

t.test('loadConfig reads the file and checks the TLS files it names', async (t) => {
  const dir = t.testdir({ 'server.crt': 'cert', 'server.key': 'key' })
  const good = join(dir, 'good.yaml')
  writeFileSync(good, `${VALID}tls: { cert: server.crt, key: ${join(dir, 'server.key')} }\n`)
  const config = await loadConfig(good, {})
  t.equal(config.tls?.cert, join(dir, 'server.crt'), 'a relative path is taken from the config file directory')
  t.equal(config.tls?.key, join(dir, 'server.key'))

  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, `${VALID}tls:\n  cert: missing.crt\n  key: server.key\n`)
  await t.rejects(loadConfig(bad, {}), {
    message: `tls.cert: cannot read ${join(dir, 'missing.crt')} (ENOENT) (line 14)`,
    source: bad,
  })
  await t.rejects(loadConfig(join(dir, 'absent.yaml'), {}), {
    message: `(file): cannot read ${join(dir, 'absent.yaml')} (ENOENT)`,
  })
  t.equal(parseConfig(`${VALID}tls: { cert: missing.crt, key: k }\n`, undefined, {}).tls?.cert, 'missing.crt', 'parseConfig does not touch files')

  const verify = join(dir, 'verify.yaml')
  writeFileSync(verify, `${VALID}server_tls: verify-full\nserver_tls_ca: server.crt\n`)
  t.equal((await loadConfig(verify, {})).server_tls_ca, join(dir, 'server.crt'), 'server_tls_ca is taken from the config file directory too')
  writeFileSync(verify, `${VALID}server_tls: verify-ca\nserver_tls_ca: ca.pem\n`)
  await t.rejects(loadConfig(verify, {}), { message: `server_tls_ca: cannot read ${join(dir, 'ca.pem')} (ENOENT) (line 14)` })
})

t.test('server_tls_ca with a mode that checks no certificate is a mistake', async (t) => {
  t.same(problems(t, `${VALID}server_tls: require\nserver_tls_ca: ca.pem\n`), [
    'server_tls_ca: is only used with server_tls: verify-ca or verify-full (other modes do not check certificates): set one of them, or remove server_tls_ca (line 14)',
  ])
  t.equal(parseConfig(`${VALID}server_tls: verify-full\nserver_tls_ca: ca.pem\n`, undefined, {}).server_tls_ca, 'ca.pem', 'with verify-full it is fine')
})

t.test('a periodic interval of 0 (the loop would run without pause) is refused, naming its path', async (t) => {
  t.match(problems(t, `${VALID}sharding:\n  deadlock_check_interval: 0s\n`), [/^sharding\.deadlock_check_interval: must be more than 0: it is the time between two rounds/])
  t.match(problems(t, `${VALID}health:\n  resolve_prepared_interval: 0\n`), [/^health\.resolve_prepared_interval: must be more than 0/])
  t.equal(parseConfig(`${VALID}health:\n  resolve_prepared_interval: 30s\n`, 'test.yaml', {}).health.resolve_prepared_interval, 30_000)
})
