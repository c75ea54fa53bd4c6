#!/usr/bin/env bash
# Build the VM test bed's kernel and initramfs.
#
# Usage: build-kernel.sh KERNEL_PACKAGE DEB_CACHE_DIR OUT_DIR
#
#   KERNEL_PACKAGE  the Debian package linux-image-amd64 depends on, e.g. linux-image-6.1.0-48-amd64
#   DEB_CACHE_DIR   where downloaded .deb files are kept between builds
#   OUT_DIR         an empty build directory; on success it holds
#                     vmlinuz         the kernel
#                     initrd.img      busybox initramfs that loads virtio + ext4 and mounts /dev/vda
#                     kver            the kernel release string (uname -r of the guest)
#                     kernel-root/    the unpacked package (lib/modules/KVER, for build-image.sh)
#
# The kernel package is only unpacked (dpkg-deb -x), never installed into the host's /boot.
# Called by run.sh; its text is part of the cache key, so editing it rebuilds the bed.
set -euo pipefail

die() { echo "build-kernel: $*" >&2; exit 1; }

[[ $# -eq 3 ]] || die "usage: build-kernel.sh KERNEL_PACKAGE DEB_CACHE_DIR OUT_DIR"
kernel_package=$1
deb_cache_dir=$2
out_dir=$3
vm_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Modules the initramfs loads, in this order (virtio_ring before virtio, or the mount fails).
# `modprobe --show-depends` below adds any dependency a newer kernel may need, in load order.
readonly INITRAMFS_MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev
    virtio_pci virtio_blk crc16 mbcache jbd2 crc32c_generic ext4)

mkdir -p "$deb_cache_dir"
deb=$(find "$deb_cache_dir" -maxdepth 1 -name "${kernel_package}_*_amd64.deb" -print -quit)
if [[ -z $deb ]]; then
    echo "build-kernel: downloading $kernel_package"
    if ! (cd "$deb_cache_dir" && apt-get download -q "$kernel_package") >"$out_dir/apt-download.log" 2>&1; then
        cat "$out_dir/apt-download.log" >&2
        die "apt-get download $kernel_package failed"
    fi
    deb=$(find "$deb_cache_dir" -maxdepth 1 -name "${kernel_package}_*_amd64.deb" -print -quit)
fi
[[ -n $deb ]] || die "apt-get download $kernel_package produced no .deb in $deb_cache_dir"

kernel_root=$out_dir/kernel-root
mkdir -p "$kernel_root"
dpkg-deb -x "$deb" "$kernel_root" || die "cannot unpack $deb"

kver=$(find "$kernel_root/lib/modules" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | head -n1)
[[ -n $kver ]] || die "no lib/modules/<version> in $deb"
[[ -f $kernel_root/boot/vmlinuz-$kver ]] || die "no boot/vmlinuz-$kver in $deb"
echo "$kver" >"$out_dir/kver"
cp "$kernel_root/boot/vmlinuz-$kver" "$out_dir/vmlinuz"
depmod -b "$kernel_root" "$kver" || die "depmod -b $kernel_root $kver failed"

# --- initramfs -------------------------------------------------------------------------------
initramfs=$out_dir/initramfs
mkdir -p "$initramfs"/{bin,dev,proc,sys,newroot,lib/modules}
busybox_bin=$(command -v busybox || true)
[[ -n $busybox_bin ]] || die "busybox not found (install busybox-static)"
if ldd "$busybox_bin" >/dev/null 2>&1; then # ldd fails on a static binary
    die "$busybox_bin is dynamically linked; install busybox-static"
fi
cp "$busybox_bin" "$initramfs/bin/busybox"
mknod -m 600 "$initramfs/dev/console" c 5 1
mknod -m 666 "$initramfs/dev/null" c 1 3
cp "$vm_dir/initramfs-init" "$initramfs/init"
chmod 755 "$initramfs/init"

# Resolve every module (and its dependencies) to a file, in load order; decompress it so busybox
# insmod can load it; write the load order into /modules.order.
declare -A already_listed=()
: >"$initramfs/modules.order"
for module in "${INITRAMFS_MODULES[@]}"; do
    depends=$(modprobe -d "$kernel_root" -S "$kver" --show-depends "$module" 2>&1) ||
        die "modprobe --show-depends $module failed: $depends"
    while read -r verb path _; do
        [[ $verb == insmod ]] || continue # "builtin NAME": compiled into the kernel
        name=$(basename "$path")
        name=${name%.xz}
        name=${name%.zst}
        name=${name%.gz}
        [[ -z ${already_listed[$name]:-} ]] || continue
        already_listed[$name]=1
        case $path in
        *.ko.xz) xz -dc "$path" >"$initramfs/lib/modules/$name" ;;
        *.ko.zst) zstd -q -dc "$path" >"$initramfs/lib/modules/$name" ;;
        *.ko.gz) gzip -dc "$path" >"$initramfs/lib/modules/$name" ;;
        *.ko) cp "$path" "$initramfs/lib/modules/$name" ;;
        *) die "unexpected module file $path" ;;
        esac
        echo "$name" >>"$initramfs/modules.order"
    done <<<"$depends"
done
echo "build-kernel: initramfs modules: $(tr '\n' ' ' <"$initramfs/modules.order")"

(cd "$initramfs" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out_dir/initrd.img"
rm -rf "$initramfs"
echo "build-kernel: kernel $kver ready"
