#!/bin/sh
# Installs what `npm start` and `npm run bench` (with --tests, `npm test`) need on a fresh Debian machine,
# and builds dist/.
# Idempotent; prints nothing when there is nothing to do.
set -eu
cd "$(dirname "$0")/.."

say() { echo "ensure-deps: $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# npm packages. npm keeps its own copy of the lock in node_modules/.package-lock.json after every install,
# so "older than package-lock.json" means the lock changed since. Run under `npm test --silent` npm would pass
# loglevel=silent down to us and hide install errors: ask for warnings explicitly.
installed_lock=node_modules/.package-lock.json
if [ ! -d node_modules ] || [ ! -f "$installed_lock" ] || { [ -f package-lock.json ] && [ package-lock.json -nt "$installed_lock" ]; }; then
  if [ -f package-lock.json ]; then
    say "installing npm packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=warn
  else
    say "installing npm packages (npm install)"
    npm install --no-audit --no-fund --loglevel=warn
  fi
fi

# Debian packages: the PostgreSQL server (the local topology runs real servers); with --tests also the drivers
# the tests run: psycopg 3 and asyncpg (for /usr/bin/python3) and pgjdbc with a JDK (a single-file Java program).
missing=""
has_postgres=no
for initdb in /usr/lib/postgresql/*/bin/initdb; do [ -x "$initdb" ] && has_postgres=yes; done
command -v initdb >/dev/null 2>&1 && has_postgres=yes
[ "$has_postgres" = yes ] || missing="postgresql postgresql-contrib"
if [ "${1:-}" = --tests ]; then
  /usr/bin/python3 -c 'import psycopg' >/dev/null 2>&1 || missing="$missing python3-psycopg"
  /usr/bin/python3 -c 'import asyncpg' >/dev/null 2>&1 || missing="$missing python3-asyncpg"
  [ -f /usr/share/java/postgresql.jar ] || missing="$missing libpostgresql-jdbc-java"
  command -v javac >/dev/null 2>&1 || missing="$missing default-jdk-headless"
fi
if [ -n "$missing" ]; then
  say "installing Debian packages:$(printf ' %s' $missing)"
  # Keep the packaged cluster from starting as a service: the tests start their own servers.
  made_policy=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
    made_policy=yes
  fi
  status=0
  { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; } || status=$?
  [ "$made_policy" = no ] || as_root rm -f /usr/sbin/policy-rc.d
  [ "$status" = 0 ] || { say "apt-get failed (exit $status)"; exit "$status"; }
fi

# dist/ for bin/pgshard.js: rebuilt when a source, a declaration or a tsconfig changed since the last build.
# A type error is reported but does not stop the tests (they run the TypeScript sources through ts-node).
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src types tsconfig.json tsconfig.build.json package.json -newer "$stamp" -print 2>/dev/null | head -n 1)" ]; then
  say "building dist/ (tsc -p tsconfig.build.json)"
  if node_modules/.bin/tsc -p tsconfig.build.json; then
    touch "$stamp"
  else
    say "tsc reported errors (above); dist/ was emitted anyway and will be rebuilt next time"
  fi
fi
