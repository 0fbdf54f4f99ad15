# Shared by the device scripts (cuda-check.sh, sampler-check.sh), sourced: `step`, which runs one step of
# a script under `timeout` within the script's overall deadline and records its outcome.
# The sourcing script sets DEADLINE (epoch seconds), TOTAL_TIMEOUT and SUMMARY (a file) first; FAILED
# becomes 1 when a step fails, times out or is skipped.
FAILED=0
# step NAME TIMEOUT COMMAND...: runs the command under `timeout`, prints and records rc and seconds.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$(( DEADLINE - $(date +%s) - 5 ))
  if (( left < 20 )); then
    echo
    echo "=== $name: SKIPPED (${left} s left of TOTAL_TIMEOUT=${TOTAL_TIMEOUT})"
    echo "$name rc=- seconds=0 SKIPPED (no time left)" >>"$SUMMARY"
    FAILED=1
    return 0
  fi
  (( limit > left )) && limit=$left
  echo
  echo "=== $name ($(date -u +%H:%M:%S) UTC, limit ${limit} s): $*"
  local t0 rc
  t0=$(date +%s.%N)
  timeout -k 10 "$limit" "$@"
  rc=$?
  local secs
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  local what=ok
  if [[ $rc == 124 || $rc == 137 ]]; then
    what="TIMEOUT after ${limit} s"
  elif [[ $rc != 0 ]]; then
    what="FAILED (rc $rc)"
  fi
  [[ $rc == 0 ]] || FAILED=1
  echo "=== $name: $what in ${secs} s"
  echo "$name rc=$rc seconds=$secs $what" >>"$SUMMARY"
  return 0
}
