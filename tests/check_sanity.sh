#!/usr/bin/env bash
# ansible-test sanity on the collection, in its own Python 3.11 venvs (--venv).
#
# ansible-test needs the collection at .../ansible_collections/<namespace>/<name>, so the
# repository's files (tracked, plus new files that are not ignored; exactly what git would
# commit) are copied into such a tree in a temporary directory; the repository is not touched.
#
# Offline bootstrap: --venv starts each venv by downloading a get-pip script from a host that
# cannot be reached here. ansible-test first looks in its cache for that script, so a stand-in
# is put there (once): it bootstraps pip from the interpreter's own ensurepip, then runs
# `pip install` with the arguments ansible-test gave it, against the package index pip is
# configured for. ansible-test keeps its venvs in ~/.ansible/test/venv, keyed by the requirements,
# so only the first run builds them.
#
#   usage: tests/check_sanity.sh [ansible-test sanity arguments, e.g. --test pylint]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python_version=3.11

ansible_test=$(command -v ansible-test || true)
[ -n "$ansible_test" ] || ansible_test=$root/.venv/bin/ansible-test
[ -x "$ansible_test" ] || { echo "ansible-test not found (run scripts/setup.sh)" >&2; exit 1; }

# The pip version ansible-test bootstraps (its cache file is named after it, e.g. get_pip_24_2.py).
pip_version=$("$(dirname "$ansible_test")/python" - <<'PY' 2>/dev/null || true
import os, re, ansible_test
src = open(os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')).read()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
pip_version=${pip_version:-24.2}
cache_dir=$HOME/.ansible/test/cache
get_pip=$cache_dir/get_pip_${pip_version//./_}.py
marker='# keybuzz.redis_ha: offline stand-in for get-pip'
if [ ! -s "$get_pip" ]; then
  mkdir -p "$cache_dir"
  ca_bundle=/etc/ssl/certs/ca-certificates.crt
  cat > "$get_pip.tmp" <<PY
$marker (tests/check_sanity.sh)
# ansible-test runs this as "get-pip.py [pip install arguments] --no-setuptools --no-wheel".
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
cert = ['--cert', '$ca_bundle'] if os.path.exists('$ca_bundle') else []
subprocess.check_call([sys.executable, '-m', 'pip', 'install', *cert, *args])
PY
  mv "$get_pip.tmp" "$get_pip"
  echo "ansible-test pip bootstrap: offline stand-in written to $get_pip"
fi

namespace=$(sed -n 's/^namespace:[[:space:]]*//p' galaxy.yml)
name=$(sed -n 's/^name:[[:space:]]*//p' galaxy.yml)
# A fixed work tree, so ansible-test's own delegation venv (tests/output/.tmp/delegation) survives
# between runs; one per ansible-core version (tests/check_ansible_versions.sh runs several). It must
# lie outside any git work tree: inside one, ansible-test would list the content with that
# repository's `git ls-files` and find nothing.
core_version=$("$(dirname "$ansible_test")/python" -c 'import ansible.release as r; print(r.__version__)')
work=${XDG_CACHE_HOME:-$HOME/.cache}/keybuzz-redis_ha-sanity/$core_version
collection=$work/ansible_collections/$namespace/$name
mkdir -p "$work"
exec 9>"$work/.lock"
flock 9
keep=$work/.delegation
rm -rf "$keep"
if [ -d "$collection/tests/output/.tmp/delegation" ]; then
  mv "$collection/tests/output/.tmp/delegation" "$keep"
fi
rm -rf "$collection"
mkdir -p "$collection/tests/output/.tmp"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar -c --null -T - -f - | tar -x -C "$collection" -f -
if [ -d "$keep" ]; then
  mv "$keep" "$collection/tests/output/.tmp/delegation"
fi

# KB_SANITY_TARGETS: what is tested (default: the plugins and meta/runtime.yml; set it empty for the whole collection).
targets=${KB_SANITY_TARGETS-plugins/ meta/runtime.yml}
log=$work/last-run.log
cd "$collection"
echo "ansible-test sanity ($("$ansible_test" --version)) on $namespace.$name ${targets:-(everything)}, Python $python_version venvs"
# pip's progress lines go only to the log; everything ansible-test says is shown.
set +e
# shellcheck disable=SC2086 # targets is a space-separated list
"$ansible_test" sanity --venv --python "$python_version" --color no "$@" $targets 2>&1 \
  | tee "$log" \
  | grep --line-buffered -v -E '^(WARNING: Location .* is ignored|Collecting |Processing |Looking in |Installing collected|Successfully (un)?installed|Using cached pip|Downloading pip| +(Downloading|━|Attempting|Found existing|Uninstalling|Successfully))'
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  echo "ansible-test sanity: FAILED (exit $rc; full log: $log)" >&2
  exit "$rc"
fi
echo "ansible-test sanity: OK"
