// SPDX-License-Identifier: GPL-2.0

//! This module provides a wrapper for the C `struct request` type.
//!
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use crate::{
    bindings,
    block::mq::Operations,
    error::Result,
    sync::{
        aref::{ARef, AlwaysRefCounted},
        atomic::{Acquire, Relaxed},
        Refcount,
    },
    types::Opaque,
};
use core::{cell::UnsafeCell, marker::PhantomData, mem::ManuallyDrop, ptr::NonNull};

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
    pub(crate) fn try_set_end(this: ARef<Self>) -> Result<*mut bindings::request, ARef<Self>> {
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

    /// Gives a started request back to the block layer, which queues it again later (through
    /// [`Operations::queue_rq`]), e.g. when the device has no room for it now.
    ///
    /// This function will return [`Err`] if `this` is not the only [`ARef`]
    /// referencing the request.
    pub fn requeue(this: ARef<Self>) -> Result<(), ARef<Self>> {
        let request_ptr = Self::try_set_end(this)?;
        // SAFETY: As in `end_ok`: no other `ARef` exists, the request goes back to the block
        // layer, which unstarts it and puts it on its requeue list (kicked now).
        unsafe { bindings::blk_mq_requeue_request(request_ptr, true) };
        Ok(())
    }

    /// Prepares the request for a device: lets `write_out` write the command the device reads
    /// into the request's own command area (it returns the command's length, at most
    /// [`CMD_OUT_MAX`]), zeroes `in_len` bytes that the device writes (e.g. a status), and maps
    /// the request's data pages to a scatter-gather list (`device_writes`: whether the device
    /// writes the data, a read). The list starts in the request's private data (the tag set's
    /// inline entries); a request with more segments gets further entries chained from the
    /// kernel's scatterlist pools (`GFP_ATOMIC`), freed when the request comes back from the
    /// device ([`DeviceRequest::into_request`] or drop). The common case allocates nothing.
    ///
    /// A request without data pages (flush, discard, write-zeroes, secure erase) maps to an
    /// empty list. Fails, giving the request back, when `this` is not the only [`ARef`] to the
    /// request (`EBUSY`), when the command or `in_len` do not fit the command area (`EINVAL`),
    /// or when the chained entries cannot be allocated (`ENOMEM`: the driver retries later).
    ///
    /// Needs `CONFIG_SG_POOL` (a driver using it selects it).
    #[cfg(CONFIG_SG_POOL)]
    pub fn into_device(
        this: ARef<Self>,
        write_out: impl FnOnce(&mut [u8; CMD_OUT_MAX]) -> usize,
        in_len: usize,
        device_writes: bool,
    ) -> Result<DeviceRequest<T>, (crate::error::Error, ARef<Self>)> {
        use crate::error::code::{EBUSY, EINVAL, EIO, ENOMEM};
        // Only one `ARef` (refcount 2): no other `DeviceRequest` of this request exists, and
        // none can be made while this one holds its `ARef` (see `DeviceRequest`'s invariants).
        if this.wrapper_ref().refcount().as_atomic().load(Acquire) != 2 {
            return Err((EBUSY, this));
        }
        if in_len > CMD_IN_MAX {
            return Err((EINVAL, this));
        }
        let wrapper = this.wrapper_ref();
        // SAFETY: The command area is ours alone: we hold the only `ARef` and no
        // `DeviceRequest` exists (checked above), so nothing else reaches it until the
        // `DeviceRequest` made here goes.
        let cmd = unsafe { &mut *wrapper.cmd.get() };
        let out_len = write_out(&mut cmd.out);
        if out_len > CMD_OUT_MAX {
            return Err((EINVAL, this));
        }
        let has_data = matches!(
            this.operation(),
            Operation::Read | Operation::Write | Operation::DriverIn | Operation::DriverOut
        );
        let segs = u32::from(this.nr_phys_segments());
        let mut nents = 0;
        if has_data && segs > 0 && this.bytes() > 0 {
            cmd.table = pin_init::zeroed();
            cmd.table.sgl = this.sg_ptr();
            let ret = if segs <= wrapper.sg_cap {
                // The inline entries suffice: what `sg_alloc_table_chained` does then, without
                // the call (this is every request of the common sizes).
                // SAFETY: `cmd.table.sgl` points to the `sg_cap >= segs` inline entries of the
                // private data (the tag set's `cmd_size`), ours alone (see above).
                unsafe { bindings::sg_init_table(cmd.table.sgl, segs) };
                cmd.table.nents = segs;
                cmd.table.orig_nents = segs;
                0
            } else {
                // SAFETY: As above; `segs > 0`. Beyond `sg_cap` entries the table is chained
                // from the scatterlist pools.
                unsafe {
                    bindings::sg_alloc_table_chained(
                        &mut cmd.table,
                        segs as i32,
                        cmd.table.sgl,
                        wrapper.sg_cap,
                    )
                }
            };
            if ret != 0 {
                // The function freed what it had allocated.
                cmd.table = pin_init::zeroed();
                return Err((ENOMEM, this));
            }
            let mut last: *mut bindings::scatterlist = core::ptr::null_mut();
            // SAFETY: By type invariant `this.0` is a valid request owned by the driver; the
            // table has room for its `nr_phys_segments` entries, the most the block layer maps.
            let n = unsafe { bindings::__blk_rq_map_sg(this.raw(), cmd.table.sgl, &mut last) };
            nents = match u32::try_from(n) {
                Ok(n) if n > 0 && n <= segs => n,
                _ => {
                    cmd.free_table(wrapper.sg_cap);
                    return Err((EIO, this));
                }
            };
        }
        cmd.out_len = out_len as u8;
        cmd.inb = [0; CMD_IN_MAX];
        cmd.in_len = in_len as u8;
        cmd.nents = nents;
        cmd.device_writes = device_writes;
        // INVARIANT: Checked above: `this` was the only `ARef`; the area and list are filled.
        Ok(DeviceRequest { rq: this })
    }

    /// Return a pointer to the [`RequestDataWrapper`] stored in the private area
    /// of the request structure.
    ///
    /// # Safety
    ///
    /// - `this` must point to a valid allocation of size at least size of
    ///   [`Self`] plus size of [`RequestDataWrapper`].
    pub(crate) unsafe fn wrapper_ptr(this: *mut Self) -> NonNull<RequestDataWrapper> {
        // `blk_mq_rq_to_pdu` is `rq + 1`: the private data follows the request. Computed here
        // rather than through the C helper, which is a call on every use in the I/O path.
        let wrapper_ptr = this
            .cast::<bindings::request>()
            .wrapping_add(1)
            .cast::<RequestDataWrapper>();
        // SAFETY: By C API contract, `wrapper_ptr` points to a valid allocation
        // and is not null.
        unsafe { NonNull::new_unchecked(wrapper_ptr) }
    }

    /// The first of the `sg_cap` inline scatterlist entries that follow the wrapper in the
    /// private area (derived from the private area's pointer, which covers the whole
    /// `cmd_size`).
    fn sg_ptr(&self) -> *mut bindings::scatterlist {
        // SAFETY: By type invariant, `self.0` is a valid request with its private area.
        let pdu = unsafe { Self::wrapper_ptr(self.raw().cast()) };
        // The result is only dereferenced when `sg_cap > 0`, which means `cmd_size` covers it.
        pdu.as_ptr()
            .cast::<u8>()
            .wrapping_add(RequestDataWrapper::SG_OFFSET)
            .cast()
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

/// The most bytes of a command the device reads, kept in each request (a virtio-blk header
/// and one discard range).
pub const CMD_OUT_MAX: usize = 32;
/// The most bytes the device writes besides the data, kept in each request (a status).
pub const CMD_IN_MAX: usize = 8;

/// The device command area of a request: only reached through the request's
/// [`DeviceRequest`] (or by the device while it owns the request).
pub(crate) struct Command {
    out: [u8; CMD_OUT_MAX],
    inb: [u8; CMD_IN_MAX],
    out_len: u8,
    in_len: u8,
    nents: u32,
    device_writes: bool,
    /// The data's scatterlist: the inline entries, chained to pool entries for a request with
    /// more segments; `orig_nents` is 0 when no table is set up.
    table: bindings::sg_table,
}

impl Command {
    /// Frees the table's chained entries (if any; `inline` is the number of inline entries)
    /// and marks it unset.
    #[inline]
    fn free_table(&mut self, inline: u32) {
        // Without the pools `into_device` does not exist, so no table is ever set up.
        // A table within the inline entries has nothing to free (`sg_free_table_chained` would
        // return at once).
        #[cfg(CONFIG_SG_POOL)]
        if self.table.orig_nents > inline {
            // SAFETY: A set-up table comes from `sg_alloc_table_chained` with `inline` first
            // entries (`into_device`) and is no longer used by a device: the command area is
            // reached only through its `DeviceRequest`, which is out of the ring.
            unsafe { bindings::sg_free_table_chained(&mut self.table, inline) };
        }
        self.table = pin_init::zeroed();
        self.nents = 0;
    }
}

/// A wrapper around data stored in the private area of the C [`struct request`].
///
/// The tag set's `cmd_size` is [`RequestDataWrapper::SG_OFFSET`] plus room for `sg_cap`
/// inline scatterlist entries, which follow the wrapper in the private area.
///
/// [`struct request`]: srctree/include/linux/blk-mq.h
#[repr(C)]
pub(crate) struct RequestDataWrapper {
    /// The Rust request refcount has the following states:
    ///
    /// - 0: The request is owned by C block layer.
    /// - 1: The request is owned by Rust abstractions but there are no [`ARef`] references to it.
    /// - 2+: There are [`ARef`] references to the request.
    refcount: Refcount,
    /// The device command area, see [`DeviceRequest`].
    cmd: UnsafeCell<Command>,
    /// The number of inline scatterlist entries after the wrapper.
    sg_cap: u32,
}

impl RequestDataWrapper {
    /// Where the scatterlist entries start, from the start of the wrapper.
    pub(crate) const SG_OFFSET: usize = {
        let size = core::mem::size_of::<Self>();
        let align = core::mem::align_of::<bindings::scatterlist>();
        size.div_ceil(align) * align
    };

    /// The private-data size for `sg_entries` scatterlist entries.
    pub(crate) fn pdu_size(sg_entries: u32) -> Option<u32> {
        let sg = (sg_entries as usize).checked_mul(core::mem::size_of::<bindings::scatterlist>())?;
        u32::try_from(Self::SG_OFFSET.checked_add(sg)?).ok()
    }

    /// Initialises the wrapper at `this` for a private area of `cmd_size` bytes.
    ///
    /// # Safety
    ///
    /// `this` is valid for writes of `cmd_size` bytes, aligned for `Self`, and `cmd_size` is at
    /// least `size_of::<Self>()`.
    pub(crate) unsafe fn init(this: *mut Self, cmd_size: u32) {
        let sg_bytes = (cmd_size as usize).saturating_sub(Self::SG_OFFSET);
        let sg_cap = (sg_bytes / core::mem::size_of::<bindings::scatterlist>()) as u32;
        // SAFETY: By the safety requirements `this` is valid for writes of a `Self`.
        unsafe {
            this.write(Self {
                refcount: Refcount::new(0),
                cmd: UnsafeCell::new(Command {
                    out: [0; CMD_OUT_MAX],
                    inb: [0; CMD_IN_MAX],
                    out_len: 0,
                    in_len: 0,
                    nents: 0,
                    device_writes: false,
                    table: pin_init::zeroed(),
                }),
                sg_cap,
            })
        };
    }

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

/// A request prepared for a device by [`Request::into_device`]: its command, the room for the
/// device's answer and the scatter-gather list of its data pages, all in the request's private
/// data. It is the request reference itself (an [`ARef`]), so it can be the token of a
/// virtqueue: while the device owns it, the driver has nothing to reach the command area with.
///
/// # Invariants
///
/// - `rq`'s command area and its first `nents` scatterlist entries were filled by
///   `into_device` and describe the request's data pages (end-marked).
/// - Only this `DeviceRequest` reaches `rq`'s command area and scatterlist: it was made from
///   the only `ARef` of the request, and no other can be made while it holds its `ARef`
///   (`into_device` needs the only one).
pub struct DeviceRequest<T: Operations> {
    rq: ARef<Request<T>>,
}

impl<T: Operations> DeviceRequest<T> {
    fn cmd(&self) -> &Command {
        // SAFETY: By the type invariants only `self` reaches the area, and it only writes it in
        // `into_device`, before `self` exists.
        unsafe { &*self.rq.wrapper_ref().cmd.get() }
    }

    /// The request.
    pub fn request(&self) -> &Request<T> {
        &self.rq
    }

    /// The bytes the device was given to read.
    pub fn out_bytes(&self) -> &[u8] {
        let cmd = self.cmd();
        cmd.out.get(..usize::from(cmd.out_len)).unwrap_or(&[])
    }

    /// The bytes the device wrote (zero where it wrote nothing).
    pub fn in_bytes(&self) -> &[u8] {
        let cmd = self.cmd();
        cmd.inb.get(..usize::from(cmd.in_len)).unwrap_or(&[])
    }

    /// The number of scatterlist entries of the data (0 for a request without data).
    pub fn nents(&self) -> u32 {
        self.cmd().nents
    }

    /// Gives the request back (freeing the scatterlist entries chained for it).
    pub fn into_request(self) -> ARef<Request<T>> {
        let mut this = ManuallyDrop::new(self);
        this.release();
        // SAFETY: `this` is never used or dropped again: the `ARef` is moved out once.
        unsafe { core::ptr::read(&this.rq) }
    }

    /// Frees the scatterlist entries chained for the request; the device no longer uses them
    /// (a `DeviceRequest` exists only out of the ring).
    fn release(&mut self) {
        let wrapper = self.rq.wrapper_ref();
        // SAFETY: Only `self` reaches the command area (type invariants), and `&mut self`
        // means no reference from `cmd()` is alive.
        let cmd = unsafe { &mut *wrapper.cmd.get() };
        cmd.free_table(wrapper.sg_cap);
    }

    /// The request's `ARef`.
    pub(crate) fn aref(&self) -> &ARef<Request<T>> {
        &self.rq
    }
}

impl<T: Operations> Drop for DeviceRequest<T> {
    fn drop(&mut self) {
        self.release();
    }
}

// SAFETY:
// - `into_raw` gives the request pointer of the `ARef` (a `struct request`, aligned to 8), which
//   `from_raw` turns back into the same `ARef`.
// - The chain describes the command area and the data pages of the request: the command area
//   is reached only through this `DeviceRequest` (type invariants), which is gone (turned into
//   the token) while the device owns it; the data pages stay with the request until it is
//   ended, and it cannot be ended while the token holds an `ARef` (ending needs the only one);
//   safe code reaches data pages only through the block layer. The request's memory belongs
//   to the tag set, which outlives every request in flight.
#[cfg(CONFIG_VIRTIO)]
unsafe impl<T: Operations> crate::virtio::Lend for DeviceRequest<T> {
    fn memory(&mut self) -> crate::virtio::Chain {
        let wrapper = self.rq.wrapper_ref();
        let cmd = wrapper.cmd.get();
        // SAFETY: `cmd` is valid; only `self` reaches it (type invariants).
        let (out_len, in_len, nents, writes) = unsafe {
            (
                (*cmd).out_len,
                (*cmd).in_len,
                (*cmd).nents,
                (*cmd).device_writes,
            )
        };
        // SAFETY: As above.
        let sgl = unsafe { (*cmd).table.sgl };
        let data = if nents > 0 {
            NonNull::new(sgl).map(|sg| (sg, writes))
        } else {
            None
        };
        // SAFETY: `cmd` is valid, see above; the fields are projected without references.
        let (out, inb) = unsafe {
            (
                (&raw mut (*cmd).out).cast::<u8>(),
                (&raw mut (*cmd).inb).cast::<u8>(),
            )
        };
        crate::virtio::Chain {
            out: NonNull::new(out).map(|p| (p, u32::from(out_len))),
            data,
            inb: NonNull::new(inb).map(|p| (p, u32::from(in_len))),
        }
    }

    fn into_raw(self) -> NonNull<crate::ffi::c_void> {
        // The scatterlist stays: the device is about to use it.
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again: the `ARef` is moved out once.
        ARef::into_raw(unsafe { core::ptr::read(&this.rq) }).cast()
    }

    unsafe fn from_raw(ptr: NonNull<crate::ffi::c_void>) -> Self {
        // SAFETY: `ptr` is the pointer of an `ARef` given up by `into_raw` (safety
        // requirements), so we own its reference.
        let rq = unsafe { ARef::from_raw(ptr.cast()) };
        // INVARIANT: `ptr` comes from `into_raw`, so this is the same `DeviceRequest`.
        Self { rq }
    }
}

#[macros::kunit_tests(rust_virtio_blk_mq_request)]
mod tests {
    use super::{Operation, RequestDataWrapper};
    use crate::bindings;

    #[test]
    fn pdu_holds_the_wrapper_then_aligned_scatterlists() {
        let sg = core::mem::size_of::<bindings::scatterlist>();
        let off = RequestDataWrapper::SG_OFFSET;
        assert!(off >= core::mem::size_of::<RequestDataWrapper>());
        assert_eq!(off % core::mem::align_of::<bindings::scatterlist>(), 0);
        assert_eq!(RequestDataWrapper::pdu_size(0), u32::try_from(off).ok());
        assert_eq!(
            RequestDataWrapper::pdu_size(128),
            u32::try_from(off + 128 * sg).ok()
        );
        // Too many entries for a `cmd_size`: refused, no overflow.
        assert_eq!(RequestDataWrapper::pdu_size(u32::MAX), None);
    }

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
