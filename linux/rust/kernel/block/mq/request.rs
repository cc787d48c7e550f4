// SPDX-License-Identifier: GPL-2.0

//! This module provides a wrapper for the C `struct request` type.
//!
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use crate::{
    bindings,
    block::mq::Operations,
    error::Result,
    prelude::KVec,
    sync::{
        aref::{ARef, AlwaysRefCounted},
        atomic::Relaxed,
        Refcount,
    },
    types::Opaque,
};
use core::{marker::PhantomData, ptr::NonNull};

/// A wrapper around a blk-mq [`struct request`]. This represents an IO request.
///
/// # Implementation details
///
/// There are four states for a request that the Rust bindings care about:
///
/// 1. Request is owned by block layer (refcount 0).
/// 2. Request is owned by driver but with zero [`ARef`]s in existence
///    (refcount 1).
/// 3. Request is owned by driver with exactly one [`ARef`] in existence
///    (refcount 2).
/// 4. Request is owned by driver with more than one [`ARef`] in existence
///    (refcount > 2).
///
///
/// We need to track 1 and 2 to ensure we fail tag to request conversions for
/// requests that are not owned by the driver.
///
/// We need to track 3 and 4 to ensure that it is safe to end the request and hand
/// back ownership to the block layer.
///
/// Note that the driver can still obtain new `ARef` even if there is no `ARef`s in existence by
/// using `tag_to_rq`, hence the need to distinguish B and C.
///
/// The states are tracked through the private `refcount` field of
/// `RequestDataWrapper`. This structure lives in the private data area of the C
/// [`struct request`].
///
/// # Invariants
///
/// * `self.0` is a valid [`struct request`] created by the C portion of the
///   kernel.
/// * The private data area associated with this request must be an initialized
///   and valid `RequestDataWrapper<T>`.
/// * `self` is reference counted by atomic modification of
///   `self.wrapper_ref().refcount()`.
///
/// [`struct request`]: srctree/include/linux/blk-mq.h
///
#[repr(transparent)]
pub struct Request<T>(Opaque<bindings::request>, PhantomData<T>);

impl<T: Operations> Request<T> {
    /// Create an [`ARef<Request>`] from a [`struct request`] pointer.
    ///
    /// # Safety
    ///
    /// * The caller must own a refcount on `ptr` that is transferred to the
    ///   returned [`ARef`].
    /// * The type invariants for [`Request`] must hold for the pointee of `ptr`.
    ///
    /// [`struct request`]: srctree/include/linux/blk-mq.h
    pub(crate) unsafe fn aref_from_raw(ptr: *mut bindings::request) -> ARef<Self> {
        // INVARIANT: By the safety requirements of this function, invariants are upheld.
        // SAFETY: By the safety requirement of this function, we own a
        // reference count that we can pass to `ARef`.
        unsafe { ARef::from_raw(NonNull::new_unchecked(ptr.cast())) }
    }

    /// Notify the block layer that a request is going to be processed now.
    ///
    /// The block layer uses this hook to do proper initializations such as
    /// starting the timeout timer. It is a requirement that block device
    /// drivers call this function when starting to process a request.
    ///
    /// # Safety
    ///
    /// The caller must have exclusive ownership of `self`, that is
    /// `self.wrapper_ref().refcount() == 2`.
    pub(crate) unsafe fn start_unchecked(this: &ARef<Self>) {
        // SAFETY: By type invariant, `self.0` is a valid `struct request` and
        // we have exclusive access.
        unsafe { bindings::blk_mq_start_request(this.0.get()) };
    }

