// SPDX-License-Identifier: GPL-2.0

//! The batch of requests the block layer hands to [`Operations::queue_rqs`] (a C
//! `struct rq_list`).
//!
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use crate::{
    bindings,
    block::mq::{DeviceRequest, Operations, Request},
    error::{code::EIO, Error},
    pr_warn_once,
    sync::{aref::ARef, atomic::Acquire},
};
use core::{marker::PhantomData, mem::ManuallyDrop, ops::Deref};

/// The requests of one request queue that the block layer hands to
/// [`Operations::queue_rqs`] (a plug list being flushed), in submission order. They may belong
/// to several hardware queues ([`Request::hw_queue_index`]).
///
/// The driver takes the requests it queues with [`RequestList::pop`]. The requests it gives
/// back ([`RequestList::give_back`]) and those it does not take stay with the block layer,
/// which queues them one by one through [`Operations::queue_rq`] once `queue_rqs` returns.
///
/// # Invariants
///
/// - `list` is valid for reads and writes while `self` exists.
/// - The requests linked (through `rq_next`) from `list` and `back` are valid requests of an
///   [`Operations`] `T` (private data initialised), not started, with refcount 0, owned by the
///   driver until `queue_rqs` returns.
/// - `back` holds the requests given back, in the order they were given.
///
/// # Examples
///
/// A driver that ends every request at once:
///
/// ```
/// use kernel::{
///     block::mq::{Operations, Request, RequestList},
///     prelude::*,
///     sync::aref::ARef,
/// };
///
/// struct Instant;
///
/// #[vtable]
/// impl Operations for Instant {
///     type QueueData = ();
///
///     fn queue_rq(_queue_data: (), rq: ARef<Request<Self>>, _is_last: bool) -> Result {
///         Request::end_ok(rq).map_err(|_rq| EBUSY)
///     }
///
///     fn queue_rqs(_queue_data: (), requests: &mut RequestList<'_, Self>) {
///         while let Some(rq) = requests.pop() {
///             match rq.start() {
///                 Ok(rq) => {
///                     let _ = Request::end_ok(rq);
///                 }
///                 // Still shared: left to `queue_rq` (dropped, it would end with an error).
///                 Err(rq) => {
///                     let _ = requests.give_back(rq);
///                 }
///             }
///         }
///     }
///
///     fn commit_rqs(_queue_data: (), _hw_queue: u32) {}
///
///     fn complete(_rq: ARef<Request<Self>>) {}
/// }
/// ```
pub struct RequestList<'a, T: Operations> {
    list: *mut bindings::rq_list,
    back: bindings::rq_list,
    _p: PhantomData<(&'a mut bindings::rq_list, T)>,
}

/// Takes the first request of `list` (null when empty), like the C `rq_list_pop`.
///
/// # Safety
///
/// `list` is valid for reads and writes, and so is every request linked from it.
unsafe fn pop_raw(list: *mut bindings::rq_list) -> *mut bindings::request {
    // SAFETY: By the safety requirements `list` and its requests are valid.
    unsafe {
        let rq = (*list).head;
        if !rq.is_null() {
            (*list).head = (*rq).__bindgen_anon_1.rq_next;
            if (*list).head.is_null() {
                (*list).tail = core::ptr::null_mut();
            }
            (*rq).__bindgen_anon_1.rq_next = core::ptr::null_mut();
        }
        rq
    }
}

/// Appends `rq` to `list`, like the C `rq_list_add_tail`.
///
/// # Safety
///
/// `list` and `rq` are valid for reads and writes, and so is every request linked from `list`;
/// `rq` is in no list.
unsafe fn add_tail_raw(list: *mut bindings::rq_list, rq: *mut bindings::request) {
    // SAFETY: By the safety requirements all of these are valid.
    unsafe {
        (*rq).__bindgen_anon_1.rq_next = core::ptr::null_mut();
        if (*list).tail.is_null() {
            (*list).head = rq;
        } else {
            (*(*list).tail).__bindgen_anon_1.rq_next = rq;
        }
        (*list).tail = rq;
    }
}

/// Appends all of `from` to `to`, leaving `from` empty.
///
/// # Safety
///
/// Both lists and every request linked from them are valid for reads and writes.
unsafe fn splice_tail_raw(to: *mut bindings::rq_list, from: *mut bindings::rq_list) {
    // SAFETY: By the safety requirements all of these are valid.
    unsafe {
        if (*from).head.is_null() {
            return;
        }
        if (*to).tail.is_null() {
            (*to).head = (*from).head;
        } else {
            (*(*to).tail).__bindgen_anon_1.rq_next = (*from).head;
        }
        (*to).tail = (*from).tail;
        (*from).head = core::ptr::null_mut();
        (*from).tail = core::ptr::null_mut();
    }
}

