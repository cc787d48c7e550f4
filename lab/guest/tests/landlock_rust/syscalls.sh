#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Landlock in Rust: the LSM is registered as "landlock", the ABI probe, and the errnos of
# the three system calls on malformed and hostile input (landlock-probe errnos).
. /ferrite/lib.sh

# (Not from dmesg: after a whole test run the boot messages have left the ring buffer.)
check "the Rust Landlock is the one built in" grep -q " landlock_rust_sys_create_ruleset$" /proc/kallsyms
lsms=" $(landlock-probe lsms) "
case "$lsms" in
*" 110 "*) ok "lsm_list_modules(2) lists LSM_ID_LANDLOCK" ;;
*) not_ok "lsm_list_modules(2) lists LSM_ID_LANDLOCK (got:$lsms)" ;;
esac
abi=$(landlock-probe abi)
expect_eq "ABI version and errata" "11 15" "$abi"
landlock-probe errnos >/tmp/errnos.out 2>&1
while read -r verdict rest; do
	case "$verdict" in
	PASS) ok "errno: $rest" ;;
	FAIL) not_ok "errno: $rest" ;;
	*) echo "# $verdict $rest" ;;
	esac
done </tmp/errnos.out
check "add_rule from 4 threads while 2 threads enforce the ruleset" landlock-probe race
