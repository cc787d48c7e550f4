#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Hostile input for the three Landlock system calls (lab/landlock/ll-hostile.c): malformed
# and oversized attributes, bad and foreign fds, unknown flags and rule types, the layer
# limit, 2000 rules, and add_rule against restrict_self races from many threads, each with
# the exact errno the C Landlock returns.
. /ferrite/lib.sh
cd /tmp && ll-hostile
