#!/usr/bin/env bash
# The two entry points of the README:
#   scripts/run.sh deploy   set up this machine and deploy the full stack onto the local lab
#   scripts/run.sh test     set up this machine and run every test (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

# step NAME: print a header and note the time; the test command ends with a table of step -> seconds.
STEP_NAMES=() STEP_STARTS=()
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
  total=$((end - ${STEP_STARTS[0]:-$end}))
  printf '%-92s %7d\n' "total" "$total"
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

run_tests() {
  trap step_table EXIT
  step "Set up this machine (apt packages, Docker engine, venv, lab image)"
  scripts/setup.sh
  # The Debian 13 lab image (debootstrap, a few minutes) is built while the first steps run.
  mkdir -p .cache
  scripts/lab-image.sh trixie > .cache/lab-image-trixie.log 2>&1 &
  trixie_image=$!
  step "Unit tests (real redis-server / redis-sentinel / haproxy on loopback) and preflight tests"
  pytest -q tests/unit tests/preflight
  step "Lint (ansible-lint, production profile)"
  ansible-lint --profile production
  step "Playbooks pass --syntax-check"
  for playbook in playbooks/*.yml; do
    ansible-playbook --syntax-check -i inventories/lab/hosts.yml "$playbook"
  done
  step "Role defaults match meta/argument_specs.yml"
  python tests/check_argument_specs.py
  step "Collection builds, installs, and its modules render with ansible-doc"
  tests/check_collection_build.sh
  step "ansible-test sanity on the plugins"
  tests/check_sanity.sh
  step "Changelog fragments: lint and trial release"
  tests/check_changelog.sh
  step "Molecule scenarios"
  for scenario in ${KB_SCENARIOS:-default tls}; do
    step "Molecule scenario $scenario (create, converge, idempotence, lab suite, verify, destroy)"
    molecule test -s "$scenario"
  done
  step "Debian 13 (trixie): converge, idempotence and verify of the default scenario"
  wait "$trixie_image" || { cat .cache/lab-image-trixie.log; exit 1; }
  for action in destroy create converge idempotence verify destroy; do
    KB_LAB_SUITE=trixie molecule "$action" -s default
  done
  step "All tests passed"
}

case "${1:-}" in
  deploy) deploy ;;
  test) run_tests ;;
  *) echo "usage: $0 deploy|test" >&2; exit 2 ;;
esac
