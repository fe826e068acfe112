#!/usr/bin/env bash
# Set up this machine (Debian 12, root) for the lab and the tests. Idempotent and quick when
# everything is already there: apt packages, the Docker engine (started if not running),
# a pinned Python venv (.venv, a link to one kept per requirements under ~/.cache), the collection
# linked for Ansible, and the lab image.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

log() { printf '\n==> %s\n' "$*"; }

apt_packages=(docker.io debootstrap python3-venv iproute2 iptables redis-server redis-sentinel redis-tools haproxy)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "Installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The host's own redis/haproxy services are not wanted (tests start their own processes).
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for svc in redis-server redis-sentinel haproxy; do
  if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
    systemctl disable --now -q "$svc" || true
  fi
done

if ! docker info >/dev/null 2>&1; then
  log "Starting the Docker engine"
  dockerd_bin=$(command -v dockerd || echo /usr/sbin/dockerd)
  nohup "$dockerd_bin" >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -n 20 /var/log/dockerd.log; echo "dockerd did not start" >&2; exit 1; }
fi

# The venv is kept outside the clone, one per content of requirements.txt + constraints.txt, and
# .venv links to it: a fresh clone (CI) on a machine that already built it does not build it again.
want=$(cat requirements.txt constraints.txt | sha256sum | cut -c1-16)
venv=${KB_VENV_CACHE:-${HOME:-/root}/.cache/keybuzz-redis_ha}/venv-$want
if [ ! -f "$venv/.kb-complete" ]; then
  log "Creating the Python venv ($venv) from requirements.txt + constraints.txt"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null
  "$venv/bin/pip" install -q -r requirements.txt -c constraints.txt
  touch "$venv/.kb-complete"
fi
if [ "$(readlink .venv 2>/dev/null)" != "$venv" ]; then
  rm -rf .venv
  ln -s "$venv" .venv
fi

# Ansible finds this repository as the collection keybuzz.redis_ha through ansible.cfg.
mkdir -p .cache/collections/ansible_collections/keybuzz
ln -sfn "$root" .cache/collections/ansible_collections/keybuzz/redis_ha

log "Lab image"
scripts/lab-image.sh "${KB_LAB_SUITE:-bookworm}"
