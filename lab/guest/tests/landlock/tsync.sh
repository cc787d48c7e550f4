#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# LANDLOCK_RESTRICT_SELF_TSYNC beyond what tsync_test checks (there: return values and
# no_new_privs): that the other threads are really sandboxed afterwards, also threads that
# appear while the call runs (a chain of threads, each starting the next), and that without
# the flag they are not. `landlock-probe tsync` denies every file read.
. /ferrite/lib.sh

f=/tmp/tsync-file
echo data >$f
# probe THREADS FLAGS [churn]
probe() {
	n=$1
	flags=$2
	shift 2
	landlock-probe tsync "$n" "$flags" $f "$@"
}
expect() {
	want=$1
	shift
	got=$(probe "$@")
	[ "$got" = "$want" ] || { echo "tsync $*: got '$got', want '$want'"; return 1; }
}

check "without TSYNC only the calling thread is sandboxed" \
	expect "main 1 denied 0/4 nnp 4/4 chain -" 4 0
check "TSYNC sandboxes every thread" expect "main 1 denied 4/4 nnp 4/4 chain -" 4 8
check "TSYNC with NO_NEW_PRIVS sets no_new_privs on every thread" \
	expect "main 1 denied 4/4 nnp 4/4 chain -" 4 18
check "TSYNC with 32 threads" expect "main 1 denied 32/32 nnp 32/32 chain -" 32 8
# The chain creates threads all along: those cloned before their parent took the new
# credentials must be found by the call's next look.
i=0
while [ $i -lt 10 ]; do
	i=$((i + 1))
	check "TSYNC while threads come and go ($i)" expect "main 1 denied 2/2 nnp 2/2 chain 1" 2 8 churn
done
check "without TSYNC the chain is not sandboxed" expect "main 1 denied 0/2 nnp 2/2 chain 0" 2 0 churn
