#!/usr/bin/env bash
# The shipped Prometheus alert rules are valid and fire on the cases they name:
#   promtool check rules playbooks/files/prometheus/*.rules.yml
#   promtool test rules tests/prometheus/*.test.yml   (series that reproduce each case, and quiet ones)
# promtool comes from Debian's prometheus package, unpacked into .cache/promtool (never installed:
# no service, no postinst); a promtool on PATH is used when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

promtool=$(command -v promtool || true)
if [ -z "$promtool" ]; then
  dir=$root/.cache/promtool
  promtool=$dir/usr/bin/promtool
  if [ ! -x "$promtool" ]; then
    rm -rf "$dir" && mkdir -p "$dir/deb"
    (cd "$dir/deb" && apt-get download prometheus 2> >(grep -v 'Download is performed unsandboxed' >&2))
    dpkg-deb -x "$dir"/deb/prometheus_*.deb "$dir"
    rm -rf "$dir/deb"
  fi
fi
echo "$("$promtool" --version 2>&1 | head -n 1)"
"$promtool" check rules playbooks/files/prometheus/*.rules.yml
cd tests/prometheus
"$promtool" test rules ./*.test.yml
echo "alert rules: OK"
