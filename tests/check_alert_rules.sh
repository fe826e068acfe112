#!/usr/bin/env bash
# The shipped Prometheus alert rules are valid and fire on the cases they name:
#   promtool check rules playbooks/files/prometheus/*.rules.yml
#   promtool test rules tests/prometheus/*.test.yml   (series that reproduce each case, and quiet ones)
# promtool comes from Debian's prometheus package, unpacked by scripts/prometheus-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

promtool=$(scripts/prometheus-tools.sh)/usr/bin/promtool
echo "$("$promtool" --version 2>&1 | head -n 1)"
"$promtool" check rules playbooks/files/prometheus/*.rules.yml
cd tests/prometheus
"$promtool" test rules ./*.test.yml
echo "alert rules: OK"
