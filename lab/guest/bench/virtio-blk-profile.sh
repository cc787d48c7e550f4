#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# `cargo xtask profile virtio-blk`: the guest instructions one I/O costs with the Rust
# rvirtio_blk and with the C virtio_blk, on the null-co disk (the drivers' and the block
# layer's work, no backend latency) and on the raw image, counted by the lab's QEMU plugin between
# `insn-mark start` and `insn-mark stop` around a fio run of a fixed number of I/Os.
# Instruction counts do not depend on the host's load, unlike the benchmark's IOPS.
# Prints `PROFILE window=N case=… side=… ios=…` per window and the driver module's line
# of /proc/modules (`PROFILE-MOD …`, its load address last), then `PROFILE-DONE`.
. /ferrite/lib.sh
. /ferrite/bench/fio-cases.inc
. /ferrite/bench/virtio-blk.inc
ios=$(kernel_param ferrite.ios || echo 20000)
# Module symbols with their addresses.
echo 0 >/proc/sys/kernel/kptr_restrict 2>/dev/null

window=0
# The null-co disk (the drivers' work alone) and the raw image (the same with the host's file
# I/O behind it: completions arrive later, so batching and interrupts per I/O may differ).
for disk in null raw; do
while IFS=: read -r name args; do
	case "$name" in *-4k-*) ;; *) continue ;; esac
	for side in rust c; do
		driver=virtio_blk
		[ "$side" = rust ] && driver=rvirtio_blk
		load "$driver" || { echo "PROFILE-ERROR cannot load $driver"; continue; }
		dev=/dev/$(disk_of ferrite-$disk-1)
		run() {
			fio --name="$name" --filename="$dev" $args --ioengine=libaio --direct=1 \
				--size=512M --number_ios="$1" --output-format=terse >/dev/null 2>&1
		}
		# Once unmeasured: page cache, first-touch faults, the driver's first requests.
		run 2000
		insn-mark start
		run "$ios"
		insn-mark stop
		echo "PROFILE window=$window case=$disk-$name side=$side ios=$ios"
		# The module's load address (no kallsyms in the bench kernel): the host reads its
		# functions' offsets from the .ko.
		grep "^$driver " /proc/modules | sed 's/^/PROFILE-MOD /'
		window=$((window + 1))
		rmmod "$driver"
	done
# A here-document, not a pipe: the loop runs in this shell, so `window` keeps counting.
done <<EOF
$cases
EOF
done
echo "PROFILE-DONE"
