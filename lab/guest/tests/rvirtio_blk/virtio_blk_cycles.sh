#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The C virtio_blk: 100 load/I-O/unload cycles, then a hot-unplug under fio (the same script for both).
driver=virtio_blk
part=cycles
. /ferrite/tests/rvirtio_blk/vblk.inc
