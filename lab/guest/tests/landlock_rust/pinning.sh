#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Landlock in Rust: a rule keeps its inode in memory, as C's rules do. On overlayfs, whose
# unused inodes drop_caches evicts, a sandbox's read rule on a directory still allows reading
# beneath it after the caches are dropped (an evicted inode would come back without the
# rule's id), and a file outside is still denied; the overlay then unmounts while the
# sandbox's domain still pins one of its inodes, without "Busy inodes" (the pins of a
# superblock are dropped at sb_delete).
. /ferrite/lib.sh

sb() { landlock-probe sandbox "$@"; }
base="--ro /bin --ro /sbin --ro /usr --ro /lib --ro /lib64 --ro /dev --ro /proc"
t=/tmp/llpin
m=$t/merged

# (With cat: a sysctl file reads as empty past offset 0, and the shell's read takes one byte
# at a time.)
nr_inodes() {
	set -- $(cat /proc/sys/fs/inode-nr)
	echo "$1"
}
drop_caches() { echo 2 >/proc/sys/vm/drop_caches; }
# wait_line LINE: waits (30 s) for the sandbox to print LINE.
wait_line() {
	n=300
	until grep -qx "$1" $t/out; do
		n=$((n - 1))
		[ $n -gt 0 ] || return 1
		sleep 0.1
	done
}

umount $m 2>/dev/null
umount $t 2>/dev/null
mkdir -p $t
if ! mount -t tmpfs none $t; then
	not_ok "tmpfs at $t"
	exit 1
fi
mkdir -p $t/l1/allowed $t/l1/other $t/l1/many $t/l2 $m
echo data >$t/l1/allowed/f
echo secret >$t/l1/other/f
i=0
while [ $i -lt 500 ]; do
	: >$t/l1/many/f$i
	i=$((i + 1))
done
if ! mount -t overlay overlay -o lowerdir=$t/l1:$t/l2 $m; then
	not_ok "overlayfs over two tmpfs directories mounts"
	umount $t
	exit 1
fi
ok "overlayfs over two tmpfs directories mounts"

# What the rest relies on: drop_caches evicts the overlay's unused inodes (nr_inodes counts
# the inodes in memory; the caches are dropped first so that other filesystems' inodes do not
# count in the second drop).
drop_caches
n0=$(nr_inodes)
ls -l $m/many >/dev/null
n1=$(nr_inodes)
drop_caches
n2=$(nr_inodes)
echo "# nr_inodes: $n0, $n1 after looking up 500 overlay files, $n2 after drop_caches"
check "looking up 500 files of the overlay brings 500 inodes in" [ $((n1 - n0)) -ge 500 ]
check "drop_caches evicts them" [ $((n1 - n2)) -ge 450 ]

# A sandbox with a read rule on $m/allowed reads beneath it, waits for the caches to be
# dropped, reads again and tries a file outside, then waits until the overlay is unmounted.
# (Its output is a file opened before the sandbox; it opens nothing for writing.)
rm -f $t/go1 $t/go2 $t/out
sb $base --ro $m/allowed -- sh -c "
	cat $m/allowed/f && echo read-before
	while [ ! -e $t/go1 ]; do sleep 0.1; done
	cat $m/allowed/f && echo read-after
	cat $m/other/f 2>&1 || echo other-denied
	echo phase1
	while [ ! -e $t/go2 ]; do sleep 0.1; done
	echo phase2
" >$t/out 2>&1 &
pid=$!
check "sandbox: read beneath the rule" wait_line read-before
drop_caches
touch $t/go1
check "sandbox: it went on after drop_caches" wait_line phase1
check "sandbox: the rule still allows reading after drop_caches" grep -qx read-after $t/out
check "sandbox: a file outside the rule is still denied after drop_caches" \
	grep -qx other-denied $t/out

# Unmounting the overlay while the sandbox's domain (and its pin on $m/allowed) lives.
mark="llpin-$$: umount with a live domain"
echo "$mark" >/dev/kmsg
check "umount of the overlay while a domain has a rule on it" umount $m
no_vfs_warning() {
	dmesg | sed -n "/$mark/,\$p" >/tmp/llpin.log
	grep -q "$mark" /tmp/llpin.log && ! grep -E "Busy inodes|VFS:" /tmp/llpin.log
}
check "no busy inodes or VFS warning after that umount" no_vfs_warning
touch $t/go2
if ! wait_line phase2; then
	kill $pid 2>/dev/null
fi
wait $pid
check "sandbox: it ran to its end" grep -qx phase2 $t/out
sed 's/^/# sandbox: /' $t/out
check "umount of the tmpfs under the overlay" umount $t
