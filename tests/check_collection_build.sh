#!/usr/bin/env bash
# The collection builds into a tarball that installs, and every module renders with ansible-doc.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ansible-galaxy collection build --output-path "$work" . >/dev/null
tarball=$(ls "$work"/keybuzz-redis_ha-*.tar.gz)
# Only what users run is shipped: anything else in the tarball (the lab, tests, benchmarks, scripts,
# inventories, caches) is a build_ignore missing from galaxy.yml.
shipped='^(MANIFEST\.json|FILES\.json|README\.md|CHANGELOG\.rst|COPYING|(roles|plugins|playbooks|meta|docs|changelogs)(/.*)?)$'
unexpected=$(tar -tzf "$tarball" | sed 's|/$||' | grep -Ev "$shipped" || true)
if [ -n "$unexpected" ]; then
  echo "the tarball holds files users do not run (add them to build_ignore in galaxy.yml):" >&2
  echo "$unexpected" >&2
  exit 1
fi
grep -qx 'COPYING' < <(tar -tzf "$tarball") || { echo "the tarball has no COPYING (licence)" >&2; exit 1; }
ansible-galaxy collection install --offline --no-deps --force -p "$work/collections" "$tarball" >/dev/null
for module in $(ls plugins/modules/*.py | xargs -n1 basename | sed 's/\.py$//'); do
  out=$(ANSIBLE_COLLECTIONS_PATH="$work/collections" ansible-doc "keybuzz.redis_ha.$module")
  grep -q "EXAMPLES" <<<"$out" || { echo "ansible-doc $module: no EXAMPLES" >&2; exit 1; }
  grep -q "RETURN VALUES" <<<"$out" || { echo "ansible-doc $module: no RETURN VALUES" >&2; exit 1; }
  echo "ansible-doc keybuzz.redis_ha.$module: OK"
done
echo "collection build/install: OK ($(basename "$tarball"), $(du -h "$tarball" | cut -f1))"