    /// Try to take exclusive ownership of `this` by dropping the refcount to 0.
    /// This fails if `this` is not the only [`ARef`] pointing to the underlying
    /// [`Request`].
    ///
    /// If the operation is successful, [`Ok`] is returned with a pointer to the
    /// C [`struct request`]. If the operation fails, `this` is returned in the
    /// [`Err`] variant.
    ///
    /// [`struct request`]: srctree/include/linux/blk-mq.h
    fn try_set_end(this: ARef<Self>) -> Result<*mut bindings::request, ARef<Self>> {
        // To hand back the ownership, we need the current refcount to be 2.
        // Since we can race with `TagSet::tag_to_rq`, this needs to atomically reduce
        // refcount to 0. `Refcount` does not provide a way to do this, so use the underlying
        // atomics directly.
        if let Err(_old) = this
            .wrapper_ref()
            .refcount()
            .as_atomic()
            .cmpxchg(2, 0, Relaxed)
        {
            return Err(this);
        }

        let request_ptr = this.0.get();
        core::mem::forget(this);

        Ok(request_ptr)
    }

    /// Notify the block layer that the request has been completed without errors.
    ///
    /// This function will return [`Err`] if `this` is not the only [`ARef`]
    /// referencing the request.
    pub fn end_ok(this: ARef<Self>) -> Result<(), ARef<Self>> {
        let request_ptr = Self::try_set_end(this)?;

        // SAFETY: By type invariant, `this.0` was a valid `struct request`. The
        // success of the call to `try_set_end` guarantees that there are no
        // `ARef`s pointing to this request. Therefore it is safe to hand it
        // back to the block layer.
        unsafe {
            bindings::blk_mq_end_request(
                request_ptr,
                bindings::BLK_STS_OK as bindings::blk_status_t,
            )
        };

        Ok(())
    }

    /// Complete the request by scheduling `Operations::complete` for
    /// execution.
    ///
    /// The function may be scheduled locally, via SoftIRQ or remotely via IPMI.
    /// See `blk_mq_complete_request_remote` in [`blk-mq.c`] for details.
    ///
    /// [`blk-mq.c`]: srctree/block/blk-mq.c
    pub fn complete(this: ARef<Self>) {
        let ptr = ARef::into_raw(this).cast::<bindings::request>().as_ptr();
        // SAFETY: By type invariant, `self.0` is a valid `struct request`
        if !unsafe { bindings::blk_mq_complete_request_remote(ptr) } {
            // SAFETY: We released a refcount above that we can reclaim here.
            let this = unsafe { Request::aref_from_raw(ptr) };
            T::complete(this);
        }
    }

    fn raw(&self) -> *mut bindings::request {
        self.0.get()
    }

    /// The operation the request asks for.
    pub fn operation(&self) -> Operation {
        // SAFETY: By type invariant `self.0` is a valid request; `cmd_flags` does not change
        // while the driver owns it.
        Operation::from_raw(unsafe { (*self.raw()).cmd_flags })
    }

    /// The first sector (512 bytes) the request addresses.
    pub fn sector(&self) -> u64 {
        // SAFETY: By type invariant `self.0` is a valid request.
        unsafe { (*self.raw()).__sector }
    }

    /// The number of bytes the request still has to transfer.
    pub fn bytes(&self) -> u32 {
        // SAFETY: By type invariant `self.0` is a valid request.
        unsafe { (*self.raw()).__data_len }
    }

    /// Whether the request asks for forced unit access (written through any write cache).
    pub fn is_fua(&self) -> bool {
        // SAFETY: By type invariant `self.0` is a valid request.
        let flags = unsafe { (*self.raw()).cmd_flags };
        flags & (1 << bindings::req_flag_bits___REQ_FUA) != 0
    }

    /// Whether the request asks for a cache flush before it.
    pub fn is_preflush(&self) -> bool {
        // SAFETY: By type invariant `self.0` is a valid request.
        let flags = unsafe { (*self.raw()).cmd_flags };
        flags & (1 << bindings::req_flag_bits___REQ_PREFLUSH) != 0
    }

    /// The number of physical segments of the request's data.
    pub fn nr_phys_segments(&self) -> u16 {
        // SAFETY: By type invariant `self.0` is a valid request.
        unsafe { (*self.raw()).nr_phys_segments }
    }