impl<'a, T: Operations> RequestList<'a, T> {
    /// Wraps the block layer's list.
    ///
    /// # Safety
    ///
    /// `list` is valid for reads and writes for `'a`; it holds valid requests of `T`'s tag set,
    /// not started, that the driver owns until [`RequestList::finish`] is called.
    pub(crate) unsafe fn new(list: *mut bindings::rq_list) -> Self {
        // INVARIANT: By the safety requirements; requests owned by the block layer (as those
        // in a plug list are) have refcount 0.
        Self {
            list,
            back: bindings::rq_list {
                head: core::ptr::null_mut(),
                tail: core::ptr::null_mut(),
            },
            _p: PhantomData,
        }
    }

    /// Whether no request is left to take.
    pub fn is_empty(&self) -> bool {
        // SAFETY: By the type invariants `list` is valid.
        unsafe { (*self.list).head.is_null() }
    }

    /// Takes the next request. The driver owns it from now on: it starts it (before the
    /// device may see it), ends it, or gives it back.
    pub fn pop(&mut self) -> Option<ListRequest<T>> {
        // SAFETY: By the type invariants `list` and its requests are valid.
        let rq = unsafe { pop_raw(self.list) };
        if rq.is_null() {
            return None;
        }
        // SAFETY: By the type invariants `rq` is a valid `Request<T>`.
        let request = unsafe { &*rq.cast::<Request<T>>() };
        // As `queue_rq`: one refcount for the `ARef`, one for being owned by the driver.
        request.wrapper_ref().refcount().set(2);
        // SAFETY: We own the refcount set above and pass it to the `ARef`; `rq` is a valid
        // `Request<T>`, owned by the driver until it ends it or gives it back.
        let rq = unsafe { Request::aref_from_raw(rq) };
        Some(ListRequest {
            rq: ManuallyDrop::new(rq),
        })
    }

    /// Gives back a request the driver cannot queue now: after `queue_rqs` returns, the block
    /// layer queues it through [`Operations::queue_rq`] (requests given back keep their order
    /// and come before those not taken). Fails, giving it back, when another [`ARef`] to the
    /// request exists.
    pub fn give_back(&mut self, rq: ListRequest<T>) -> Result<(), ListRequest<T>> {
        let ptr = Request::try_set_end(rq.into_aref()).map_err(ListRequest::new)?;
        // SAFETY: `back` and its requests are valid (type invariants); `ptr` is a valid request,
        // popped from the list (so in no list), not started, and with refcount 0 again: the
        // type invariants hold for `back`.
        unsafe { add_tail_raw(&mut self.back, ptr) };
        Ok(())
    }

    /// Leaves the block layer the requests given back followed by those not taken.
    pub(crate) fn finish(mut self) {
        // SAFETY: By the type invariants both lists and their requests are valid.
        unsafe {
            splice_tail_raw(&mut self.back, self.list);
            *self.list = self.back;
        }
    }
}

/// A request taken from a [`RequestList`]: owned by the driver, not started yet.
///
/// It gives access to the [`Request`] (its operation, sector, hardware queue...). The driver
/// starts it with [`ListRequest::start`] or [`ListRequest::into_device`], or gives it back with
/// [`RequestList::give_back`]; dropped, it is ended with an I/O error.
///
/// # Invariants
///
/// `rq` is not started and is owned by the driver; it is not taken from `self` but on `self`'s
/// consumption.
pub struct ListRequest<T: Operations> {
    rq: ManuallyDrop<ARef<Request<T>>>,
}

impl<T: Operations> ListRequest<T> {
    fn new(rq: ARef<Request<T>>) -> Self {
        Self {
            rq: ManuallyDrop::new(rq),
        }
    }

