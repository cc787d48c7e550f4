#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The kernel's Landlock selftest tsync_test, one result a test (see selftest.inc).
. /ferrite/tests/landlock/selftest.inc
run_selftest tsync_test
