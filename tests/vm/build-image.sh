#!/usr/bin/env bash
# Build the VM test bed's root file system image: Debian bookworm, systemd as PID 1, journald,
# pure cgroup v2, and the oneshot unit that runs the staged tests from the 9p share at /mnt.
#
# Usage: build-image.sh OUT_DIR MIRROR DEB_CACHE_DIR
#
#   OUT_DIR        the build directory build-kernel.sh filled (kver, kernel-root/); on success
#                  it also holds rootfs.img (ext4, attached read-only via snapshot=on)
#   MIRROR         Debian mirror URL for debootstrap (run.sh takes it from the host's apt sources)
#   DEB_CACHE_DIR  debootstrap's package cache, kept between builds
#
# Called by run.sh; its text (and the files under guest/ it installs) are part of the cache key.
set -euo pipefail

die() { echo "build-image: $*" >&2; exit 1; }

[[ $# -eq 3 ]] || die "usage: build-image.sh OUT_DIR MIRROR DEB_CACHE_DIR"
out_dir=$1
mirror=$2
deb_cache_dir=$3
vm_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

readonly SUITE=bookworm
readonly PACKAGES=systemd,systemd-sysv,libpam-systemd,dbus,dbus-user-session,udev,kmod,procps,make,systemd-oomd
readonly IMAGE_SIZE=2G # sparse; ~280 MB are used
# Modules the booted system needs besides those in the initramfs (the 9p share).
readonly ROOTFS_MODULES=(9pnet_virtio 9p virtio_pci virtio_blk ext4)
# Units that only cost boot time in a throw-away test VM.
readonly MASKED_UNITS=(
    getty.target getty@tty1.service serial-getty@ttyS0.service console-getty.service
    e2scrub_all.timer e2scrub_reap.service
    apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer
    systemd-tmpfiles-clean.timer
    systemd-update-utmp.service systemd-update-utmp-runlevel.service
    systemd-timesyncd.service systemd-networkd-wait-online.service
    systemd-firstboot.service
    proc-sys-fs-binfmt_misc.automount systemd-binfmt.service
    # Coldplugging every device runs a dozen udev workers beside the tests and delays boot;
    # nothing here waits for a device unit (the root is mounted by the initramfs and is not in
    # fstab, the share is 9p).
    systemd-udev-trigger.service
)
# Generators the test VM does not need (systemd-fstab-generator stays: it makes mnt.mount).
readonly MASKED_GENERATORS=(
    systemd-getty-generator systemd-gpt-auto-generator systemd-debug-generator
    systemd-run-generator systemd-system-update-generator systemd-veritysetup-generator
    systemd-cryptsetup-generator systemd-hibernate-resume-generator systemd-bless-boot-generator
    systemd-integritysetup-generator
)

kver=$(cat "$out_dir/kver")
kernel_root=$out_dir/kernel-root
rootfs=$out_dir/rootfs
mkdir -p "$rootfs" "$deb_cache_dir"

echo "build-image: debootstrap $SUITE from $mirror (log: $out_dir/debootstrap.log)"
if ! debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$deb_cache_dir" \
    "$SUITE" "$rootfs" "$mirror" >"$out_dir/debootstrap.log" 2>&1; then
    tail -n 30 "$out_dir/debootstrap.log" >&2
    die "debootstrap failed (see $out_dir/debootstrap.log)"
fi

# --- kernel modules: the closure of ROOTFS_MODULES, paths as in the package -----------------
module_dir=lib/modules/$kver
mkdir -p "$rootfs/$module_dir"
for module in "${ROOTFS_MODULES[@]}"; do
    depends=$(modprobe -d "$kernel_root" -S "$kver" --show-depends "$module" 2>&1) ||
        die "modprobe --show-depends $module failed: $depends"
    while read -r verb path _; do
        [[ $verb == insmod ]] || continue
        relative=${path#"$kernel_root"/}
        mkdir -p "$rootfs/$(dirname "$relative")"
        cp "$path" "$rootfs/$relative"
    done <<<"$depends"
done
for meta in modules.builtin modules.builtin.modinfo modules.order; do
    [[ -f $kernel_root/$module_dir/$meta ]] && cp "$kernel_root/$module_dir/$meta" "$rootfs/$module_dir/"
done
depmod -b "$rootfs" "$kver" || die "depmod in the rootfs failed"

# --- system configuration -------------------------------------------------------------------
echo resctl-vm >"$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 resctl-vm\n' >"$rootfs/etc/hosts"
# A fixed machine id: no "first boot" logic, and journald has its directory name.
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$rootfs/etc/machine-id"
echo >>"$rootfs/etc/machine-id"
# The root (/dev/vda) is mounted read-write by the initramfs; only the 9p share is listed.
cat >"$rootfs/etc/fstab" <<'FSTAB'
share  /mnt  9p  trans=virtio,version=9p2000.L,msize=262144,nofail  0 0
FSTAB
printf '9pnet_virtio\n9p\n' >"$rootfs/etc/modules-load.d/resctl-vm.conf"

mkdir -p "$rootfs/etc/systemd/journald.conf.d"
cat >"$rootfs/etc/systemd/journald.conf.d/resctl-vm.conf" <<'JOURNALD'
# Tests log in bursts; never drop their messages. Volatile: no flush to disk at boot,
# `journalctl -b` reads /run/log/journal.
[Journal]
Storage=volatile
RateLimitIntervalSec=0
JOURNALD

for unit in "${MASKED_UNITS[@]}"; do
    ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
mkdir -p "$rootfs/etc/systemd/system-generators"
for generator in "${MASKED_GENERATORS[@]}"; do
    ln -sf /dev/null "$rootfs/etc/systemd/system-generators/$generator"
done
rm -rf "$rootfs/var/log/journal"
ln -sf /lib/systemd/system/multi-user.target "$rootfs/etc/systemd/system/default.target"
install -m 644 "$vm_dir/guest/resctl-vmtest.service" "$rootfs/etc/systemd/system/resctl-vmtest.service"
mkdir -p "$rootfs/etc/systemd/system/multi-user.target.wants"
ln -sf ../resctl-vmtest.service "$rootfs/etc/systemd/system/multi-user.target.wants/resctl-vmtest.service"

# Smaller image: package lists and caches are not needed in the guest.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb

echo "build-image: writing ext4 image"
mkfs.ext4 -q -F -L resctl-vm -d "$rootfs" "$out_dir/rootfs.img" "$IMAGE_SIZE" ||
    die "mkfs.ext4 -d $rootfs failed"
echo "build-image: rootfs.img ready ($(du -sh --apparent-size "$rootfs" | cut -f1) of files)"
