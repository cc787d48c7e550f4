#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The C null_blk, held to the same checks as the Rust rnull.
driver=null_blk
. /ferrite/tests/rnull/nullb.inc