    fn into_aref(self) -> ARef<Request<T>> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used nor dropped again, so `rq` is taken once.
        unsafe { ManuallyDrop::take(&mut this.rq) }
    }

    /// Starts the request (`blk_mq_start_request`: its timeout runs from now) and gives it to
    /// the driver, as [`Operations::queue_rq`] gets its requests. Fails, giving it back, when
    /// another [`ARef`] to the request exists.
    pub fn start(self) -> Result<ARef<Request<T>>, Self> {
        if self.rq.wrapper_ref().refcount().as_atomic().load(Acquire) != 2 {
            return Err(self);
        }
        let rq = self.into_aref();
        // SAFETY: `rq` is the only `ARef` (refcount 2, checked above; a new one can only be
        // made from an existing one), and it is not started (type invariants).
        unsafe { Request::start_unchecked(&rq) };
        Ok(rq)
    }

    /// Prepares the request for a device as [`Request::into_device`] does, then starts it, so
    /// that it may go to the device. On failure the request is not started: it can still be
    /// given back.
    #[cfg(CONFIG_SG_POOL)]
    pub fn into_device(
        self,
        write_out: impl FnOnce(&mut [u8; super::CMD_OUT_MAX]) -> usize,
        in_len: usize,
        device_writes: bool,
    ) -> Result<DeviceRequest<T>, (Error, Self)> {
        match Request::into_device(self.into_aref(), write_out, in_len, device_writes) {
            Ok(drq) => {
                // SAFETY: `into_device` only succeeds on the only `ARef`, now inside `drq`, and
                // nothing could copy it since; the request is not started (type invariants).
                unsafe { Request::start_unchecked(drq.aref()) };
                Ok(drq)
            }
            Err((e, rq)) => Err((e, Self::new(rq))),
        }
    }
}

impl<T: Operations> Deref for ListRequest<T> {
    type Target = Request<T>;

    fn deref(&self) -> &Request<T> {
        &self.rq
    }
}

impl<T: Operations> Drop for ListRequest<T> {
    fn drop(&mut self) {
        // SAFETY: `self` is being dropped: `rq` is not used again.
        let rq = unsafe { ManuallyDrop::take(&mut self.rq) };
        // Neither queued nor given back: ended, or the block layer would wait for it forever.
        if Request::end(rq, Err(EIO)).is_err() {
            pr_warn_once!("block: a dropped request was still referenced, not ended\n");
        }
    }
}

#[macros::kunit_tests(rust_virtio_blk_mq_request_list)]
mod tests {
    use super::{add_tail_raw, pop_raw, splice_tail_raw};
    use crate::{bindings, prelude::*};

    fn empty() -> bindings::rq_list {
        bindings::rq_list {
            head: core::ptr::null_mut(),
            tail: core::ptr::null_mut(),
        }
    }

    #[test]
    fn list_keeps_order_and_splices() -> Result {
        // Bare requests: only their `rq_next` links are used.
        let mut rqs = [
            KBox::new(bindings::request::default(), GFP_KERNEL)?,
            KBox::new(bindings::request::default(), GFP_KERNEL)?,
            KBox::new(bindings::request::default(), GFP_KERNEL)?,
            KBox::new(bindings::request::default(), GFP_KERNEL)?,
        ];
        let ptrs = rqs.each_mut().map(|r| core::ptr::from_mut(&mut **r));
        let (mut list, mut back) = (empty(), empty());
        let mut popped = [core::ptr::null_mut(); 6];
        // SAFETY: The lists and the boxed requests live through the test; a request is only
        // added when it is in no list.
        unsafe {
            for p in ptrs {
                add_tail_raw(&mut list, p);
            }
            popped[0] = pop_raw(&mut list);
            // The first is given back, the second taken: the block layer gets 0, 2, 3.
            add_tail_raw(&mut back, ptrs[0]);
            popped[1] = pop_raw(&mut list);
            splice_tail_raw(&mut back, &mut list);
        }
        assert!(list.head.is_null() && list.tail.is_null());
        assert_eq!(back.tail, ptrs[3]);
        // SAFETY: As above.
        unsafe {
            for p in popped.iter_mut().skip(2) {
                *p = pop_raw(&mut back);
            }
        }
        assert_eq!(
            popped,
            [
                ptrs[0],
                ptrs[1],
                ptrs[0],
                ptrs[2],
                ptrs[3],
                core::ptr::null_mut()
            ]
        );
        assert!(back.tail.is_null());
        // SAFETY: As above; `ptrs[1]` is in no list (popped).
        unsafe {
            // An empty list spliced changes nothing.
            add_tail_raw(&mut back, ptrs[1]);
            splice_tail_raw(&mut back, &mut list);
        }
        assert_eq!((back.head, back.tail), (ptrs[1], ptrs[1]));
        Ok(())
    }
}
