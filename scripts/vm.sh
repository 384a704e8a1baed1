#!/usr/bin/env bash
# Runs pinglab's root-only tests on a second kernel: Debian's cloud kernel (6.1, with netem,
# nftables and veth as modules) under QEMU. It fetches the kernel package once into a cache
# (unpacked with dpkg-deb and indexed with depmod, never installed: no hooks, /boot untouched),
# then runs internal/vmtest, which builds the tests static, packs them into an initramfs and
# boots it. Extra arguments go to go test (for example -run 'TestVM/lossy').
#
# Needs: qemu-system-x86 busybox-static kmod (depmod) and the witnesses the tests compare with:
# iproute2 nftables iputils-ping traceroute.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${PINGLAB_VM_CACHE:-/var/cache/pinglab-vm}
meta=${PINGLAB_VM_KERNEL_PACKAGE:-linux-image-cloud-amd64}

# The metapackage names the current kernel package (linux-image-6.1.0-NN-cloud-amd64).
pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
if [ -z "$pkg" ]; then
  echo "vm.sh: apt-cache knows no $meta (run apt-get update)" >&2
  exit 2
fi
root="$cache/$pkg"
if [ ! -s "$root/.done" ]; then
  rm -rf "$root" && mkdir -p "$root"
  (cd "$root" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  deb=$(ls "$root"/*.deb)
  dpkg-deb -x "$deb" "$root"
  rm -f "$deb"
  version=$(basename "$(ls -d "$root"/lib/modules/*)")
  depmod -b "$root" "$version"
  echo "$version" >"$root/.done"
fi

export PINGLAB_VM_TESTS=1 PINGLAB_VM_KERNEL="$root"
exec go test -count=1 -v -timeout 8m -run '^TestVM$' ./internal/vmtest "$@"
