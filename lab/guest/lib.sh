# SPDX-License-Identifier: GPL-2.0
# Helpers for the guest's init, tests and benchmarks (busybox sh).

kernel_param() {
	for arg in $(cat /proc/cmdline); do
		case "$arg" in "$1"=*) echo "${arg#*=}"; return 0 ;; esac
	done
	return 1
}

# The order of the two sides in benchmark pair $1: Rust first in odd pairs, C first in even
# ones, so that whatever favours the first (or second) run of a pair falls on both sides.
pair_order() {
	if [ $(($1 % 2)) = 1 ]; then echo "rust c"; else echo "c rust"; fi
}

# The running kernel's Landlock ABI version (0 when Landlock is off or the probe missing).
landlock_abi() {
	v=$(landlock-probe abi 2>/dev/null | cut -d' ' -f1)
	echo "${v:-0}"
}

# Modules a shell or demo guest starts with: the virtio disk and NIC, and Ferrite's Rust
# components (listed one a line in /ferrite/modules).
load_default_modules() {
	for m in $(grep -v '^#' /ferrite/modules); do
		modprobe "$m" 2>/dev/null || echo "ferrite: could not load $m" >&2
	done
}

# --- TAP output for tests -------------------------------------------------------------
# Each test script prints its results to stdout; diagnostics go to stderr (the console).
tap_n=0
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() { tap_n=$((tap_n + 1)); echo "not ok $tap_n - $*"; }
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $1 # SKIP $2"; }

# check DESCRIPTION COMMAND...: passes when the command succeeds; otherwise shows its output.
check() {
	desc=$1
	shift
	if "$@" >/tmp/check.out 2>&1; then
		ok "$desc"
	else
		not_ok "$desc"
		sed 's/^/# /' /tmp/check.out | head -n 20
		sed 's/^/check failed: /' /tmp/check.out | head -n 20 >&2
	fi
}

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		echo "# expected '$2', got '$3'"
	fi
}

# wait_for PATH [TENTHS]: waits (default 5 s) for a file to appear.
wait_for() {
	n=${2:-50}
	while [ ! -e "$1" ] && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	[ -e "$1" ]
}

# --- null block devices: the C null_blk and the Rust rnull through one interface ------
# nullb_load DRIVER: loads the module without default devices.
nullb_load() {
	case "$1" in
	null_blk) modprobe null_blk nr_devices=0 ;;
	rnull) modprobe rnull_mod ;;
	esac
}

nullb_unload() {
	case "$1" in
	null_blk) rmmod null_blk ;;
	rnull) rmmod rnull_mod ;;
	esac
}

nullb_configfs() {
	case "$1" in
	null_blk) echo /sys/kernel/config/nullb ;;
	rnull) echo /sys/kernel/config/rnull ;;
	esac
}

# nullb_create DRIVER NAME SIZE_MIB BLOCK_SIZE: a powered-on device with the same queue
# set-up on both sides (one hardware queue of depth 256, completion in the submitter, no
# I/O scheduler); prints its /dev path.
nullb_create() {
	dir=$(nullb_configfs "$1")/$2
	mkdir "$dir" || return 1
	echo "$3" >"$dir/size" || return 1
	echo "$4" >"$dir/blocksize" || return 1
	echo 0 >"$dir/irqmode" || return 1
	if [ "$1" = null_blk ]; then
		echo 1 >"$dir/submit_queues"
		echo 256 >"$dir/hw_queue_depth"
		echo 2 >"$dir/queue_mode"
	fi
	echo 1 >"$dir/power" || return 1
	# Both name the disk after its configfs directory.
	name=$2
	wait_for "/dev/$name" || return 1
	[ -w "/sys/block/$name/queue/scheduler" ] && echo none >"/sys/block/$name/queue/scheduler"
	echo "/dev/$name"
}

nullb_destroy() {
	dir=$(nullb_configfs "$1")/$2
	echo 0 >"$dir/power" 2>/dev/null
	rmdir "$dir"
}