    /// The index of the hardware queue the request was queued on.
    pub fn hw_queue_index(&self) -> u32 {
        // SAFETY: By type invariant `self.0` is a valid request; a request queued to a driver
        // has a hardware context, which outlives it.
        unsafe {
            let hctx = (*self.raw()).mq_hctx;
            if hctx.is_null() {
                0
            } else {
                (*hctx).queue_num
            }
        }
    }

    /// Notify the block layer that the request has been completed, successfully or with the
    /// error `status` (mapped to a block status, e.g. `EIO` to `BLK_STS_IOERR`, `EOPNOTSUPP` to
    /// `BLK_STS_NOTSUPP`).
    ///
    /// This function will return [`Err`] if `this` is not the only [`ARef`]
    /// referencing the request.
    pub fn end(this: ARef<Self>, status: Result) -> Result<(), ARef<Self>> {
        let request_ptr = Self::try_set_end(this)?;
        let status = match status {
            Ok(()) => bindings::BLK_STS_OK as bindings::blk_status_t,
            Err(e) => e.to_blk_status(),
        };
        // SAFETY: As in `end_ok`: no other `ARef` exists, the request goes back to the block
        // layer.
        unsafe { bindings::blk_mq_end_request(request_ptr, status) };
        Ok(())
    }

    /// Maps the request's data to a scatter-gather list for a device, keeping the request
    /// (and so its pages) alive in the returned [`SgMapping`]. `device_writes` says whether the
    /// device writes the data (a read) or reads it. A request without data pages (flush,
    /// discard, write-zeroes, secure erase) maps to an empty list, still holding the request.
    /// On failure the request is given back.
    pub fn map_sg(
        this: ARef<Self>,
        device_writes: bool,
        flags: crate::alloc::Flags,
    ) -> Result<SgMapping<T>, (crate::error::Error, ARef<Self>)> {
        let segs = usize::from(this.nr_phys_segments());
        let mut sg: KVec<bindings::scatterlist> = KVec::new();
        // Only these operations carry data pages (a discard's "segments" are its bios).
        let has_data = matches!(
            this.operation(),
            Operation::Read | Operation::Write | Operation::DriverIn | Operation::DriverOut
        );
        if !has_data || segs == 0 || this.bytes() == 0 {
            return Ok(SgMapping {
                rq: this,
                sg,
                nents: 0,
                device_writes,
            });
        }
        let fill = (|| -> Result<()> {
            sg.reserve(segs, flags)?;
            for _ in 0..segs {
                sg.push(pin_init::zeroed(), flags)?;
            }
            Ok(())
        })();
        if let Err(e) = fill {
            return Err((e, this));
        }
        let Ok(segs_u32) = u32::try_from(segs) else {
            return Err((crate::error::code::EINVAL, this));
        };
        // SAFETY: `sg` holds `segs` entries.
        unsafe { bindings::sg_init_table(sg.as_mut_ptr(), segs_u32) };
        let mut last: *mut bindings::scatterlist = core::ptr::null_mut();
        // SAFETY: By type invariant `this.0` is a valid request owned by the driver; `sg` has
        // room for its `nr_phys_segments` entries, the most the block layer maps.
        let n = unsafe { bindings::__blk_rq_map_sg(this.raw(), sg.as_mut_ptr(), &mut last) };
        let nents = match u32::try_from(n) {
            Ok(n) if n > 0 && n <= segs_u32 => n,
            _ => return Err((crate::error::code::EIO, this)),
        };
        Ok(SgMapping {
            rq: this,
            sg,
            nents,
            device_writes,
        })
    }

    /// Return a pointer to the [`RequestDataWrapper`] stored in the private area
    /// of the request structure.
    ///
    /// # Safety
    ///
    /// - `this` must point to a valid allocation of size at least size of
    ///   [`Self`] plus size of [`RequestDataWrapper`].
    pub(crate) unsafe fn wrapper_ptr(this: *mut Self) -> NonNull<RequestDataWrapper> {
        let request_ptr = this.cast::<bindings::request>();
        // SAFETY: By safety requirements for this function, `this` is a
        // valid allocation.
        let wrapper_ptr =
            unsafe { bindings::blk_mq_rq_to_pdu(request_ptr).cast::<RequestDataWrapper>() };
        // SAFETY: By C API contract, `wrapper_ptr` points to a valid allocation
        // and is not null.
        unsafe { NonNull::new_unchecked(wrapper_ptr) }
    }

