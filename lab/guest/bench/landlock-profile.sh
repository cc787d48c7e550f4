#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# `cargo xtask profile landlock`: the guest instructions one open(2) or stat(2) costs on this
# boot's Landlock (C or Rust: two kernels, one boot each), counted by the lab's QEMU plugin
# in a window ll-bench opens and closes around a fixed number of operations (the sandbox's
# setup and a few warm-up operations are left out; a window per ll-bench run). The cases are
# the benchmark's (lab/guest/bench/landlock.sh).
# Prints `PROFILE window=N case=… side=… ios=…` per window, then `PROFILE-DONE`.
. /ferrite/lib.sh
side=$(kernel_param ferrite.side || echo c)
ops=$(kernel_param ferrite.ios || echo 20000)
cd /tmp || exit 1

window=0
while IFS=: read -r name args; do
	if out=$(ll-bench $args --ops="$ops" 2>&1); then
		echo "PROFILE window=$window case=$name side=$side ios=$ops"
		window=$((window + 1))
	else
		echo "PROFILE-ERROR ll-bench $args: $out"
	fi
	rm -rf /tmp/llb /tmp/llb-decoys
	# The last sandbox's domain is freed by a work item: let it run before the next window.
	sleep 1
done <<CASES
open-d32-l0:open 32 0 0
open-d32-l1:open 32 1 0
open-d32-l16-r1000:open 32 16 1000
open-denied-d32-l16-r1000:open-denied 32 16 1000
stat-d32-l16-r1000:stat 32 16 1000
CASES
echo "PROFILE-DONE"
