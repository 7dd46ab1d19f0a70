#!/usr/bin/env bash
# Fails (exit 1) if test topologies were left behind under the given roots (default: $TMPDIR or /tmp, and
# /dev/shm): pgshard-topo-* directories, processes working in them (postmasters, backends, pg_ctl, …, found by
# their working directory or command line) and orphan reapers (found by their PGSHARD_DIR environment).
# Waits a few seconds first, since a reaper may still be cleaning up after a killed test. Cleans up what it
# reports, so that one leak does not pile onto the next run.
set -uo pipefail

roots=("$@")
[ ${#roots[@]} -gt 0 ] || roots=("${TMPDIR:-/tmp}" /dev/shm)
prefixes=()
for root in "${roots[@]}"; do prefixes+=("${root%/}/pgshard-topo-"); done

under_prefix() {
  local path=$1 prefix
  for prefix in "${prefixes[@]}"; do [[ $path == "$prefix"* ]] && return 0; done
  return 1
}

# Each pattern ends in "[-]": a grep whose own command line carries the pattern must not match itself.
patterns=()
for prefix in "${prefixes[@]}"; do patterns+=("$(printf '%s' "${prefix%-}" | sed 's/[].[\\*^$]/\\&/g')[-]"); done

leaked_pids() {
  {
    find /proc/[0-9]*/cwd -maxdepth 0 -printf '%h %l\n' 2>/dev/null | while read -r proc target; do
      under_prefix "$target" && echo "${proc#/proc/}"
    done
    for pattern in "${patterns[@]}"; do
      grep -lsaE -- "$pattern" /proc/[0-9]*/cmdline | cut -d/ -f3
      grep -lsaE -- "PGSHARD_DIR=$pattern" /proc/[0-9]*/environ | cut -d/ -f3
    done
  } | grep -vx -e "$$" -e "$BASHPID" | sort -un
}

leaked_dirs() {
  local prefix dir
  for prefix in "${prefixes[@]}"; do
    for dir in "$prefix"*; do [ -e "$dir" ] && echo "$dir"; done
  done
}

for _ in $(seq 1 20); do
  [ -z "$(leaked_pids)$(leaked_dirs)" ] && exit 0
  sleep 0.5
done

pids=$(leaked_pids)
dirs=$(leaked_dirs)
echo "leak-check: test topologies were left behind:"
for pid in $pids; do echo "  process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"; done
for dir in $dirs; do echo "  directory $dir"; done
for pid in $pids; do kill -CONT "$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null; done
for dir in $dirs; do rm -rf "$dir"; done
exit 1
