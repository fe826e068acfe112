#!/usr/bin/env bash
# The two entry points of the README:
#   scripts/run.sh deploy   set up this machine and deploy the full stack onto the local lab
#   scripts/run.sh test     set up this machine and run every test (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

# step NAME: print a header and note the time; the test command ends with a table of step -> seconds.
STEP_NAMES=() STEP_STARTS=() SIDE_NAMES=() SIDE_SECONDS=()
step() {
  printf '\n=== %s (%s) ===\n' "$*" "$(date +%T)"
  STEP_NAMES+=("$*") STEP_STARTS+=("$(date +%s)")
}
step_table() {
  local end i next total
  end=$(date +%s)
  printf '\n%-92s %7s\n' "step" "seconds"
  for i in "${!STEP_NAMES[@]}"; do
    next=${STEP_STARTS[$((i + 1))]:-$end}
    printf '%-92.92s %7d\n' "${STEP_NAMES[$i]}" "$((next - STEP_STARTS[i]))"
  done
  for i in "${!SIDE_NAMES[@]}"; do
    printf '%-92.92s %7s\n' "  beside them: ${SIDE_NAMES[$i]}" "${SIDE_SECONDS[$i]}"
  done
  total=$((end - ${STEP_STARTS[0]:-$end}))
  printf '%-92s %7d\n' "total" "$total"
}

# side NAME LOG CMD...: run CMD in the background, its output into LOG; side_wait collects it.
side() {
  local name=$1 log=$2
  shift 2
  SIDE_NAME=$name SIDE_LOG=$log SIDE_START=$(date +%s)
  "$@" > "$log" 2>&1 &
  SIDE_PID=$!
}
# kill_tree PID: PID and every process under it (a background step left running by a failure).
kill_tree() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
on_exit() {
  step_table
  if [ -n "${SIDE_PID:-}" ] && kill -0 "$SIDE_PID" 2>/dev/null; then
    echo "stopping the background step: $SIDE_NAME"
    kill_tree "$SIDE_PID"
  fi
}
side_wait() {
  local rc=0 seconds name
  wait "$SIDE_PID" || rc=$?
  SIDE_PID=
  # The background lane's own steps (lane_step), then its whole time.
  while IFS=$'\t' read -r seconds name; do
    SIDE_NAMES+=("$name") SIDE_SECONDS+=("$seconds")
  done < "${LANE_TIMES:-/dev/null}"
  SIDE_NAMES+=("$SIDE_NAME (whole lane)") SIDE_SECONDS+=("$(($(date +%s) - SIDE_START))")
  if [ "$rc" -ne 0 ]; then
    printf '\n=== FAILED (exit %s): %s; the end of its output (all of it: %s) ===\n' "$rc" "$SIDE_NAME" "$SIDE_LOG"
    tail -n 400 "$SIDE_LOG"
    exit "$rc"
  fi
  printf '\n=== %s: passed (%s s, output in %s) ===\n' "$SIDE_NAME" "${SIDE_SECONDS[-1]}" "$SIDE_LOG"
}

