#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ferfs's userspace tools inside the guest, on a real block device (the virtio disk):
# mkfs, a clean fsck, a damaged superblock copy found by `fsck -n`, repaired by `fsck -y`.
. /ferrite/lib.sh

modprobe virtio_blk
wait_for /dev/vda
dev=/dev/vda
check "mkfs.ferfs makes a filesystem on $dev" mkfs.ferfs "$dev"
check "fsck.ferfs -n finds it clean" fsck.ferfs -n "$dev"
check "ferfs stats reads it" sh -c "ferfs stats $dev | grep -q 'blocks of 4 KiB'"
# The first superblock copy lives at 64 KiB (docs/format.md).
dd if=/dev/urandom of="$dev" bs=4096 seek=16 count=1 conv=notrunc 2>/dev/null
sync
fsck.ferfs -n "$dev" >/tmp/fsck.out 2>&1
expect_eq "fsck.ferfs -n reports a damaged superblock copy (exit 4)" 4 "$?"
fsck.ferfs -y "$dev" >/tmp/fsck.out 2>&1
expect_eq "fsck.ferfs -y repairs it from another copy (exit 1)" 1 "$?"
check "fsck.ferfs -n finds it clean again" fsck.ferfs -n "$dev"
check "virtio_blk unloads" rmmod virtio_blk
