#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Landlock in Rust: what a sandbox (landlock-probe sandbox: create_ruleset, add_rule,
# restrict_self, exec) allows and denies, on tmpfs and for TCP.
. /ferrite/lib.sh

sb() { landlock-probe sandbox "$@"; }
denied() { ! "$@"; }
base="--ro /bin --ro /sbin --ro /usr --ro /lib --ro /lib64 --ro /dev --ro /proc"

d=/tmp/ll
rm -rf $d
mkdir -p $d/ro $d/rw $d/other
echo secret >$d/other/f
echo data >$d/ro/f
echo data >$d/rw/f

check "unsandboxed read works" cat $d/other/f
check "sandbox: read beneath a read-only rule" sb $base --ro $d/ro -- cat $d/ro/f
check "sandbox: read outside every rule is denied" denied sb $base --ro $d/ro -- cat $d/other/f
check "sandbox: listing outside every rule is denied" denied sb $base -- ls $d/other
check "sandbox: write beneath a read-only rule is denied" \
	denied sb $base --ro $d/ro -- sh -c "echo x >>$d/ro/f"
check "sandbox: write beneath a read-write rule" sb $base --rw $d/rw -- sh -c "echo x >>$d/rw/f"
check "sandbox: mkdir beneath a read-write rule" sb $base --rw $d/rw -- mkdir $d/rw/sub
check "sandbox: mkdir beneath a read-only rule is denied" denied sb $base --ro $d/ro -- mkdir $d/ro/sub
check "sandbox: unlink beneath a read-only rule is denied" denied sb $base --ro $d/ro -- rm $d/ro/f
check "sandbox: unlink beneath a read-write rule" sb $base --rw $d/rw -- rm $d/rw/f
check "sandbox: mkfifo beneath a read-only rule is denied" denied sb $base --ro $d/ro -- mkfifo $d/ro/p
check "sandbox: symlink beneath a read-write rule" sb $base --rw $d/rw -- ln -s f $d/rw/l
check "sandbox: truncate beneath a read-only rule is denied" \
	denied sb $base --ro $d/ro -- truncate -s 0 $d/ro/f
check "sandbox: rename within a directory" sb $base --rw $d/rw -- mv $d/rw/l $d/rw/l2
echo data >$d/rw/m
echo data >$d/rw/f2
expect_eq "sandbox: rename across directories without REFER is EXDEV" 18 \
	"$(sb $base --rw $d/rw --rw $d/other -- landlock-probe rename $d/rw/m $d/other/m)"
expect_eq "sandbox: link across directories without REFER is EXDEV" 18 \
	"$(sb $base --rw $d/rw --rw $d/other -- landlock-probe link $d/rw/m $d/other/m2)"
expect_eq "sandbox: rename across directories with REFER" 0 \
	"$(sb --fs 0x3fff $base --rw $d/rw --rw $d/other -- landlock-probe rename $d/rw/m $d/other/m)"
expect_eq "sandbox: rename into a more permissive directory is EXDEV" 18 \
	"$(sb --fs 0x3fff $base --rule 0x2120:$d/rw --rw $d/other -- landlock-probe rename $d/rw/f2 $d/other/f2)"
expect_eq "sandbox: rename into a less permissive directory" 0 \
	"$(sb --fs 0x3fff $base --rule 0x2120:$d/other --rw $d/rw -- landlock-probe rename $d/rw/f2 $d/other/f2)"
check "sandbox: executing outside every rule is denied" denied sb --ro /lib --ro /lib64 -- /bin/true
check "sandbox: mount is denied" denied sb $base --rw $d -- mount -t tmpfs none $d/rw
check "sandbox: nested sandboxes only shrink access" \
	denied sb $base --ro $d -- landlock-probe sandbox $base --ro $d/other -- cat $d/ro/f
check "sandbox: a second layer allowing the file" \
	sb $base --ro $d -- landlock-probe sandbox $base --ro $d/ro -- cat $d/ro/f
check "sandbox: /proc/self/ns (nsfs) stays reachable" sb $base -- ls -l /proc/self/ns/

ip link set lo up 2>/dev/null
expect_eq "tcp: connect to a closed port, unsandboxed" 111 "$(landlock-probe connect 4242)"
expect_eq "tcp: connect allowed by a port rule" 111 \
	"$(sb $base --net --connect 4242 -- landlock-probe connect 4242)"
