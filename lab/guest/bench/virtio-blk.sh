#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Benchmark suite `virtio-blk`: the Rust rvirtio_blk against the C virtio_blk on identical
# QEMU virtio-blk devices: on each of two disk sets a ferrite-null-N (null-co backend: the
# drivers' and the transport's overhead) and a ferrite-raw-N (a raw image file). fio, direct
# I/O, libaio.
#
# Under TCG this host's speed drifts by tens of per cent from one 100 ms to the next (a CPU
# loop on the host itself runs at 0.3x to 1x of its peak), so runs at different times are
# not comparable unless there are very many of them. Both drivers are therefore bound at
# once, one to each set, and each case is one fio invocation (threads) made of pairs, in one
# of two arrangements (`ferrite.arrangement`):
#  - together (default): the two sides of a pair run at the same time, each pinned to its
#    own vCPU (a queue per CPU, so each side's submissions and completions stay on its vCPU),
#    Rust on CPU 0 in odd pairs and on CPU 1 in even ones (with 2 jobs, both of a side on its
#    CPU): the host's changes of speed fall on both sides, though the two vCPU threads and
#    QEMU's I/O thread still share the host's two CPUs unevenly from one moment to the next
#    (docs/virtio.md, "Benchmark");
#  - alternate: the two sides of a pair run one after the other in short slices
#    (`stonewall`), Rust first in odd pairs and C first in even ones.
# Halfway through the pairs the sets are swapped, so a difference between the sets (PCI slot,
# interrupt vectors, image file) falls on both drivers.
# Prints `BENCH case=… <fio json>` per case and half, its jobs (reporting groups) named
# `SIDE.PAIR`, and a `BENCH-NOTE interrupts` line per case, half and side.
. /ferrite/lib.sh
pairs=$(kernel_param ferrite.pairs || echo 20)
slice_ms=$(kernel_param ferrite.runtime_ms || echo 500)
arrangement=$(kernel_param ferrite.arrangement || echo together)

. /ferrite/bench/fio-cases.inc

. /ferrite/bench/virtio-blk.inc

# io_count DISK: requests completed on DISK (reads + writes of /sys/block/DISK/stat).
io_count() {
	awk '{ print $1 + $5 }' "/sys/block/$1/stat"
}
# irq_count DISK: interrupts of DISK's virtio device (all its vectors, all CPUs).
irq_count() {
	awk -v d="$(virtio_dev_of "$1")-" 'index($0, d) { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) v += $i }
		END { print v + 0 }' /proc/interrupts
}
echo "BENCH-META suite=virtio-blk rust=rvirtio_blk c=virtio_blk pairs=$pairs slice_ms=$slice_ms arrangement=$arrangement"

# run_case CASE ARGS BACKEND NUMJOBS FIRST LAST: pairs FIRST..LAST of one case.
run_case() {
	rust_disk=$(disk_of "ferrite-$3-$rust_set") || { echo "BENCH-ERROR no disk ferrite-$3-$rust_set"; return; }
	c_disk=$(disk_of "ferrite-$3-$((3 - rust_set))") || { echo "BENCH-ERROR no disk ferrite-$3-$((3 - rust_set))"; return; }
	{
		pair=$5
		while [ "$pair" -le "$6" ]; do
			if [ "$arrangement" = together ]; then
				rust_cpu=$(((pair + 1) % 2))
				printf '[rust.%s]\nstonewall\nfilename=/dev/%s\ncpus_allowed=%s\n' "$pair" "$rust_disk" "$rust_cpu"
				printf '[c.%s]\nnew_group\nfilename=/dev/%s\ncpus_allowed=%s\n' "$pair" "$c_disk" "$((1 - rust_cpu))"
			else
				for side in $(pair_order "$pair"); do
					disk=$c_disk
					[ "$side" = rust ] && disk=$rust_disk
					printf '[%s.%s]\nstonewall\nfilename=/dev/%s\n' "$side" "$pair" "$disk"
				done
			fi
			pair=$((pair + 1))
		done
	} >/tmp/pairs.fio
	before="$(io_count "$rust_disk") $(irq_count "$rust_disk") $(io_count "$c_disk") $(irq_count "$c_disk")"
	json=$(fio $2 --numjobs="$4" --group_reporting --thread --ioengine=libaio --direct=1 \
		--time_based --runtime="${slice_ms}ms" --ramp_time=200ms --size=512M \
		--output-format=json /tmp/pairs.fio 2>/dev/null | tr -d '\n\t')
	after="$(io_count "$rust_disk") $(irq_count "$rust_disk") $(io_count "$c_disk") $(irq_count "$c_disk")"
	echo "BENCH case=$1 $json"
	# Not a figure of the report: what each side cost in interrupts, per I/O (ramps included).
	echo "$before $after" | awk -v c="$1" -v p="$5-$6" '{
		n = $5 - $1; if (n < 1) n = 1; m = $7 - $3; if (m < 1) m = 1
		printf "BENCH-NOTE interrupts case=%s pairs=%s side=rust ios=%d virtio_per_io=%.3f\n", c, p, n, ($6 - $2) / n
		printf "BENCH-NOTE interrupts case=%s pairs=%s side=c ios=%d virtio_per_io=%.3f\n", c, p, m, ($8 - $4) / m }'
}

# With ferrite.full=1 on the guest's command line every case runs with 1 and 2 jobs on both
# backends (24 cases); by default 2 jobs only for the 4 KiB depth-32 cases on null-co (14
# cases).
full=$(kernel_param ferrite.full || echo 0)
half=$(((pairs + 1) / 2))
for rust_set in 1 2; do
	if [ $rust_set = 1 ]; then
		first=1 last=$half
		bind_sets rvirtio_blk virtio_blk
	else
		first=$((half + 1)) last=$pairs
		bind_sets virtio_blk rvirtio_blk
	fi || { echo "BENCH-ERROR cannot bind rvirtio_blk to disk set $rust_set and virtio_blk to the other"; exit 0; }
	[ "$first" -le "$last" ] || continue
	echo "BENCH-META pairs=$first-$last rust-set=$rust_set"
	for backend in null raw; do
		for jobs in 1 2; do
			echo "$cases" | while IFS=: read -r name args; do
				if [ "$full" != 1 ] && [ "$jobs" = 2 ]; then
					[ "$backend" = null ] || continue
					case "$name" in *-4k-qd32) ;; *) continue ;; esac
				fi
				run_case "$backend-$name-j$jobs" "$args" "$backend" "$jobs" "$first" "$last"
			done
		done
	done
done
unload_both
echo "BENCH-DONE"
