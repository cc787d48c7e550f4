#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Benchmark suite `landlock`: one batch of every case on this boot's Landlock (C or Rust:
# they are different kernels, so the host alternates boots, one batch a boot). Prints one
# `BENCH-VALUE case=… side=… pair=… figure=value…` line per case.
#   ll-bench (lab/landlock/ll-bench.c): open/stat of a file 32 directories deep, in a
#     sandbox of 0, 1 or 16 layers, each with a rule at the top of the chain and 1000 decoys.
#   fs_bench (tools/testing/selftests/landlock): denied creation 1000 directories deep, every
#     directory with a rule; system time per call.
. /ferrite/lib.sh
side=$(kernel_param ferrite.side || echo c)
pair=$(kernel_param ferrite.pair || echo 1)
runtime=$(kernel_param ferrite.runtime || echo 3)
echo "BENCH-META suite=landlock side=$side pair=$pair runtime=$runtime kernel=$(uname -r)"
cd /tmp || exit 1

cases="open-d32-l0:open 32 0 0
open-d32-l1:open 32 1 0
open-d32-l16-r1000:open 32 16 1000
open-denied-d32-l16-r1000:open-denied 32 16 1000
stat-d32-l16-r1000:stat 32 16 1000"
echo "$cases" | while IFS=: read -r name args; do
	if out=$(ll-bench $args "$runtime" 2>&1); then
		echo "BENCH-VALUE case=$name side=$side pair=$pair $out"
	else
		echo "BENCH-ERROR ll-bench $args: $out"
	fi
	rm -rf /tmp/llb /tmp/llb-decoys
done

# fs_bench counts system time in clock ticks (USER_HZ, 100 a second). It wants ABI 7 or later
# for its sandboxed case: on an older ABI that case is left out (the report shows it for one
# side only). Its baseline (-L) creates file.txt in the deepest directory and then fails to
# remove that directory (ENOTEMPTY) after printing its figures: the figure line is what counts.
n=5000
abi=$(landlock_abi)
for mode in landlock baseline; do
	flag=""
	[ $mode = baseline ] && flag=-L
	if [ $mode = landlock ] && [ "$abi" -lt 7 ]; then
		echo "BENCH-NOTE fs_bench needs Landlock ABI 7, this kernel has $abi: case left out"
		continue
	fi
	mkdir -p /tmp/fsb && cd /tmp/fsb || exit 1
	out=$(/opt/landlock/selftests/fs_bench $flag -d 1000 -n $n 2>&1)
	ticks=$(echo "$out" | sed -n 's/^System: \([0-9]*\) clocks/\1/p')
	if [ -n "$ticks" ]; then
		us=$(awk -v t="$ticks" -v n="$n" 'BEGIN { printf "%.3f", t * 10000 / n }')
		echo "BENCH-VALUE case=fs_bench-d1000-$mode side=$side pair=$pair sys_us_per_op=$us"
	else
		echo "BENCH-ERROR fs_bench $flag: $(echo "$out" | tail -n 3)"
	fi
	cd /tmp && rm -rf /tmp/fsb
done
echo "BENCH-DONE"
