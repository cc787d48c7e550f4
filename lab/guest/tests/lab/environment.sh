#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The lab's own guarantees: the guest is the kernel we built, with the debugging the test
# flavour promises, and the virtio disk and NIC the other tests rely on.
. /ferrite/lib.sh

expect_eq "kernel is Linux 7.3" "7.3" "$(uname -r | cut -d. -f1-2)"
check "results port is a serial line" test -c /dev/ttyS1
check "modules of this kernel are installed" test -f "/lib/modules/$(uname -r)/modules.dep"
check "KUnit's debugfs is there" test -d /sys/kernel/debug/kunit
check "kmemleak is enabled" test -w /sys/kernel/debug/kmemleak
check "KASAN is built in" grep -q kasan /proc/kallsyms
check "lockdep is built in" test -e /proc/lockdep
expect_eq "the guest sees the 2 CPUs QEMU gives it" 2 "$(grep -c ^processor /proc/cpuinfo)"

check "virtio_blk loads" modprobe virtio_blk
check "the virtio disk appears as vda" wait_for /dev/vda
expect_eq "the virtio disk has the serial the host gave it" "ferrite-vda" "$(cat /sys/block/vda/serial 2>/dev/null)"
check "fio writes and verifies 8 MiB on vda" \
	fio --name=lab --filename=/dev/vda --rw=randwrite --bs=4k --size=8M --direct=1 \
	--ioengine=libaio --iodepth=8 --verify=crc32c --do_verify=1 --output=/tmp/fio.out
check "virtio_blk unloads" rmmod virtio_blk
check "virtio_net loads" modprobe virtio_net
check "the virtio NIC appears as eth0" wait_for /sys/class/net/eth0
check "eth0 comes up" ip link set eth0 up
check "virtio_net unloads" rmmod virtio_net
