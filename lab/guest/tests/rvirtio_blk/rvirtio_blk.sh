#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The Rust rvirtio_blk, held to the same checks as the C virtio_blk.
driver=rvirtio_blk
. /ferrite/tests/rvirtio_blk/vblk.inc
