#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs guest tests and reports them as KTAP on the results port (ttyS1); one subtest per
# script. Usage: run-tests.sh COMPONENT[/SCRIPT][,...]|all
# Each script's start and end are marked in the kernel log, so the host can pin a kernel
# report (oops, KASAN, lockdep, kmemleak...) on the test that caused it.
. /ferrite/lib.sh
out=/dev/ttyS1
[ -c "$out" ] || out=/dev/stdout
per_test_timeout=$(kernel_param ferrite.timeout || echo 600)

wanted=$(echo "${1:-all}" | tr ',' ' ')
[ "$wanted" = all ] && wanted=$(ls /ferrite/tests)

scripts=""
for c in $wanted; do
	# COMPONENT/SCRIPT: that one script (the host's FERRITE_SCRIPTS).
	if [ -f "/ferrite/tests/$c.sh" ]; then
		scripts="$scripts /ferrite/tests/$c.sh"
		continue
	fi
	if [ ! -d "/ferrite/tests/$c" ]; then
		echo "ferrite: no guest tests for component '$c'" >&2
		continue
	fi
	scripts="$scripts $(ls /ferrite/tests/$c/*.sh 2>/dev/null)"
done

kmemleak=/sys/kernel/debug/kmemleak
# Leaks from boot are not any test's doing.
[ -w $kmemleak ] && echo clear >$kmemleak

count=$(echo $scripts | wc -w)
leak_checks=0
[ -w $kmemleak ] && leak_checks=1
{
	echo "KTAP version 1"
	echo "1..$((count + leak_checks))"
} >$out

i=0
for s in $scripts; do
	i=$((i + 1))
	component=$(basename "$(dirname "$s")")
	name="$component/$(basename "$s" .sh)"
	echo "ferrite-test: begin $name" >/dev/kmsg
	echo "    # Subtest: $name" >$out
	{
		cd /tmp && timeout "$per_test_timeout" sh "$s" 2>/dev/console
		echo $? >/tmp/rc
	} | sed 's/^/    /' >$out
	rc=$(cat /tmp/rc)
	echo "ferrite-test: end $name" >/dev/kmsg
	if [ "$rc" = 0 ]; then
		echo "ok $i $name" >$out
	else
		case "$rc" in 124 | 143) why="timed out after ${per_test_timeout}s" ;; *) why="exited with status $rc" ;; esac
		echo "    not ok 999 - $name $why" >$out
		echo "not ok $i $name" >$out
	fi
done

if [ -w $kmemleak ]; then
	# kmemleak reports only objects older than 5 s.
	sleep 6
	echo scan >$kmemleak
	echo scan >$kmemleak
	if [ -s $kmemleak ]; then
		echo "ferrite: kmemleak found leaks:" >/dev/console
		head -n 60 $kmemleak >/dev/console
		echo "not ok $((count + 1)) kmemleak: no leaks after the tests" >$out
	else
		echo "ok $((count + 1)) kmemleak: no leaks after the tests" >$out
	fi
fi
echo "ferrite-tests: done" >$out
