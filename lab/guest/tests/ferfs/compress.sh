#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Compression against btrfs: the same dataset (a tar of part of the kernel source, on the
# read-only disk with serial ferrite-dataset) extracted into ferfs (through FUSE) and into btrfs, both with
# metadata DUP and the same algorithm, on the same virtio disk. Reports stored bytes side
# by side ("# compress: ..." lines, collected into the README) and checks that both
# compress and that ferfs is clean after each run.
. /ferrite/lib.sh
. /ferrite/tests/ferfs/fuse.inc

modprobe virtio_blk
wait_for /dev/vda
# The dataset disk, found by its serial (its vdX name depends on how many disks come before).
dataset=
n=100
while [ -z "$dataset" ] && [ $n -gt 0 ]; do
	for s in /sys/block/vd*/serial; do
		[ "$(cat "$s" 2>/dev/null)" = ferrite-dataset ] && { d=${s%/serial}; dataset=/dev/${d##*/}; }
	done
	[ -n "$dataset" ] || sleep 0.1
	n=$((n - 1))
done
check "the dataset disk is there (serial ferrite-dataset)" [ -b "$dataset" ]
dev=/dev/vda
logical=$(tar -tvf "$dataset" | awk '{s += $3} END {print s}')
files=$(tar -tf "$dataset" | grep -vc '/$')
echo "# compress: dataset $files files, $logical bytes"
check "the dataset disk holds a tar of at least 5 MB" [ "$logical" -gt 5000000 ]

# btrfs_df KIND: bytes used by KIND (Data, Metadata) in one copy, from `btrfs fi df -b`.
btrfs_df() {
	btrfs filesystem df -b /mnt/btrfs | awk -F'used=' -v k="$1" '$0 ~ "^" k "," {print $2}'
}

for alg in zstd lzo zlib; do
	# ferfs
	check "$alg: mkfs.ferfs -z $alg" mkfs.ferfs -z $alg "$dev"
	fuse_mount "$dev" || exit 1
	t0=$(date +%s)
	check "$alg: ferfs takes the dataset" tar -xf "$dataset" -C $mnt
	t1=$(date +%s)
	unmount_and_fsck "$alg" "$dev"
	ferfs stats "$dev" >/tmp/stats
	f_data=$(awk '/^stored data:/ {print $3}' /tmp/stats)
	f_blocks=$(($(awk '/^stored data:/ {print $6}' /tmp/stats) * 4096))
	f_meta=$(($(awk '/^metadata nodes:/ {print $3}' /tmp/stats) * 4096))
	# btrfs
	check "$alg: mkfs.btrfs" mkfs.btrfs -f -q -K -m dup -d single "$dev"
	mkdir -p /mnt/btrfs
	check "$alg: btrfs mounts with compress=$alg" mount -t btrfs -o compress=$alg "$dev" /mnt/btrfs
	t2=$(date +%s)
	check "$alg: btrfs takes the dataset" tar -xf "$dataset" -C /mnt/btrfs
	sync
	btrfs filesystem sync /mnt/btrfs
	t3=$(date +%s)
	b_data=$(btrfs_df Data)
	b_meta=$(btrfs_df Metadata)
	check "$alg: btrfs unmounts" umount /mnt/btrfs
	echo "# compress: $alg logical=$logical ferfs_data=$f_data ferfs_data_blocks=$f_blocks ferfs_meta=$f_meta" \
		"btrfs_data=$b_data btrfs_meta=$b_meta ferfs_secs=$((t1 - t0)) btrfs_secs=$((t3 - t2))"
	check "$alg: ferfs stores less data than the dataset holds" \
		[ "${f_data:-0}" -gt 0 -a "${f_data:-0}" -lt "$logical" ]
	check "$alg: btrfs stores less data than the dataset holds" \
		[ "${b_data:-0}" -gt 0 -a "${b_data:-0}" -lt "$logical" ]
	# btrfs keeps small files inline in its metadata: compare data and metadata together, in
	# allocated blocks (btrfs's Data used counts whole sectors too).
	check "$alg: ferfs stores at most 1.5 times what btrfs does" \
		[ $((2 * (f_blocks + f_meta))) -le $((3 * (b_data + b_meta))) ]
done
check "virtio_blk unloads" rmmod virtio_blk
