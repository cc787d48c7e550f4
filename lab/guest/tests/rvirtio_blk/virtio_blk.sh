#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The C virtio_blk, held to the same checks as the Rust rvirtio_blk.
driver=virtio_blk
. /ferrite/tests/rvirtio_blk/vblk.inc