# lane_step NAME CMD...: one step of a background lane, timed into LANE_TIMES; a failure ends the lane.
lane_step() {
  local name=$1 start rc=0
  shift
  start=$(date +%s)
  printf '\n=== %s (%s) ===\n' "$name" "$(date +%T)"
  "$@" || rc=$?
  printf '%s\t%s\n' "$(($(date +%s) - start))" "$name" >> "$LANE_TIMES"
  if [ "$rc" -ne 0 ]; then
    printf '\n=== FAILED (exit %s): %s ===\n' "$rc" "$name"
    return "$rc"
  fi
}
syntax_checks() {
  local playbook
  for playbook in playbooks/*.yml; do
    ansible-playbook --syntax-check -i inventories/lab/hosts.yml "$playbook" || return
  done
}
lab_images() {
  local suite
  for suite in "$@"; do scripts/lab-image.sh "$suite" || return; done
}
# The checks that need no lab and no timing: they run beside the unit tests (2 cores, one each).
static_checks() {
  lane_step "Lab images of the scenarios' Debian releases ($*)" lab_images "$@" &&
  lane_step "Lint (ansible-lint, production profile)" ansible-lint --profile production &&
  lane_step "Playbooks pass --syntax-check" syntax_checks &&
  lane_step "Role defaults match meta/argument_specs.yml" python tests/check_argument_specs.py &&
  lane_step "Collection builds, installs, and its modules render with ansible-doc" tests/check_collection_build.sh &&
  lane_step "ansible-test sanity on the plugins" tests/check_sanity.sh &&
  lane_step "Changelog fragments: lint and trial release" tests/check_changelog.sh &&
  lane_step "Alert rules: promtool check rules and test rules" tests/check_alert_rules.sh &&
  lane_step "Older ansible-core (requires_ansible up to the main venv's): plugin unit tests, syntax, sanity" \
    tests/check_ansible_versions.sh
}

deploy() {
  scripts/setup.sh
  step "Deploying onto the local lab (molecule converge -s default)"
  molecule converge -s default
  # Molecule keeps the scenario's inventory (and the lab credentials beside it) in its ephemeral dir.
  creds=$(ls -t "$HOME"/.ansible/tmp/molecule.*.default/credentials/redis.env 2>/dev/null | head -n 1)
  cat <<TXT

The lab is up: redis-01..03 (172.29.40.123-125), haproxy-01/02 (172.29.40.11/12).
Credentials (0600): $creds
Connect (from this machine):
  set -a; . $creds; set +a
  REDISCLI_AUTH=\$REDIS_PASSWORD redis-cli -h 172.29.40.123 -p 6379 ping
Validate:  molecule verify -s default        Tear down:  molecule destroy -s default
TXT
}

# The Molecule scenarios of the test command, each "<scenario>:<Debian suite of its lab image>":
# default (plaintext, the whole lab suite) on Debian 12, tls (TLS everywhere, what TLS changes) on
# Debian 13, so that each supported release and each mode is converged, re-converged and verified
# once (the unit tests run the TLS configurations against Debian 12's own redis-server and haproxy).
KB_SCENARIOS=${KB_SCENARIOS:-default:bookworm tls:trixie}

run_tests() {
  trap on_exit EXIT
  step "Set up this machine (apt packages, Docker engine, venv, lab image)"
  scripts/setup.sh
  # Two lanes on the 2 cores: the unit and preflight tests here (real processes, timing-sensitive:
  # they run alone in their lane), the lab images and the static checks beside them.
  mkdir -p .cache
  LANE_TIMES=.cache/static-checks.times
  : > "$LANE_TIMES"
  suites=$(for s in $KB_SCENARIOS; do echo "${s#*:}"; done | sort -u | tr '\n' ' ')
  # shellcheck disable=SC2086 # suites is a space-separated list
  side "Lab images and static checks (lint, syntax, argument specs, build, sanity, changelog, alert rules, ansible-core versions)" \
    .cache/static-checks.log static_checks $suites
  step "Unit tests (real redis-server / redis-sentinel / haproxy on loopback) and preflight tests"
  pytest -q tests/unit tests/preflight
  step "Waiting for the lab images and static checks (beside the unit tests)"
  side_wait
  for entry in $KB_SCENARIOS; do
    scenario=${entry%%:*} suite=${entry#*:}
    step "Molecule scenario $scenario on Debian $suite (create, converge, idempotence, lab suite, verify, destroy)"
    KB_LAB_SUITE=$suite molecule test -s "$scenario"
  done
  step "All tests passed"
}

case "${1:-}" in
  deploy) deploy ;;
  test) run_tests ;;
  *) echo "usage: $0 deploy|test" >&2; exit 2 ;;
esac