    /// Return a reference to the [`RequestDataWrapper`] stored in the private
    /// area of the request structure.
    pub(crate) fn wrapper_ref(&self) -> &RequestDataWrapper {
        // SAFETY: By type invariant, `self.0` is a valid allocation. Further,
        // the private data associated with this request is initialized and
        // valid. The existence of `&self` guarantees that the private data is
        // valid as a shared reference.
        unsafe { Self::wrapper_ptr(core::ptr::from_ref(self).cast_mut()).as_ref() }
    }
}

/// A wrapper around data stored in the private area of the C [`struct request`].
///
/// [`struct request`]: srctree/include/linux/blk-mq.h
pub(crate) struct RequestDataWrapper {
    /// The Rust request refcount has the following states:
    ///
    /// - 0: The request is owned by C block layer.
    /// - 1: The request is owned by Rust abstractions but there are no [`ARef`] references to it.
    /// - 2+: There are [`ARef`] references to the request.
    refcount: Refcount,
}

impl RequestDataWrapper {
    /// Return a reference to the refcount of the request that is embedding
    /// `self`.
    pub(crate) fn refcount(&self) -> &Refcount {
        &self.refcount
    }

    /// Return a pointer to the refcount of the request that is embedding the
    /// pointee of `this`.
    ///
    /// # Safety
    ///
    /// - `this` must point to a live allocation of at least the size of `Self`.
    pub(crate) unsafe fn refcount_ptr(this: *mut Self) -> *mut Refcount {
        // SAFETY: Because of the safety requirements of this function, the
        // field projection is safe.
        unsafe { &raw mut (*this).refcount }
    }
}

// SAFETY: Exclusive access is thread-safe for `Request`. `Request` has no `&mut
// self` methods and `&self` methods that mutate `self` are internally
// synchronized.
unsafe impl<T: Operations> Send for Request<T> {}

// SAFETY: Shared access is thread-safe for `Request`. `&self` methods that
// mutate `self` are internally synchronized`
unsafe impl<T: Operations> Sync for Request<T> {}

// SAFETY: All instances of `Request<T>` are reference counted. This
// implementation of `AlwaysRefCounted` ensure that increments to the ref count
// keeps the object alive in memory at least until a matching reference count
// decrement is executed.
unsafe impl<T: Operations> AlwaysRefCounted for Request<T> {
    fn inc_ref(&self) {
        self.wrapper_ref().refcount().inc();
    }

    unsafe fn dec_ref(obj: core::ptr::NonNull<Self>) {
        // SAFETY: The type invariants of `ARef` guarantee that `obj` is valid
        // for read.
        let wrapper_ptr = unsafe { Self::wrapper_ptr(obj.as_ptr()).as_ptr() };
        // SAFETY: The type invariant of `Request` guarantees that the private
        // data area is initialized and valid.
        let refcount = unsafe { &*RequestDataWrapper::refcount_ptr(wrapper_ptr) };

        #[cfg_attr(not(CONFIG_DEBUG_MISC), allow(unused_variables))]
        let is_zero = refcount.dec_and_test();

        #[cfg(CONFIG_DEBUG_MISC)]
        if is_zero {
            panic!("Request reached refcount zero in Rust abstractions");
        }
    }
}

/// The operation of a block request (`enum req_op`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Operation {
    /// Read sectors from the device.
    Read,
    /// Write sectors to the device.
    Write,
    /// Flush the device's volatile write cache.
    Flush,
    /// Discard sectors.
    Discard,
    /// Securely erase sectors.
    SecureErase,
    /// Write zeroes to sectors.
    WriteZeroes,
    /// A driver-private request that reads from the device.
    DriverIn,
    /// A driver-private request that writes to the device.
    DriverOut,
    /// Any other operation (zoned operations), by its number.
    Other(u32),
}

