#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Benchmark suite `virtio-blk`: the Rust rvirtio_blk against the C virtio_blk on the same
# QEMU virtio-blk devices (serial ferrite-null: null-co backend, the drivers' and the
# transport's overhead; serial ferrite-raw: a raw image file). fio, direct I/O, libaio.
# Pairs alternate Rust and C (Rust first in odd pairs, C first in even ones), each run on a
# freshly loaded module.
# Prints one `BENCH case=… side=… pair=… <fio json>` line per run.
. /ferrite/lib.sh
pairs=$(kernel_param ferrite.pairs || echo 5)
runtime=$(kernel_param ferrite.runtime || echo 3)

. /ferrite/bench/fio-cases.inc

. /ferrite/bench/virtio-blk.inc

echo "BENCH-META suite=virtio-blk rust=rvirtio_blk c=virtio_blk pairs=$pairs runtime=$runtime"
run_one() { # side case args pair serial numjobs
	driver=virtio_blk
	[ "$1" = rust ] && driver=rvirtio_blk
	load "$driver" || { echo "BENCH-ERROR cannot load $driver or its disks did not appear"; return; }
	dev=/dev/$(disk_of "$5")
	size=512M
	json=$(fio --name="$2" --filename="$dev" $3 --numjobs="$6" --group_reporting \
		--ioengine=libaio --direct=1 --time_based --runtime="$runtime" --ramp_time=1 \
		--size=$size --output-format=json 2>/dev/null | tr -d '\n\t')
	echo "BENCH case=$2 side=$1 pair=$4 $json"
	rmmod "$driver"
}
# With ferrite.full=1 on the guest's command line every case runs with 1 and 2 jobs on both
# backends (24 cases); by default 2 jobs only for the 4 KiB depth-32 cases on null-co (14
# cases), which fits a loaded 2-core TCG host in about 15 minutes at 5 pairs of 2 s runs.
full=$(kernel_param ferrite.full || echo 0)
for pair in $(seq "$pairs"); do
	for backend in null raw; do
		for jobs in 1 2; do
			echo "$cases" | while IFS=: read -r name args; do
				if [ "$full" != 1 ] && [ "$jobs" = 2 ]; then
					[ "$backend" = null ] || continue
					case "$name" in *-4k-qd32) ;; *) continue ;; esac
				fi
				case_name="$backend-$name-j$jobs"
				for side in $(pair_order "$pair"); do
					run_one "$side" "$case_name" "$args" "$pair" "ferrite-$backend" "$jobs"
				done
			done
		done
	done
done
echo "BENCH-DONE"
