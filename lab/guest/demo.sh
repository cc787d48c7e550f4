#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# What `cargo xtask run` shows when there is no terminal to give a shell to.
. /ferrite/lib.sh
show() {
	echo "ferrite# $*"
	"$@"
}
show uname -r
show lsmod
show ls /sys/block
show cat /sys/class/net/eth0/address
echo "ferrite# nullb_create rnull demo 64 4096    (a 64 MiB Rust null block device)"
dev=$(nullb_create rnull demo 64 4096)
show dd if=/dev/zero of="$dev" bs=1M count=16
show dd if="$dev" of=/dev/null bs=1M count=16
nullb_destroy rnull demo
echo "ferrite-demo: ok" >/dev/ttyS1
