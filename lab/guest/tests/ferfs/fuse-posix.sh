#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ferfs through its FUSE mount on the virtio disk: POSIX behaviour checks, then an unmount,
# a clean fsck and a remount that finds everything (fuse-stress.sh runs the stress tools).
. /ferrite/lib.sh
. /ferrite/tests/ferfs/fuse.inc

modprobe virtio_blk
wait_for /dev/vda
dev=/dev/vda
check "mkfs.ferfs -z zstd makes a filesystem on $dev" mkfs.ferfs -z zstd "$dev"
check "ferfs mounts it through FUSE" fuse_mount "$dev"
cd $mnt || exit 1

# --- POSIX behaviour -------------------------------------------------------------------
dd if=/dev/urandom of=/tmp/random bs=4096 count=100 2>/dev/null
check "a written file reads back" sh -c "cp /tmp/random r && cmp r /tmp/random"
check "appends extend a file" sh -c "echo one >a && echo two >>a && [ \"\$(cat a)\" = 'one
two' ]"
expect_eq "stat reports the size" 409600 "$(stat -c %s r)"
check "overwriting in the middle keeps the rest" sh -c \
	"printf XYZ | dd of=r bs=1 seek=5000 conv=notrunc 2>/dev/null &&
	 [ \"\$(dd if=r bs=1 skip=5000 count=3 2>/dev/null)\" = XYZ ] &&
	 cmp -n 5000 r /tmp/random"
printf XYZ | dd of=/tmp/random bs=1 seek=5000 conv=notrunc 2>/dev/null
check "mkdir and rmdir of an empty directory" sh -c "mkdir d1 && rmdir d1 && [ ! -e d1 ]"
mkdir -p d/e && touch d/e/x
check "rmdir of a non-empty directory fails" sh -c "! rmdir d/e 2>/dev/null"
ln r d/hard
expect_eq "a hard link counts 2 links" 2 "$(stat -c %h r)"
expect_eq "a directory with one subdirectory counts 3 links" 3 "$(stat -c %h d)"
ln -s ../r d/sym
expect_eq "readlink gives a symlink's target" ../r "$(readlink d/sym)"
check "a symlink resolves" cmp d/sym /tmp/random
check "a hard link to a directory is refused" sh -c "! ln d d2 2>/dev/null"
mv d/hard h
check "rename moves the name" sh -c "[ ! -e d/hard ] && cmp h /tmp/random"
echo new >n
mv n a
expect_eq "rename over a file replaces it" new "$(cat a)"
chmod 640 a
expect_eq "chmod sets the mode" 640 "$(stat -c %a a)"
cp /tmp/random t
truncate -s 100 t
expect_eq "truncate shrinks" 100 "$(stat -c %s t)"
check "truncate keeps what lies before" cmp -n 100 t /tmp/random
truncate -s 1000000 t
expect_eq "truncate grows" 1000000 "$(stat -c %s t)"
check "a grown file reads zeroes past the old end" sh -c \
	"[ \"\$(dd if=t bs=1000 skip=500 count=1 2>/dev/null | tr -d '\\000' | wc -c)\" = 0 ]"
dd if=/dev/zero of=sparse bs=4096 seek=25600 count=1 2>/dev/null
expect_eq "a sparse file has its full size" 104861696 "$(stat -c %s sparse)"
check "a sparse file stores few blocks" sh -c "[ \$(stat -c %b sparse) -lt 100 ]"
mkfifo fifo
expect_eq "mkfifo makes a fifo" "fifo" "$(stat -c %F fifo)"
mknod null c 1 3
expect_eq "mknod makes a character device with its numbers" "1,3" "$(stat -c %t,%T null)"
touch -d "2001-02-03 04:05:06" a
expect_eq "touch -d sets the modification time" "2001-02-03 04:05:06" \
	"$(stat -c %y a | cut -c1-19)"
long=$(printf '%0255d' 0)
check "a 255-byte name works" sh -c "touch $long && [ -e $long ] && rm $long"
check "a 256-byte name is refused" sh -c "! touch ${long}0 2>/dev/null"
i=0
while [ $i -lt 100 ]; do
	: >d/e/f$i
	i=$((i + 1))
done
expect_eq "readdir lists 100 entries (and the first file)" 101 "$(ls d/e | wc -l)"
check "an unlinked file stays readable while open" sh -c \
	"exec 3<r && rm r && [ ! -e r ] && cmp - /tmp/random <&3"
check "df sees the filesystem" sh -c "df $mnt | grep -q ferfs"
check "sync succeeds" sync
md5=$(md5sum h a t d/e/x | md5sum)
cd /
unmount_and_fsck "posix" "$dev"
check "it mounts again" fuse_mount "$dev"
expect_eq "everything is still there after a remount" "$md5" \
	"$(cd $mnt && md5sum h a t d/e/x | md5sum)"
expect_eq "a symlink is still there after a remount" ../r "$(readlink $mnt/d/sym)"
expect_eq "the directory of 100 files is still there" 101 "$(ls $mnt/d/e | wc -l)"
rm -rf $mnt/d $mnt/h $mnt/a $mnt/t $mnt/sparse $mnt/fifo $mnt/null
expect_eq "rm -rf empties it" "" "$(ls $mnt)"
unmount_and_fsck "after rm -rf" "$dev"
check "virtio_blk unloads" rmmod virtio_blk
