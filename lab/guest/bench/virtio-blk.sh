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

# io_count DISK: requests completed on DISK (reads + writes of /sys/block/DISK/stat).
io_count() {
	awk '{ print $1 + $5 }' "/sys/block/$1/stat"
}
# irq_counts: interrupts of every virtio vector, rescheduling IPIs, function-call IPIs (all
# CPUs).
irq_counts() {
	awk '/virtio/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) v += $i }
		/^ *RES:/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) r += $i }
		/^ *CAL:/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) f += $i }
		END { print v + 0, r + 0, f + 0 }' /proc/interrupts
}
echo "BENCH-META suite=virtio-blk rust=rvirtio_blk c=virtio_blk pairs=$pairs runtime=$runtime"
run_one() { # side case args pair serial numjobs
	driver=virtio_blk
	[ "$1" = rust ] && driver=rvirtio_blk
	load "$driver" || { echo "BENCH-ERROR cannot load $driver or its disks did not appear"; return; }
	disk=$(disk_of "$5")
	dev=/dev/$disk
	size=512M
	before="$(io_count "$disk") $(irq_counts)"
	json=$(fio --name="$2" --filename="$dev" $3 --numjobs="$6" --group_reporting \
		--ioengine=libaio --direct=1 --time_based --runtime="$runtime" --ramp_time=1 \
		--size=$size --output-format=json 2>/dev/null | tr -d '\n\t')
	after="$(io_count "$disk") $(irq_counts)"
	echo "BENCH case=$2 side=$1 pair=$4 $json"
	# Not a figure of the report: what the run cost in interrupts, per I/O (ramp included).
	echo "$before $after" | awk -v c="$2" -v s="$1" -v p="$4" '{ n = $5 - $1; if (n < 1) n = 1;
		printf "BENCH-NOTE interrupts case=%s side=%s pair=%s ios=%d virtio_per_io=%.3f resched_per_io=%.3f call_per_io=%.3f\n",
			c, s, p, n, ($6 - $2) / n, ($7 - $3) / n, ($8 - $4) / n }'
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
