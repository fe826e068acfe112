#!/usr/bin/env bash
# Build the lab image: Debian with systemd and python3, from the host's configured apt mirror
# (no registry), with the roles' packages downloaded into apt's cache but not installed: every
# converge still installs them with apt (the roles' install path is what the lab tests), without
# fetching them again in each fresh container. Skipped when the tag exists at this build's version.
#   usage: scripts/lab-image.sh [suite]   (suite: bookworm (default) or trixie; or KB_LAB_SUITE)
# Both suites build on a Debian 12 host: its debootstrap knows trixie and its
# debian-archive-keyring (2023.3+deb12u2) holds the trixie signing keys.
set -euo pipefail
suite=${1:-${KB_LAB_SUITE:-bookworm}}
case "$suite" in
  bookworm|trixie) ;;
  *) echo "lab image: unsupported suite '$suite' (use bookworm or trixie)" >&2; exit 2 ;;
esac
tag="keybuzz/lab-debian:${suite}"
# Raise when what goes into the image changes: an older image is then rebuilt.
version=2
# The packages the roles install (redis_node, redis_sentinel, haproxy_redis, redis_exporter,
# tls_certificates defaults), with what apt would pull in for them.
packages="redis-server redis-sentinel redis-tools python3-redis haproxy prometheus-redis-exporter python3-cryptography"

have=$(docker image inspect -f '{{ index .Config.Labels "keybuzz.lab-image.version" }}' "$tag" 2>/dev/null || true)
if [ "$have" = "$version" ]; then
  echo "lab image $tag present"
  exit 0
fi

mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null \
  | grep -v -- '-security' | head -n 1)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

if [ ! -e "/usr/share/debootstrap/scripts/$suite" ]; then
  echo "lab image: this debootstrap does not know '$suite' (apt-get install debootstrap from the host's stable-updates)" >&2
  exit 1
fi

rootfs=$(mktemp -d /var/tmp/kb-lab-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
log=/var/tmp/kb-lab-debootstrap-$suite.log
echo "building $tag from $mirror (debootstrap, 1-5 minutes depending on the mirror)"
if ! debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,python3,iproute2,procps,ca-certificates \
    "$suite" "$rootfs" "$mirror" >"$log" 2>&1; then
  tail -n 30 "$log"
  if grep -q -E 'NO_PUBKEY|unknown key|not signed|Release signed by' "$log"; then
    echo "lab image: the host's keyring cannot check $suite: apt-get install debian-archive-keyring (2023.3+deb12u2 or newer)" >&2
  fi
  exit 1
fi

# Trim what a container does not need; keep apt usable (the roles install with apt).
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# The package lists and the roles' .deb files (downloaded only). The roles' apt tasks skip the
# update while the lists are under an hour old and install from the cache; later they update
# as on any host, and apt fetches only what changed.
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
# shellcheck disable=SC2086 # packages is a space-separated list
if ! { chroot "$rootfs" apt-get update -q && chroot "$rootfs" apt-get install -y -q --download-only $packages; } \
    >>"$log" 2>&1; then
  tail -n 30 "$log"
  echo "lab image: downloading the roles' packages into the image failed (see above)" >&2
  exit 1
fi
printf '%s\n' "$suite-lab" > "$rootfs/etc/hostname"
# Units that cannot work in a container and only add noise / delay the boot.
for unit in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
            systemd-modules-load.service getty@tty1.service console-getty.service \
            systemd-remount-fs.service sys-kernel-config.mount; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done

tar -C "$rootfs" -c . | docker import \
  -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' -c "LABEL keybuzz.lab-image.version=$version" \
  - "$tag" >/dev/null
echo "lab image $tag built"
