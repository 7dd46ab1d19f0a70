#!/usr/bin/env bash
# Runs the tap suite (arguments go to tap), then the leak check, and ends with one line: "N passed, N failed".
# A leak counts as one more failure; tap's own non-zero exit (a crashed file, …) fails the run too.
set -uo pipefail
cd "$(dirname "$0")/.."

# Every temp dir of this run lives in one run dir, so the leak check sees only this run's topologies and not
# those of anyone else testing on the machine. Prefer tmpfs: Postgres starts several times faster there.
parent=/tmp
shm_free_kb=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] && [ "${shm_free_kb:-0}" -ge 2097152 ] && [ -w /dev/shm ]; then
  parent=/dev/shm
fi
run_dir=$(mktemp -d "$parent/pgshard-run-XXXXXX")
chmod 755 "$run_dir" # the servers run as the postgres OS user and must reach their dirs inside
output="$run_dir/tap-output.txt"

# tap writes to the file, shown as it grows until tap exits: a process a failed test leaves behind that still
# holds tap's output cannot keep the run from ending, as it would hold a pipe to tee open.
TMPDIR="$run_dir" node_modules/.bin/tap "$@" >"$output" 2>&1 &
tap_pid=$!
tail -n +1 -f --pid="$tap_pid" "$output"
wait "$tap_pid"
tap_status=$?

leaks=0
TMPDIR="$run_dir" bash scripts/leak-check.sh "$run_dir" || leaks=1

summary=$(grep -E '^# \{ total: [0-9]+' "$output" | tail -n 1)
passed=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
passed=${passed:-0}
failed=$((${failed:-0} + leaks))
if [ "$tap_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "tap exited with status $tap_status without a failing test (no summary, or a coverage gate): counted as a failure"
  failed=1
fi
rm -rf "$run_dir"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