expect_eq "tcp: connect to another port is denied" 13 \
	"$(sb $base --net --connect 4242 -- landlock-probe connect 4243)"
expect_eq "tcp: bind allowed by a port rule" 0 \
	"$(sb $base --net --bind 4244 -- landlock-probe bind 4244)"
expect_eq "tcp: bind to another port is denied" 13 \
	"$(sb $base --net --bind 4244 -- landlock-probe bind 4245)"

# UDP (ABI 10 rights): bind, connect (which also binds an unbound socket to an ephemeral port:
# BIND_UDP on port 0) and sendto with an address.
expect_eq "udp: bind allowed by a port rule" 0 \
	"$(sb $base --udp --udp-bind 5000 -- landlock-probe udp bind 5000)"
expect_eq "udp: bind to another port is denied" 13 \
	"$(sb $base --udp --udp-bind 5000 -- landlock-probe udp bind 5001)"
expect_eq "udp: a TCP-only sandbox does not restrict UDP" 0 \
	"$(sb $base --net -- landlock-probe udp bind 5002)"
expect_eq "udp: connect allowed by port rules (remote port, and port 0 for the autobind)" 0 \
	"$(sb $base --udp --udp-send 5353 --udp-bind 0 -- landlock-probe udp connect 5353)"
expect_eq "udp: connect without BIND_UDP on port 0 (autobind) is denied" 13 \
	"$(sb $base --udp --udp-send 5353 -- landlock-probe udp connect 5353)"
expect_eq "udp: connect to another port is denied" 13 \
	"$(sb $base --udp --udp-send 5353 --udp-bind 0 -- landlock-probe udp connect 5354)"
expect_eq "udp: sendto allowed by port rules" 0 \
	"$(sb $base --udp --udp-send 5353 --udp-bind 0 -- landlock-probe udp sendto 5353)"
expect_eq "udp: sendto another port is denied" 13 \
	"$(sb $base --udp --udp-send 5353 --udp-bind 0 -- landlock-probe udp sendto 5354)"

# Named UNIX sockets (RESOLVE_UNIX, ABI 9, bit 16): a server created outside the sandbox needs
# a rule; one created inside it does not.
landlock-probe unix-serve $d/other/sock 60 >/dev/null &
server=$!
for i in 1 2 3 4 5 6 7 8 9 10; do [ -S $d/other/sock ] && break; sleep 1; done
expect_eq "unix: send to a named socket, unsandboxed" 0 "$(landlock-probe unix-send $d/other/sock)"
expect_eq "unix: RESOLVE_UNIX not handled: send allowed" 0 \
	"$(sb $base -- landlock-probe unix-send $d/other/sock)"
expect_eq "unix: RESOLVE_UNIX handled, no rule: EACCES" 13 \
	"$(sb --fs 0x1ffff $base -- landlock-probe unix-send $d/other/sock)"
expect_eq "unix: RESOLVE_UNIX granted on the directory" 0 \
	"$(sb --fs 0x1ffff $base --rule 0x10000:$d/other -- landlock-probe unix-send $d/other/sock)"
expect_eq "unix: RESOLVE_UNIX granted on the socket file" 0 \
	"$(sb --fs 0x1ffff $base --rule 0x10000:$d/other/sock -- landlock-probe unix-send $d/other/sock)"
expect_eq "unix: a nested layer without the rule denies" 13 \
	"$(sb --fs 0x1ffff $base --rule 0x10000:$d/other -- \
		landlock-probe sandbox --fs 0x1ffff $base -- landlock-probe unix-send $d/other/sock)"
# (The server's output goes to stderr: /dev/null is read-only in the sandbox.)
expect_eq "unix: a server created in the same domain needs no rule" 0 \
	"$(sb --fs 0x1ffff $base --rule 0xffff:$d/rw -- sh -c \
		"landlock-probe unix-serve $d/rw/s2 5 >&2 & \
		 for i in 1 2 3 4 5; do [ -S $d/rw/s2 ] && break; sleep 1; done; \
		 landlock-probe unix-send $d/rw/s2")"
kill $server 2>/dev/null
wait $server 2>/dev/null
rm -rf $d
