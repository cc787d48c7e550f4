// SPDX-License-Identifier: GPL-2.0

//! This module provides the `TagSet` struct to wrap the C `struct blk_mq_tag_set`.
//!
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use core::pin::Pin;

use crate::{
    bindings,
    block::mq::{operations::OperationsVTable, request::RequestDataWrapper, Operations},
    error::{self, Result},
    prelude::try_pin_init,
    types::Opaque,
};
use crate::{device::Device, sync::aref::ARef};
use core::marker::PhantomData;
use pin_init::{pin_data, pinned_drop, PinInit};

/// A wrapper for the C `struct blk_mq_tag_set`.
///
/// `struct blk_mq_tag_set` contains a `struct list_head` and so must be pinned.
///
/// # Invariants
///
/// - `inner` is initialized and valid.
#[pin_data(PinnedDrop)]
pub struct TagSet<T: Operations> {
    #[pin]
    inner: Opaque<bindings::blk_mq_tag_set>,
    /// The device whose interrupt affinity maps CPUs to hardware queues, if any: referenced
    /// from `inner.driver_data` (read by the `map_queues` callback) as long as the tag set
    /// lives.
    irq_device: Option<ARef<Device>>,
    _p: PhantomData<T>,
}

impl<T: Operations> TagSet<T> {
    /// Try to create a new tag set
    pub fn new(
        nr_hw_queues: u32,
        num_tags: u32,
        num_maps: u32,
    ) -> impl PinInit<Self, error::Error> {
        Self::new_with_sg(nr_hw_queues, num_tags, num_maps, 0)
    }

    /// Creates a tag set whose requests each carry `sg_entries` inline scatterlist entries in
    /// their private data (for [`Request::into_device`](super::Request::into_device), which
    /// maps a request of up to that many segments without allocating, and chains pool entries
    /// for larger ones).
    pub fn new_with_sg(
        nr_hw_queues: u32,
        num_tags: u32,
        num_maps: u32,
        sg_entries: u32,
    ) -> impl PinInit<Self, error::Error> {
        Self::build(nr_hw_queues, num_tags, num_maps, sg_entries, None)
    }

    /// Like [`TagSet::new_with_sg`] with one map, whose CPUs are assigned to hardware queue
    /// `i` as the kernel spread interrupt vector `i` of `dev` (`blk_mq_map_hw_queues`, e.g.
    /// after [`virtio::Queues::new_spread`](crate::virtio::Queues::new_spread)): a request
    /// completes on a CPU that submitted it, which saves a cross-CPU wakeup per request and
    /// keeps per-CPU caches (the block layer's bio cache) warm. Without spread vectors the
    /// block layer's default mapping applies.
    pub fn new_for_device_irqs(
        dev: &Device,
        nr_hw_queues: u32,
        num_tags: u32,
        sg_entries: u32,
    ) -> impl PinInit<Self, error::Error> {
        Self::build(nr_hw_queues, num_tags, 1, sg_entries, Some(dev.into()))
    }

    fn build(
        nr_hw_queues: u32,
        num_tags: u32,
        num_maps: u32,
        sg_entries: u32,
        irq_device: Option<ARef<Device>>,
    ) -> impl PinInit<Self, error::Error> {
        let driver_data = irq_device.as_ref().map_or(core::ptr::null_mut(), |d| {
            d.as_raw().cast::<crate::ffi::c_void>()
        });
        let tag_set: bindings::blk_mq_tag_set = pin_init::zeroed();
        let tag_set: Result<_> = RequestDataWrapper::pdu_size(sg_entries)
            .ok_or(error::code::EINVAL)
            .map(|cmd_size| {
                bindings::blk_mq_tag_set {
                    ops: OperationsVTable::<T>::build(),
                    nr_hw_queues,
                    timeout: 0, // 0 means default which is 30Hz in C
                    numa_node: bindings::NUMA_NO_NODE,
                    queue_depth: num_tags,
                    cmd_size,
                    flags: 0,
                    driver_data,
                    nr_maps: num_maps,
                    ..tag_set
                }
            })
            .map(Opaque::new);

        try_pin_init!(TagSet {
            inner <- tag_set.pin_chain(|tag_set| {
                // SAFETY: we do not move out of `tag_set`.
                let tag_set: &mut Opaque<_> = unsafe { Pin::get_unchecked_mut(tag_set) };
                // SAFETY: `tag_set` is a reference to an initialized `blk_mq_tag_set`.
                error::to_result( unsafe { bindings::blk_mq_alloc_tag_set(tag_set.get())})
            }),
            irq_device,
            _p: PhantomData,
        })
    }

    /// Return the pointer to the wrapped `struct blk_mq_tag_set`
    pub(crate) fn raw_tag_set(&self) -> *mut bindings::blk_mq_tag_set {
        self.inner.get()
    }
}

// SAFETY: A `struct blk_mq_tag_set` is not tied to a thread; the block layer serializes
// changes to it with its own locks, and `TagSet` has no `&mut self` methods.
unsafe impl<T: Operations> Send for TagSet<T> {}

// SAFETY: See above: shared access only passes the tag set to block-layer functions, which
// synchronize internally.
unsafe impl<T: Operations> Sync for TagSet<T> {}

#[pinned_drop]
impl<T: Operations> PinnedDrop for TagSet<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By type invariant `inner` is valid and has been properly
        // initialized during construction.
        unsafe { bindings::blk_mq_free_tag_set(self.inner.get()) };
    }
}
