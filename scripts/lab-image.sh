#!/usr/bin/env bash
# Build the lab image: Debian with systemd and python3 only, from the host's
# configured apt mirror (no registry). Skipped when the tag already exists.
#   usage: scripts/lab-image.sh [suite]   (suite: bookworm (default) or trixie)
set -euo pipefail
suite=${1:-${KB_LAB_SUITE:-bookworm}}
tag="keybuzz/lab-debian:${suite}"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "lab image $tag present"
  exit 0
fi

mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null \
  | grep -v -- '-security' | head -n 1)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d /var/tmp/kb-lab-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "building $tag from $mirror (debootstrap, about a minute)"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,iproute2,procps,ca-certificates \
  "$suite" "$rootfs" "$mirror" >/var/tmp/kb-lab-debootstrap.log 2>&1 \
  || { tail -n 30 /var/tmp/kb-lab-debootstrap.log; exit 1; }

# Trim what a container does not need; keep apt usable (the roles install with apt).
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
printf '%s\n' "$suite-lab" > "$rootfs/etc/hostname"
# Units that cannot work in a container and only add noise / delay the boot.
for unit in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
            systemd-modules-load.service getty@tty1.service console-getty.service \
            systemd-remount-fs.service sys-kernel-config.mount; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done

tar -C "$rootfs" -c . | docker import \
  -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' \
  - "$tag" >/dev/null
echo "lab image $tag built"
