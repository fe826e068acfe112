#!/usr/bin/env bash
# Prints the directory holding promtool and prometheus (usr/bin/ below it): Debian's prometheus
# package unpacked into .cache/prometheus-tools, never installed (no service, no postinst). Used by
# tests/check_alert_rules.sh and by the lab test that evaluates the alert rules on scraped data.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$PWD/.cache/prometheus-tools
mkdir -p .cache
exec 9>.cache/prometheus-tools.lock
flock 9  # two runs at once (the static checks and a lab test) unpack it once
if [ ! -x "$dir/usr/bin/promtool" ] || [ ! -x "$dir/usr/bin/prometheus" ]; then
  rm -rf "$dir" && mkdir -p "$dir/deb"
  download() { (cd "$dir/deb" && apt-get download prometheus 2> >(grep -v 'Download is performed unsandboxed' >&2)) >&2; }
  # Without package lists (a fresh image) apt knows no prometheus package: read them once, then retry.
  download || { apt-get update -qq >&2 && download; }
  dpkg-deb -x "$dir"/deb/prometheus_*.deb "$dir"
  rm -rf "$dir/deb"
fi
echo "$dir"
