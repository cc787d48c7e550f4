#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# What `cargo xtask run` shows when there is no terminal to give a shell to.
. /ferrite/lib.sh
set -x
uname -a
lsmod
ls /sys/block
cat /sys/class/net/eth0/address 2>/dev/null
dev=$(nullb_create rnull demo 64 4096)
dd if=/dev/zero of="$dev" bs=1M count=16 2>&1 | tail -n 1
dd if="$dev" of=/dev/null bs=1M count=16 2>&1 | tail -n 1
nullb_destroy rnull demo
echo "ferrite-demo: ok" >/dev/ttyS1
