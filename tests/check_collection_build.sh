#!/usr/bin/env bash
# The collection builds into a tarball that installs, and every module renders with ansible-doc.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ansible-galaxy collection build --output-path "$work" . >/dev/null
tarball=$(ls "$work"/keybuzz-redis_ha-*.tar.gz)
ansible-galaxy collection install --offline --no-deps --force -p "$work/collections" "$tarball" >/dev/null
for module in $(ls plugins/modules/*.py | xargs -n1 basename | sed 's/\.py$//'); do
  out=$(ANSIBLE_COLLECTIONS_PATH="$work/collections" ansible-doc "keybuzz.redis_ha.$module")
  grep -q "EXAMPLES" <<<"$out" || { echo "ansible-doc $module: no EXAMPLES" >&2; exit 1; }
  grep -q "RETURN VALUES" <<<"$out" || { echo "ansible-doc $module: no RETURN VALUES" >&2; exit 1; }
  echo "ansible-doc keybuzz.redis_ha.$module: OK"
done
echo "collection build/install: OK ($(basename "$tarball"), $(du -h "$tarball" | cut -f1))"
