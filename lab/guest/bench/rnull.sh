#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Benchmark suite `rnull`: the Rust rnull against the C null_blk, same device set-up, fio
# on the raw device. Pairs alternate Rust and C (Rust first in odd pairs, C first in even
# ones), each run on a freshly loaded module.
# Prints one `BENCH case=… side=… pair=… <fio json>` line per run.
. /ferrite/lib.sh
pairs=$(kernel_param ferrite.pairs || echo 5)
runtime=$(kernel_param ferrite.runtime || echo 3)

. /ferrite/bench/fio-cases.inc

echo "BENCH-META suite=rnull rust=rnull c=null_blk pairs=$pairs runtime=$runtime"
run_one() { # side case args
	driver=$1
	[ "$1" = rust ] && driver=rnull
	[ "$1" = c ] && driver=null_blk
	nullb_load "$driver" || { echo "BENCH-ERROR cannot load $driver"; return; }
	dev=$(nullb_create "$driver" bench 1024 4096) || { echo "BENCH-ERROR cannot create a $driver device"; nullb_unload "$driver"; return; }
	json=$(fio --name="$2" --filename="$dev" $3 --ioengine=libaio --direct=1 --time_based \
		--runtime="$runtime" --ramp_time=1 --size=1G --output-format=json 2>/dev/null | tr -d '\n\t')
	echo "BENCH case=$2 side=$1 pair=$4 $json"
	nullb_destroy "$driver" bench
	nullb_unload "$driver"
}
for pair in $(seq "$pairs"); do
	echo "$cases" | while IFS=: read -r name args; do
		for side in $(pair_order "$pair"); do
			run_one "$side" "$name" "$args" "$pair"
		done
	done
done
echo "BENCH-DONE"
