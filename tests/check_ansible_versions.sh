#!/usr/bin/env bash
# Every ansible-core minor version that meta/runtime.yml's requires_ansible admits is tested.
#
# The main venv (requirements.txt) carries the newest ansible-core, and the whole test command runs
# on it. For each older minor version there is a lock file, tests/ansible-core/constraints-<minor>.txt
# (ansible-core, pytest, redis and everything they pull in, exact versions); for each one this
# script builds a controller venv on this machine's Python (.cache/ansible-core-<minor>, rebuilt
# when its lock file changes) and runs, with that ansible-core:
#   1. the unit tests of the plugins (tests/unit/plugins: modules, module_utils, filters; real
#      redis-server / redis-sentinel on loopback),
#   2. `ansible-playbook --syntax-check` of every playbook,
#   3. `ansible-test sanity` on the plugins (tests/check_sanity.sh).
# It fails first if a minor version between requires_ansible and the main venv's has no lock file.
#
#   usage: tests/check_ansible_versions.sh [minor ...]   (default: every lock file)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
main_bin=$root/.venv/bin
python=${KB_PYTHON:-python3}

# The versions claimed and the versions tested.
claimed=$(sed -n 's/^requires_ansible:[[:space:]]*"\{0,1\}>=\([0-9]*\.[0-9]*\).*/\1/p' meta/runtime.yml)
newest=$("$main_bin/python" -c 'import ansible.release as r; print(".".join(r.__version__.split(".")[:2]))')
[ -n "$claimed" ] || { echo "meta/runtime.yml: no requires_ansible \">=X.Y\" found" >&2; exit 1; }
missing=()
for ((minor = ${claimed#*.}; minor < ${newest#*.}; minor++)); do
  [ -f "tests/ansible-core/constraints-${claimed%%.*}.$minor.txt" ] || missing+=("${claimed%%.*}.$minor")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "requires_ansible is >=$claimed but ansible-core ${missing[*]} has no lock file in tests/ansible-core/:" \
    "add constraints-<minor>.txt (pip freeze of ansible-core, pytest and redis) or raise requires_ansible" >&2
  exit 1
fi

if [ "$#" -gt 0 ]; then
  versions=("$@")
else
  versions=()
  for lock in tests/ansible-core/constraints-*.txt; do
    lock=${lock##*/constraints-}
    versions+=("${lock%.txt}")
  done
fi
echo "requires_ansible >=$claimed; the main venv runs $newest; here: ${versions[*]}"

# The collection TLS needs (community.crypto) come from the main venv's
# `ansible` package; the collection itself from .cache/collections (scripts/setup.sh links it).
collections=$root/.cache/collections:$(echo "$main_bin"/../lib/python3*/site-packages)

for minor in "${versions[@]}"; do
  lock=tests/ansible-core/constraints-$minor.txt
  [ -f "$lock" ] || { echo "no lock file $lock" >&2; exit 1; }
  venv=$root/.cache/ansible-core-$minor
  stamp=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ "$(cat "$venv/.lock-sha256" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --no-deps -r "$lock" 2> >(grep -v '^WARNING: Location' >&2)
    echo "$stamp" > "$venv/.lock-sha256"
  fi
  version=$("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)')
  echo "--- ansible-core $version (Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'))"

  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit/plugins

  for playbook in playbooks/*.yml; do
    ANSIBLE_COLLECTIONS_PATH=$collections ANSIBLE_CONFIG=$root/ansible.cfg \
      "$venv/bin/ansible-playbook" --syntax-check -i inventories/lab/hosts.yml "$playbook" > /dev/null \
      || { echo "ansible-core $version: syntax check of $playbook failed" >&2; exit 1; }
  done
  echo "ansible-core $version: syntax check of every playbook OK"

  PATH=$venv/bin:$PATH tests/check_sanity.sh
done
echo "ansible-core ${versions[*]}: plugin unit tests, playbook syntax and sanity OK"
