#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ferfs through its FUSE mount on the virtio disk: stress-ng's filesystem stressors, fio with
# verify=crc32c and dbench, each followed by an unmount and a clean fsck.
. /ferrite/lib.sh
. /ferrite/tests/ferfs/fuse.inc

modprobe virtio_blk
wait_for /dev/vda
dev=/dev/vda
check "mkfs.ferfs -z zstd makes a filesystem on $dev" mkfs.ferfs -z zstd "$dev"

# --- stress-ng's filesystem stressors ----------------------------------------------------
fuse_mount "$dev" || exit 1
mkdir $mnt/stress
check "stress-ng: 18 filesystem stressors with --verify" \
	stress-ng --temp-path $mnt/stress --timeout 10s --verify \
	--dir 1 --dentry 1 --dentries 512 --rename 1 --link 1 --symlink 1 --hdd 1 --hdd-bytes 1M \
	--chmod 1 --filename 1 --fallocate 1 --fallocate-bytes 1M --seek 1 --seek-size 1M \
	--xattr 1 --utime 1 --fstat 1 --lockf 1 --getdent 1 --mknod 1 --access 1 --file-ioctl 1
unmount_and_fsck "stress-ng" "$dev"

# --- fio with verification -------------------------------------------------------------
fuse_mount "$dev" || exit 1
check "fio: random 64 KiB writes of 2 jobs, verify=crc32c" \
	fio --name=verify --directory=$mnt --size=4M --bs=64k --rw=randwrite --ioengine=psync \
	--verify=crc32c --do_verify=1 --verify_fatal=1 --numjobs=2 --fsync_on_close=1
check "fio: sequential 4 KiB writes then reads, verify=crc32c" \
	fio --name=seq --directory=$mnt --size=2M --bs=4k --rw=write --ioengine=psync \
	--verify=crc32c --do_verify=1 --verify_fatal=1
unmount_and_fsck "fio" "$dev"

# --- dbench ------------------------------------------------------------------------------
fuse_mount "$dev" || exit 1
dbench -c /usr/share/dbench/client.txt -D $mnt -t 8 2 >/tmp/dbench.out 2>&1
rc=$?
expect_eq "dbench: 2 clients for 8 s exit 0" 0 "$rc"
check "dbench: no errors" sh -c "! grep -i error /tmp/dbench.out"
grep Throughput /tmp/dbench.out | sed 's/^/# /'
unmount_and_fsck "dbench" "$dev"
check "virtio_blk unloads" rmmod virtio_blk