impl Operation {
    /// The operation encoded in the low bits of a request's `cmd_flags`.
    pub fn from_raw(cmd_flags: u32) -> Self {
        const OP_MASK: u32 = (1 << bindings::REQ_OP_BITS) - 1;
        match cmd_flags & OP_MASK {
            bindings::req_op_REQ_OP_READ => Self::Read,
            bindings::req_op_REQ_OP_WRITE => Self::Write,
            bindings::req_op_REQ_OP_FLUSH => Self::Flush,
            bindings::req_op_REQ_OP_DISCARD => Self::Discard,
            bindings::req_op_REQ_OP_SECURE_ERASE => Self::SecureErase,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Self::WriteZeroes,
            bindings::req_op_REQ_OP_DRV_IN => Self::DriverIn,
            bindings::req_op_REQ_OP_DRV_OUT => Self::DriverOut,
            other => Self::Other(other),
        }
    }
}

/// The data of a request mapped to a scatter-gather list, holding the request (and so the
/// memory the list describes) until it is taken back with [`SgMapping::into_request`].
///
/// # Invariants
///
/// The first `nents` entries of `sg` describe the data pages of `rq` and are end-marked.
pub struct SgMapping<T: Operations> {
    rq: ARef<Request<T>>,
    sg: KVec<bindings::scatterlist>,
    nents: u32,
    device_writes: bool,
}

impl<T: Operations> SgMapping<T> {
    /// The mapped request.
    pub fn request(&self) -> &Request<T> {
        &self.rq
    }

    /// The number of scatterlist entries (0 for a request without data).
    pub fn nents(&self) -> u32 {
        self.nents
    }

    /// Gives the request back, ending the mapping.
    pub fn into_request(self) -> ARef<Request<T>> {
        self.rq
    }
}

// SAFETY: By the type invariant the list describes the data pages of `rq`, which the block
// layer keeps until the request is ended, and it cannot be ended while `self` holds an `ARef`
// to it (ending needs the only reference). The list lives in a `KVec` that is never resized, so
// it stays put when `self` moves; safe code reaches the data pages only through the block layer.
#[cfg(CONFIG_VIRTIO)]
unsafe impl<T: Operations> crate::virtio::Payload for SgMapping<T> {
    fn sg(&mut self) -> Option<NonNull<bindings::scatterlist>> {
        if self.nents == 0 {
            None
        } else {
            NonNull::new(self.sg.as_mut_ptr())
        }
    }

    fn device_writes(&self) -> bool {
        self.device_writes
    }
}

#[macros::kunit_tests(rust_virtio_blk_mq_request)]
mod tests {
    use super::Operation;

    #[test]
    fn operations_decode_from_cmd_flags() {
        assert_eq!(Operation::from_raw(0), Operation::Read);
        assert_eq!(Operation::from_raw(1), Operation::Write);
        assert_eq!(Operation::from_raw(2), Operation::Flush);
        assert_eq!(Operation::from_raw(3), Operation::Discard);
        assert_eq!(Operation::from_raw(5), Operation::SecureErase);
        assert_eq!(Operation::from_raw(9), Operation::WriteZeroes);
        assert_eq!(Operation::from_raw(34), Operation::DriverIn);
        assert_eq!(Operation::from_raw(35), Operation::DriverOut);
        assert_eq!(Operation::from_raw(7), Operation::Other(7));
        // Flag bits above the operation do not change it: a FUA write is a write.
        let fua = 1u32 << crate::bindings::req_flag_bits___REQ_FUA;
        assert_eq!(Operation::from_raw(fua | 1), Operation::Write);
        let preflush = 1u32 << crate::bindings::req_flag_bits___REQ_PREFLUSH;
        assert_eq!(Operation::from_raw(preflush | 2), Operation::Flush);
    }
}
