#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The kernel's sample sandboxer (samples/landlock/sandboxer.c) as a user runs it: a sandboxed
# shell reads only what LL_FS_RO allows, writes only beneath LL_FS_RW, connects only to the
# LL_TCP_CONNECT ports, and each denial is logged by audit (no auditd in the guest:
# `ll-audit collect` takes its place and prints the records; the kernel log would lose some
# to printk's rate limit).
. /ferrite/lib.sh

d=/tmp/sbx
rm -rf $d
mkdir -p $d/ro $d/rw $d/secret
echo public >$d/ro/file
echo secret >$d/secret/file
ip link set lo up

# LL_FORCE_LOG=1 (log the denials of this same exec) needs ABI 7: the sample refuses it on an
# older ABI, so there the sandbox's own checks run without it and only the audit checks fail.
force_log=1
[ "$(landlock_abi)" -ge 7 ] || force_log=
sbx() {
	LL_FS_RO=/bin:/sbin:/usr:/etc:/dev:/proc:$d/ro LL_FS_RW=$d/rw LL_TCP_CONNECT=7001 \
		env ${force_log:+LL_FORCE_LOG=$force_log} sandboxer "$@"
}

# must_fail DESCRIPTION PATTERN COMMAND...: the command fails and says PATTERN.
must_fail() {
	desc=$1
	pattern=$2
	shift 2
	if "$@" >/tmp/sbx.out 2>&1; then
		not_ok "$desc"
		echo "# it succeeded:"
		sed 's/^/# /' /tmp/sbx.out | head -n 10
	elif grep -q "$pattern" /tmp/sbx.out; then
		ok "$desc"
	else
		not_ok "$desc"
		echo "# failed without '$pattern':"
		sed 's/^/# /' /tmp/sbx.out | head -n 10
	fi
}

ll-audit collect >/tmp/sbx-audit &
collector=$!
sleep 0.5
check "ll-audit collects audit records" kill -0 $collector

check "a sandboxed shell runs" sbx /bin/sh -c true
expect_eq "a sandboxed shell reads a file of LL_FS_RO" public "$(sbx /bin/sh -c "cat $d/ro/file" 2>/dev/null)"
must_fail "a sandboxed shell cannot read a file outside LL_FS_RO/RW" "Permission denied" \
	sbx /bin/sh -c "cat $d/secret/file"
must_fail "a sandboxed shell cannot list a directory outside" "Permission denied" \
	sbx /bin/sh -c "ls $d/secret"
check "a sandboxed shell writes beneath LL_FS_RW" sbx /bin/sh -c "echo x >$d/rw/new && cat $d/rw/new"
must_fail "a sandboxed shell cannot write beneath LL_FS_RO" "Permission denied" \
	sbx /bin/sh -c "echo x >$d/ro/new"
# A copy of busybox outside the allowed paths, named after an applet.
cp /bin/busybox $d/secret/true
must_fail "a sandboxed shell cannot run a program outside" "Permission denied" \
	sbx /bin/sh -c "$d/secret/true"
expect_eq "outside the sandbox the secret is readable" secret "$(cat $d/secret/file)"

# TCP: a listener on each port outside the sandbox; only 7001 is in LL_TCP_CONNECT.
nc -l -p 7001 >/tmp/sbx-7001.out </dev/null &
l1=$!
nc -l -p 7002 >/tmp/sbx-7002.out </dev/null &
l2=$!
sleep 0.5
check "a sandboxed shell connects to an LL_TCP_CONNECT port" \
	sbx /bin/sh -c "echo hello | nc -w 2 127.0.0.1 7001"
must_fail "a sandboxed shell cannot connect to another port" "Permission denied" \
	sbx /bin/sh -c "echo hello | nc -w 2 127.0.0.1 7002"
check "outside the sandbox that port accepts" sh -c "echo hello | nc -w 2 127.0.0.1 7002"
kill $l1 $l2 2>/dev/null
wait $l1 $l2 2>/dev/null

# The audit records of the denials above (kauditd sends them asynchronously).
sleep 1
kill $collector
wait $collector 2>/dev/null
grep '^type=142[34]' /tmp/sbx-audit | head -n 20 | sed 's/^/# /'
check "the denied read is in the audit log" \
	grep -q "^type=1423 .*blockers=fs\.read_file .*secret" /tmp/sbx-audit
check "the denied listing is in the audit log" \
	grep -q "^type=1423 .*blockers=fs\.read_dir .*secret" /tmp/sbx-audit
check "the denied write is in the audit log" \
	grep -q "^type=1423 .*blockers=fs\.make_reg .*/tmp/sbx/ro" /tmp/sbx-audit
check "the denied connect is in the audit log" \
	grep -q "^type=1423 .*blockers=net\.connect_tcp daddr=127" /tmp/sbx-audit
check "the domains are in the audit log" grep -q "^type=1424 .*status=allocated" /tmp/sbx-audit
check "ll-audit turns audit off" ll-audit off
