// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers for kernel::virtio: the virtio core's static inline functions and the calls
 * through a device's `virtio_config_ops` table, which Rust cannot reach directly.
 */

#include <linux/virtio.h>
#include <linux/virtio_config.h>

__rust_helper bool rust_helper_virtio_test_feature(const struct virtio_device *vdev,
						   unsigned int fbit)
{
	/* The caller checked fbit < VIRTIO_FEATURES_BITS and that the driver offered it. */
	return __virtio_test_bit(vdev, fbit);
}

__rust_helper bool rust_helper_virtio_is_little_endian(struct virtio_device *vdev)
{
	return virtio_is_little_endian(vdev);
}

__rust_helper int rust_helper_virtio_find_vqs(struct virtio_device *vdev, unsigned int nvqs,
					      struct virtqueue *vqs[],
					      struct virtqueue_info vqs_info[],
					      struct irq_affinity *desc)
{
	return virtio_find_vqs(vdev, nvqs, vqs, vqs_info, desc);
}

__rust_helper void rust_helper_virtio_del_vqs(struct virtio_device *vdev)
{
	vdev->config->del_vqs(vdev);
}

__rust_helper void rust_helper_virtio_device_ready(struct virtio_device *vdev)
{
	virtio_device_ready(vdev);
}

__rust_helper void rust_helper_virtio_config_get(struct virtio_device *vdev, unsigned int offset,
						 void *buf, unsigned int len)
{
	vdev->config->get(vdev, offset, buf, len);
}

__rust_helper u32 rust_helper_virtio_config_generation(struct virtio_device *vdev)
{
	return vdev->config->generation ? vdev->config->generation(vdev) : 0;
}

__rust_helper u8 rust_helper_virtio_get_status(struct virtio_device *vdev)
{
	return vdev->config->get_status(vdev);
}

__rust_helper void rust_helper_virtio_synchronize_cbs(struct virtio_device *vdev)
{
	virtio_synchronize_cbs(vdev);
}

__rust_helper void rust_helper_virtio_config_set(struct virtio_device *vdev, unsigned int offset,
						 const void *buf, unsigned int len)
{
	vdev->config->set(vdev, offset, buf, len);
}
