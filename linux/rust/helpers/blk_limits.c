// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers for kernel::block::mq: the queue-limits update that blkdev.h declares static inline.
 */

#include <linux/blkdev.h>

__rust_helper struct queue_limits rust_helper_queue_limits_start_update(struct request_queue *q)
	__acquires(&q->limits_lock)
{
	return queue_limits_start_update(q);
}
