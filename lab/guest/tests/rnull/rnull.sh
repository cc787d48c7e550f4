#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The Rust rnull (drivers/block/rnull), held to the same checks as the C null_blk.
driver=rnull
. /ferrite/tests/rnull/nullb.inc
