// SPDX-License-Identifier: GPL-2.0

//! Virtio devices, drivers and virtqueues.
//!
//! C headers: [`include/linux/virtio.h`](srctree/include/linux/virtio.h),
//! [`include/linux/virtio_config.h`](srctree/include/linux/virtio_config.h).
//!
//! # Buffer ownership
//!
//! A driver hands the device memory only as a [`Buffer`]: a heap object that holds the bytes
//! the device reads (`out`), an optional [`Payload`] (memory of another owner, e.g. the data
//! pages of a block request, described by a scatter-gather list), the bytes the device writes
//! (`in`), and a driver context that the device never sees. [`Virtqueue::add`] takes the
//! `KBox<Buffer>` by value and keeps it (as the virtqueue's token) until the device has used
//! it; [`Virtqueue::get_buf`] gives the same box back, typed. While the device owns a buffer
//! no Rust reference to it exists, so the driver cannot touch memory the device may be writing,
//! and needs no `unsafe` to use a virtqueue. Buffers the device never used are dropped when the
//! queues are torn down, after the device has been reset.
//!
//! The hot path needs no allocation: a value that implements [`Lend`] is its own token. A block
//! request prepared with `block::mq::Request::into_device` (a `block::mq::DeviceRequest`, which
//! is the request's `ARef`) keeps its command, its status and its scatterlist in the request's
//! private data (the tag set's `cmd_size`); [`Virtqueue::add_lent`] moves it into the ring and
//! [`Virtqueue::get_buf`] gives it back ([`Used::Lent`]). The invariant is the same as for a
//! boxed buffer: while the device owns the memory, the only handle to it is inside the ring, so
//! the driver cannot touch it; and the request cannot be ended (which needs its only `ARef`)
//! while the device holds it.
//!
//! # Freeze and restore (system sleep)
//!
//! With `CONFIG_PM_SLEEP` the virtio core calls a driver's [`Driver::freeze`] before the device
//! is suspended (its transport disabled) and [`Driver::restore`] after the core has reset it on
//! resume. The device's virtqueues cannot survive that: [`Queues::freeze`] resets the device and
//! deletes them, [`Queues::restore`] finds new ones, while the driver's data (and the `Queues`
//! in it) stays alive and reachable from the block layer and the virtqueue callbacks. Every
//! handle to a virtqueue goes through the [`Queue`]: the lock of the queue holds the virtqueue
//! (`None` while frozen), and the pointer used to notify without the lock is only read in an
//! RCU read-side section. Freezing resets the device and waits for running callbacks, clears
//! the notify pointers and waits for an RCU grace period, takes each virtqueue out of its lock,
//! and only then deletes the virtqueues; restoring puts the new ones in. A callback or a
//! submission that comes while the queues are frozen finds no virtqueue (nothing used, adding
//! fails with `ESHUTDOWN`), never a freed one. Buffers still in the virtqueues when they are
//! frozen are dropped (the device was reset first), as on unbind: a driver drains its requests
//! before (a block driver with `GenDisk::quiesce_drained`).
//!
//! # Reset of the transport
//!
//! A transport may reset the device under a bound driver: virtio-pci does when its PCI function
//! is reset (`/sys/bus/pci/devices/…/reset`, or an error recovery), with or without
//! `CONFIG_PM_SLEEP`. The virtio core then calls [`Driver::reset_prepare`] (configuration
//! change reports stopped) before the PCI function is disabled and reset, and, once it is
//! enabled again and the core has reset the device and negotiated its features,
//! [`Driver::reset_done`]. For the driver it is a sleep without the system: it stops and
//! starts the device the same way, through [`Queues::freeze`] and [`Queues::restore`], and
//! usually shares the code of its `freeze` and `restore`. The PCI core holds the lock of the PCI
//! function, not that of the virtio device, and the virtio core finds the driver without a
//! lock: the abstraction takes the virtio device's lock around each sleep and reset callback
//! and calls the driver only if it is still bound (an unbind or a bind in between is waited
//! for, and then the callback fails with `ENODEV`).

use crate::{
    alloc::Flags,
    bindings, device,
    device_id::RawDeviceId,
    driver,
    error::{from_result, to_result},
    interrupt::{self, local_interrupt_disable, LocalInterruptDisabled},
    prelude::*,
    str::CStr,
    sync::lock::spinlock::{SpinLockBackend, SpinLockIrqBackend},
    sync::{
        aref::{ARef, AlwaysRefCounted},
        atomic::{Atomic, Full, Relaxed, Release},
        lock::Guard,
        rcu, Arc, SpinLockIrq,
    },
    types::{Opaque, ScopeGuard},
    ThisModule,
};
use core::{
    marker::PhantomData,
    mem::{offset_of, MaybeUninit},
    ptr::{addr_of_mut, NonNull},
};

/// The number of feature bits the virtio core knows (`VIRTIO_FEATURES_BITS`).
pub const FEATURE_BITS: u32 = bindings::VIRTIO_FEATURES_U64S * 64;

/// How many times a multi-field configuration read is retried when the device's configuration
/// generation keeps changing, before giving up with `EIO`.
pub const CONFIG_RETRIES: u32 = 64;

/// An adapter for the registration of virtio drivers.
pub struct Adapter<T: Driver>(T);

/// A sleep or reset hook of `struct virtio_driver`.
type Hook = Option<unsafe extern "C" fn(*mut bindings::virtio_device) -> c_int>;

// SAFETY:
// - `bindings::virtio_driver` is a C type declared as `repr(C)`.
// - `T` is the type of the driver's device private data.
// - `struct virtio_driver` embeds a `struct device_driver` at `DEVICE_DRIVER_OFFSET`.
unsafe impl<T: Driver> driver::DriverLayout for Adapter<T> {
    type DriverType = bindings::virtio_driver;
    type DriverData<'bound> = DriverData<T>;
    const DEVICE_DRIVER_OFFSET: usize = offset_of!(bindings::virtio_driver, driver);
}

// SAFETY: A call to `unregister` for a given instance of `DriverType` is guaranteed to be valid if
// a preceding call to `register` has been successful.
unsafe impl<T: Driver> driver::RegistrationOps for Adapter<T> {
    unsafe fn register(
        vdrv: &Opaque<Self::DriverType>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        let nr_features = u32::try_from(T::FEATURES.len())?;
        // SAFETY: It is safe to set the fields of `struct virtio_driver` on initialization; the
        // tables are `'static`.
        unsafe {
            let drv = vdrv.get();
            (*drv).driver.name = name.as_char_ptr();
            (*drv).id_table = T::ID_TABLE.as_ptr();
            (*drv).feature_table = T::FEATURES.as_ptr();
            (*drv).feature_table_size = nr_features;
            (*drv).probe = Some(Self::probe_callback);
            (*drv).remove = Some(Self::remove_callback);
            (*drv).config_changed = Some(Self::config_changed_callback);
        }
        // A driver that can be frozen can be restored, and the other way round; the same for a
        // reset of the transport.
        const { assert!(T::HAS_FREEZE == T::HAS_RESTORE) };
        const { assert!(T::HAS_RESET_PREPARE == T::HAS_RESET_DONE) };
        // SAFETY: As above.
        unsafe { Self::set_sleep_callbacks(vdrv.get()) };
        if T::HAS_RESET_PREPARE {
            // SAFETY: As above.
            unsafe {
                let drv = vdrv.get();
                (*drv).reset_prepare = Some(Self::reset_prepare_callback);
                (*drv).reset_done = Some(Self::reset_done_callback);
            }
        }
        // SAFETY: `vdrv` is a valid, initialized `struct virtio_driver`.
        to_result(unsafe { bindings::__register_virtio_driver(vdrv.get(), module.as_ptr()) })
    }

    unsafe fn unregister(vdrv: &Opaque<Self::DriverType>) {
        // SAFETY: `vdrv` was registered by `register` above.
        unsafe { bindings::unregister_virtio_driver(vdrv.get()) }
    }
}

/// The data of a bound device: the driver's, and the work item that runs
/// [`Driver::config_changed`] in process context.
///
/// # Invariants
///
/// `config_work` is initialised with [`config_work_fn::<T>`] and is only queued while the
/// device is bound (between the end of `probe` and the start of `remove`, which waits for it);
/// `vdev` is the device this data belongs to.
#[pin_data]
pub struct DriverData<T> {
    #[pin]
    config_work: Opaque<bindings::work_struct>,
    vdev: *mut bindings::virtio_device,
    #[pin]
    data: T,
}

impl<T> DriverData<T> {
    fn data(self: Pin<&Self>) -> Pin<&T> {
        // SAFETY: `data` is structurally pinned (`#[pin]`); it is never moved out.
        unsafe { self.map_unchecked(|d| &d.data) }
    }
}

/// The work function of [`DriverData::config_work`].
///
/// # Safety
///
/// `work` is the `config_work` of a live `DriverData<T>` of a bound device.
unsafe extern "C" fn config_work_fn<T: Driver>(work: *mut bindings::work_struct) {
    let work = Opaque::cast_from(work).cast_mut();
    // SAFETY: By the safety requirements `work` is the `config_work` field of a `DriverData<T>`.
    let data = unsafe { &*crate::container_of!(work, DriverData<T>, config_work) };
    // SAFETY: By the type invariants the work runs only while the device is bound: `vdev` is a
    // valid, bound `struct virtio_device`.
    let dev = unsafe { &*data.vdev.cast::<Device<device::BoundInternal>>() };
    // SAFETY: The data lives in the `Pin<KBox<_>>` stored by `probe`, until `remove`, which
    // waits for this work first.
    let data = unsafe { Pin::new_unchecked(data) };
    T::config_changed(dev, data.data());
}

impl<T: Driver> Adapter<T> {
    extern "C" fn probe_callback(vdev: *mut bindings::virtio_device) -> c_int {
        // SAFETY: The virtio core only calls probe with a valid `struct virtio_device`, which
        // stays valid for the duration of the call.
        let dev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };
        from_result(|| {
            let data = try_pin_init!(DriverData::<T> {
                config_work <- Opaque::ffi_init(|slot| {
                    // SAFETY: `slot` is a `work_struct` to initialise; `config_work_fn::<T>`
                    // is its function, as the type invariants of `DriverData` require.
                    unsafe {
                        bindings::init_work_with_key(
                            slot,
                            Some(config_work_fn::<T>),
                            false,
                            c"virtio_config_work".as_char_ptr(),
                            crate::static_lock_class!().as_ptr(),
                        )
                    }
                }),
                vdev,
                data <- T::probe(dev),
            });
            dev.as_ref().set_drvdata(data)?;
            Ok(0)
        })
    }

    extern "C" fn remove_callback(vdev: *mut bindings::virtio_device) {
        // SAFETY: The virtio core only calls remove with a valid, bound `struct virtio_device`.
        let dev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };
        // SAFETY: `remove` is only called after a successful `probe`, which stored a
        // `Pin<KBox<DriverData<T>>>` with `set_drvdata`.
        let data = unsafe { dev.as_ref().drvdata_borrow::<DriverData<T>>() };
        // The core stopped configuration change reports before `remove`; wait for one still
        // being handled, so that none runs once the data is gone.
        // SAFETY: `config_work` was initialised in `probe_callback`.
        unsafe { bindings::cancel_work_sync(data.config_work.get()) };
        T::remove(dev, data.data());
        // The virtio core expects the device reset when `remove` returns, so the driver's data
        // (its queues, whose drop resets the device) goes now rather than after unbinding.
        // SAFETY: The type matches the one stored in `probe_callback`.
        drop(unsafe { dev.as_ref().drvdata_obtain::<DriverData<T>>() });
        // SAFETY: `vdev` is valid; a device still running (a driver that kept its queues
        // alive elsewhere) is stopped here, as the core requires.
        unsafe {
            if bindings::virtio_get_status(vdev) != 0 {
                bindings::virtio_reset_device(vdev);
            }
        }
    }

    /// Sets `freeze` and `restore` of `drv` when the driver has them.
    ///
    /// # Safety
    ///
    /// `drv` is a `struct virtio_driver` being initialised, not registered yet.
    #[cfg(CONFIG_PM_SLEEP)]
    unsafe fn set_sleep_callbacks(drv: *mut bindings::virtio_driver) {
        if T::HAS_FREEZE {
            // SAFETY: By the safety requirements the fields may be written.
            unsafe {
                (*drv).freeze = Some(Self::freeze_callback);
                (*drv).restore = Some(Self::restore_callback);
            }
        }
    }

    /// Without system sleep the core never calls `freeze` or `restore`.
    ///
    /// # Safety
    ///
    /// None needed; `unsafe` as the `CONFIG_PM_SLEEP` variant.
    #[cfg(not(CONFIG_PM_SLEEP))]
    unsafe fn set_sleep_callbacks(_drv: *mut bindings::virtio_driver) {}

    /// Stops the driver for a system sleep or a reset ([`Driver::freeze`] or
    /// [`Driver::reset_prepare`], as `stop`): the core stopped configuration change reports
    /// before; a change still being handled is waited for, so that the driver's handler never
    /// runs while its queues are frozen (the core reports changes again after the restart).
    fn pause(
        dev: &Device<device::CoreInternal<'_>>,
        data: Pin<&DriverData<T>>,
        stop: fn(&Device<device::Core<'_>>, Pin<&T>) -> Result,
    ) -> c_int {
        // SAFETY: `config_work` was initialised in `probe_callback`.
        unsafe { bindings::flush_work(data.config_work.get()) };
        from_result(|| {
            stop(dev, data.data())?;
            Ok(0)
        })
    }

    /// Starts the driver again after [`Adapter::pause`] ([`Driver::restore`] or
    /// [`Driver::reset_done`], as `start`): the core has reset the device and negotiated its
    /// features.
    fn unpause(
        dev: &Device<device::CoreInternal<'_>>,
        data: Pin<&DriverData<T>>,
        start: fn(&Device<device::Core<'_>>, Pin<&T>) -> Result,
    ) -> c_int {
        from_result(|| {
            start(dev, data.data())?;
            Ok(0)
        })
    }

    #[cfg(CONFIG_PM_SLEEP)]
    extern "C" fn freeze_callback(vdev: *mut bindings::virtio_device) -> c_int {
        let ours = Self::freeze_callback as *const () as usize;
        Self::locked(
            vdev,
            |d| d.freeze,
            ours,
            |dev, data| Self::pause(dev, data, T::freeze),
        )
    }

    #[cfg(CONFIG_PM_SLEEP)]
    extern "C" fn restore_callback(vdev: *mut bindings::virtio_device) -> c_int {
        let ours = Self::restore_callback as *const () as usize;
        Self::locked(
            vdev,
            |d| d.restore,
            ours,
            |dev, data| Self::unpause(dev, data, T::restore),
        )
    }

    extern "C" fn reset_prepare_callback(vdev: *mut bindings::virtio_device) -> c_int {
        let ours = Self::reset_prepare_callback as *const () as usize;
        Self::locked(
            vdev,
            |d| d.reset_prepare,
            ours,
            |dev, data| Self::pause(dev, data, T::reset_prepare),
        )
    }

    extern "C" fn reset_done_callback(vdev: *mut bindings::virtio_device) -> c_int {
        let ours = Self::reset_done_callback as *const () as usize;
        Self::locked(
            vdev,
            |d| d.reset_done,
            ours,
            |dev, data| Self::unpause(dev, data, T::reset_done),
        )
    }

    /// Runs `f` for a sleep or reset callback with the lock of the virtio device held, if a
    /// driver of this adapter is still bound to it (the driver's `hook` is `ours`, the
    /// callback's address); `ENODEV` otherwise.
    ///
    /// The transport calls the virtio core's `virtio_device_freeze`/`restore` (from its own
    /// system-sleep callbacks) and `virtio_device_reset_prepare`/`reset_done` (from the PCI
    /// core's reset handlers) with its own device's lock held, the virtio device's parent, not
    /// the virtio device's; and the virtio core reads the device's driver without a lock before
    /// calling its hook. For a sleep, user space is frozen and probing is held back; a reset
    /// comes from user space (`/sys/bus/pci/devices/…/reset`), while the virtio driver may be
    /// unbound or another bound. Under the device's own lock (taken after its parent's, the
    /// driver core's order) the driver can neither be bound nor unbound, so the callback checks
    /// the binding again there.
    fn locked(
        vdev: *mut bindings::virtio_device,
        hook: fn(&bindings::virtio_driver) -> Hook,
        ours: usize,
        f: impl FnOnce(&Device<device::CoreInternal<'_>>, Pin<&DriverData<T>>) -> c_int,
    ) -> c_int {
        // SAFETY: The virtio core calls the sleep and reset callbacks with a valid device,
        // which the transport cannot unregister while its own device's lock is held (by the PM
        // core or the PCI core, for the whole call).
        let mutex = unsafe { &raw mut (*vdev).dev.mutex };
        // SAFETY: `mutex` is the device's lock, valid (above); not held by this task (the caller
        // holds the parent's, which the driver core always takes before the child's).
        unsafe { bindings::mutex_lock(mutex) };
        let _unlock = ScopeGuard::new(|| {
            // SAFETY: This task locked `mutex` above.
            unsafe { bindings::mutex_unlock(mutex) }
        });
        // SAFETY: `vdev` is valid; its driver is set and cleared only under the device lock,
        // which is held.
        let drv = unsafe { (*vdev).dev.driver };
        if drv.is_null() {
            return ENODEV.to_errno();
        }
        // SAFETY: A driver bound to a virtio device is the `driver` of a `struct
        // virtio_driver`, registered (so valid, and not written any more) while it is bound.
        let drv = unsafe { &*crate::container_of!(drv, bindings::virtio_driver, driver) };
        if hook(drv).map(|hook| hook as usize) != Some(ours) {
            return ENODEV.to_errno();
        }
        // SAFETY: `vdev` is valid (above).
        if unsafe { bindings::dev_get_drvdata(&raw const (*vdev).dev) }.is_null() {
            return ENODEV.to_errno();
        }
        // SAFETY: `vdev` is valid and a driver is bound to it; its device lock is held (above)
        // for as long as `dev` lives: core context.
        let dev = unsafe { &*vdev.cast::<Device<device::CoreInternal<'_>>>() };
        // SAFETY: The bound driver's hook is this adapter's callback, whose address only an
        // `Adapter<T>` registers (a function's address is its code: two share one only when
        // they are the same code), so the driver's `probe` (which completed: the driver is bound
        // and the data set) stored a `Pin<KBox<DriverData<T>>>`. `remove` cannot run while the
        // device lock is held.
        let data = unsafe { dev.as_ref().drvdata_borrow::<DriverData<T>>() };
        f(dev, data)
    }

    extern "C" fn config_changed_callback(vdev: *mut bindings::virtio_device) {
        // SAFETY: The virtio core calls `config_changed` with a valid device, only between the
        // end of a successful `probe` and the start of `remove` (`virtio_config_enable` and
        // `virtio_config_disable`), so the driver is bound.
        let dev = unsafe { &*vdev.cast::<Device<device::BoundInternal>>() };
        // SAFETY: See above: `probe` stored a `Pin<KBox<DriverData<T>>>`, `remove` has not taken
        // it yet.
        let data = unsafe { dev.as_ref().drvdata_borrow::<DriverData<T>>() };
        // The driver's handler may sleep (configuration reads, disk updates): it runs from a
        // work item, which `remove` waits for.
        // SAFETY: `config_work` was initialised in `probe_callback`; the device is bound, as the
        // type invariants of `DriverData` require for queueing it.
        unsafe {
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
                bindings::system_dfl_wq,
                data.config_work.get(),
            )
        };
    }
}

/// Declares a kernel module that exposes a single virtio driver.
#[macro_export]
macro_rules! module_virtio_driver {
    ($($f:tt)*) => {
        $crate::module_driver!(<T>, $crate::virtio::Adapter<T>, { $($f)* });
    };
}

/// A virtio device id ([`struct virtio_device_id`]).
///
/// [`struct virtio_device_id`]: srctree/include/linux/mod_devicetable.h
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct DeviceId(bindings::virtio_device_id);

impl DeviceId {
    /// Matches devices of type `device` (e.g. 2 for block) from any vendor.
    pub const fn new(device: u32) -> Self {
        Self(bindings::virtio_device_id {
            device,
            vendor: bindings::VIRTIO_DEV_ANY_ID,
        })
    }
}

// SAFETY: `DeviceId` is a `#[repr(transparent)]` wrapper of `virtio_device_id` and adds no
// invariants.
unsafe impl RawDeviceId for DeviceId {
    type RawType = bindings::virtio_device_id;
}

/// `IdTable` type for virtio (virtio ids carry no driver data).
pub type IdTable = &'static dyn crate::device_id::IdTable<DeviceId, ()>;

/// Creates a virtio `IdTable` with its alias for modpost.
#[macro_export]
macro_rules! virtio_device_table {
    ($table_name:ident, [$($id:expr),* $(,)?]) => {
        $crate::module_device_table!("virtio", $crate::virtio::DeviceId, $table_name, @none,
            [$($id),*]);
    };
}

/// The virtio driver trait.
#[vtable]
pub trait Driver: Send + Sync + Sized + 'static {
    /// The device ids the driver binds.
    const ID_TABLE: IdTable;

    /// The device feature bits the driver understands. Only these (and the transport's own
    /// bits) can be accepted; [`Device::has_feature`] reports what was.
    const FEATURES: &'static [u32];

    /// Binds a device: finds its queues, reads its configuration, registers what it offers.
    fn probe(dev: &Device<device::Core<'_>>) -> impl PinInit<Self, Error>;

    /// Called before the driver's data is dropped on unbind. The device is reset after the data
    /// is dropped (the data's [`Queues`] reset it when they go).
    fn remove(dev: &Device<device::Core<'_>>, this: Pin<&Self>) {
        let _ = (dev, this);
    }

    /// The device's configuration changed. Called in process context (from a work item the
    /// abstraction queues when the core reports the change, possibly in interrupt context), so
    /// it may sleep; never after [`Driver::remove`] has started. Changes reported while it runs
    /// call it again.
    fn config_changed(dev: &Device<device::Bound>, this: Pin<&Self>) {
        let _ = (dev, this);
    }

    /// The system is going to sleep (suspend or hibernation; only with `CONFIG_PM_SLEEP`): stop
    /// using the device, whose transport is disabled when this returns. A driver drains or
    /// holds back its requests, then freezes its [`Queues`] ([`Queues::freeze`], which resets
    /// the device and deletes its virtqueues). [`Driver::config_changed`] does not run from
    /// the start of the call until after [`Driver::restore`]. An error aborts the sleep.
    ///
    /// A driver implements both `freeze` and `restore`, or neither; without them the core
    /// suspends the device without telling the driver, whose queues are then dead on resume.
    fn freeze(dev: &Device<device::Core<'_>>, this: Pin<&Self>) -> Result {
        let _ = (dev, this);
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The system resumed: the core has reset the device and negotiated its features again.
    /// A driver restores its [`Queues`] ([`Queues::restore`]), tells the device it is ready
    /// ([`Device::ready`]) and lets its requests go again. On error the core marks the device
    /// failed.
    fn restore(dev: &Device<device::Core<'_>>, this: Pin<&Self>) -> Result {
        let _ = (dev, this);
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The transport is about to reset the device (with or without `CONFIG_PM_SLEEP`: a PCI
    /// function reset, e.g. written to its `reset` attribute in sysfs), and disables it when
    /// this returns. The driver stops using the device as for [`Driver::freeze`] (usually the
    /// same code: drain, then [`Queues::freeze`]); [`Driver::config_changed`] does not run
    /// until after [`Driver::reset_done`]. An error leaves the device enabled (the reset still
    /// happens under the driver, and `reset_done` is not called).
    ///
    /// A driver implements both `reset_prepare` and `reset_done`, or neither; without them the
    /// transport resets the device under the driver, whose queues are then dead.
    fn reset_prepare(dev: &Device<device::Core<'_>>, this: Pin<&Self>) -> Result {
        let _ = (dev, this);
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// The reset is over: the core has reset the device again and negotiated its features, as
    /// for [`Driver::restore`]; the driver restores its [`Queues`] ([`Queues::restore`]),
    /// calls [`Device::ready`] and lets its requests go. On error the core marks the device
    /// failed.
    fn reset_done(dev: &Device<device::Core<'_>>, this: Pin<&Self>) -> Result {
        let _ = (dev, this);
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// A virtio device ([`struct virtio_device`]).
///
/// # Invariants
///
/// `self.0` is a valid `struct virtio_device`.
///
/// [`struct virtio_device`]: srctree/include/linux/virtio.h
#[repr(transparent)]
pub struct Device<Ctx: device::DeviceContext = device::Normal>(
    Opaque<bindings::virtio_device>,
    PhantomData<Ctx>,
);

impl<Ctx: device::DeviceContext> Device<Ctx> {
    fn as_raw(&self) -> *mut bindings::virtio_device {
        self.0.get()
    }

    /// The virtio device type (e.g. 2 for a block device).
    pub fn device_type(&self) -> u32 {
        // SAFETY: By the type invariant `self.as_raw()` is valid; `id` does not change.
        unsafe { (*self.as_raw()).id.device }
    }

    /// The device's index on the virtio bus (`virtioN`).
    pub fn index(&self) -> i32 {
        // SAFETY: By the type invariant `self.as_raw()` is valid; `index` does not change.
        unsafe { (*self.as_raw()).index }
    }
}

impl Device<device::Bound> {
    /// Whether feature `bit` was negotiated. Bits beyond the core's feature space are never set.
    pub fn has_feature(&self, bit: u32) -> bool {
        if bit >= FEATURE_BITS {
            return false;
        }
        // SAFETY: `self.as_raw()` is valid and `bit` is within the feature array.
        unsafe { bindings::virtio_test_feature(self.as_raw(), bit) }
    }

    /// Whether the device's configuration space and ring fields are little endian (always for
    /// virtio 1.0 devices; legacy devices use the guest's byte order).
    pub fn is_little_endian(&self) -> bool {
        // SAFETY: `self.as_raw()` is valid.
        unsafe { bindings::virtio_is_little_endian(self.as_raw()) }
    }

    /// Converts a value to the device's byte order (`cpu_to_virtio32`).
    pub fn to_virtio_u32(&self, v: u32) -> [u8; 4] {
        if self.is_little_endian() {
            v.to_le_bytes()
        } else {
            v.to_ne_bytes()
        }
    }

    /// Converts a value to the device's byte order (`cpu_to_virtio64`).
    pub fn to_virtio_u64(&self, v: u64) -> [u8; 8] {
        if self.is_little_endian() {
            v.to_le_bytes()
        } else {
            v.to_ne_bytes()
        }
    }

    /// The largest DMA segment the device's transport can map.
    pub fn max_dma_size(&self) -> usize {
        // SAFETY: `self.as_raw()` is valid.
        unsafe { bindings::virtio_max_dma_size(self.as_raw()) }
    }

    fn generation(&self) -> u32 {
        // SAFETY: `self.as_raw()` is valid.
        unsafe { bindings::virtio_config_generation(self.as_raw()) }
    }

    /// Reads `buf.len()` bytes of the device-specific configuration at `offset`, as one field
    /// (no generation check; see [`Device::config_consistent`]). May sleep.
    pub fn config_read_raw(&self, offset: u32, buf: &mut [u8]) -> Result {
        let len = u32::try_from(buf.len())?;
        offset.checked_add(len).ok_or(EINVAL)?;
        // SAFETY: `self.as_raw()` is valid and `buf` is valid for writes of `len` bytes.
        unsafe { bindings::virtio_config_get(self.as_raw(), offset, buf.as_mut_ptr().cast(), len) };
        Ok(())
    }

    /// Reads an 8-bit configuration field.
    pub fn config_u8(&self, offset: u32) -> Result<u8> {
        let mut b = [0u8; 1];
        self.config_read_raw(offset, &mut b)?;
        Ok(b[0])
    }

    /// Reads a 16-bit configuration field in the device's byte order.
    pub fn config_u16(&self, offset: u32) -> Result<u16> {
        let mut b = [0u8; 2];
        self.config_read_raw(offset, &mut b)?;
        Ok(if self.is_little_endian() {
            u16::from_le_bytes(b)
        } else {
            u16::from_ne_bytes(b)
        })
    }

    /// Reads a 32-bit configuration field in the device's byte order.
    pub fn config_u32(&self, offset: u32) -> Result<u32> {
        let mut b = [0u8; 4];
        self.config_read_raw(offset, &mut b)?;
        Ok(if self.is_little_endian() {
            u32::from_le_bytes(b)
        } else {
            u32::from_ne_bytes(b)
        })
    }

    /// Reads a 64-bit configuration field in the device's byte order. Transports read it in
    /// two halves, so this retries until the generation is stable.
    pub fn config_u64(&self, offset: u32) -> Result<u64> {
        self.config_consistent(|dev| {
            let mut b = [0u8; 8];
            dev.config_read_raw(offset, &mut b)?;
            Ok(if dev.is_little_endian() {
                u64::from_le_bytes(b)
            } else {
                u64::from_ne_bytes(b)
            })
        })
    }

    /// Writes `buf` to the device-specific configuration at `offset`, as one field (for the few
    /// fields a driver may write, e.g. a block device's write-cache mode). May sleep.
    pub fn config_write_raw(&self, offset: u32, buf: &[u8]) -> Result {
        let len = u32::try_from(buf.len())?;
        offset.checked_add(len).ok_or(EINVAL)?;
        // SAFETY: `self.as_raw()` is valid and `buf` is valid for reads of `len` bytes.
        unsafe { bindings::virtio_config_set(self.as_raw(), offset, buf.as_ptr().cast(), len) };
        Ok(())
    }

    /// Writes an 8-bit configuration field.
    pub fn config_write_u8(&self, offset: u32, v: u8) -> Result {
        self.config_write_raw(offset, &[v])
    }

    /// Runs `read` until the device's configuration generation is the same before and after it,
    /// so that several fields read by `read` belong to one configuration. Gives up with `EIO`
    /// after [`CONFIG_RETRIES`] attempts.
    pub fn config_consistent<R>(&self, read: impl FnMut(&Self) -> Result<R>) -> Result<R> {
        let mut read = read;
        retry_consistent(|| self.generation(), || read(self))
    }
}

/// The generation-count retry loop behind [`Device::config_consistent`], independent of a
/// device so that it can be tested.
pub fn retry_consistent<R>(
    mut generation: impl FnMut() -> u32,
    mut read: impl FnMut() -> Result<R>,
) -> Result<R> {
    for _ in 0..CONFIG_RETRIES {
        let before = generation();
        let value = read()?;
        if generation() == before {
            return Ok(value);
        }
    }
    Err(EIO)
}

/// A handle to a device that gives it as bound ([`BoundDevice::with`]) while the driver is bound,
/// for code the driver core does not run within the binding: callbacks of objects the driver
/// registered (sysfs attributes of its disks, for instance) that may run concurrently with
/// unbinding.
///
/// # Invariants
///
/// While `dev` holds a device, that device is bound to the driver that made the handle: the
/// device-managed action that empties it runs on unbind, before the driver is detached.
#[pin_data]
pub struct BoundDevice {
    #[pin]
    dev: crate::sync::Mutex<Option<ARef<Device>>>,
}

/// Empties a [`BoundDevice`] when dropped (registered with devres, so on unbind).
struct Unbind(Arc<BoundDevice>);

impl Drop for Unbind {
    fn drop(&mut self) {
        // Waits for a `with` in progress: after this no one uses the device as bound.
        *self.0.dev.lock() = None;
    }
}

impl BoundDevice {
    /// Makes a handle for `dev`, emptied when the driver unbinds.
    pub fn new(dev: &Device<device::Core<'_>>) -> Result<Arc<Self>> {
        let this = Arc::pin_init(
            pin_init!(Self {
                dev <- crate::new_mutex!(Some(ARef::from(dev))),
            }),
            GFP_KERNEL,
        )?;
        crate::devres::register(dev.as_ref(), Unbind(this.clone()), GFP_KERNEL)?;
        Ok(this)
    }

    /// Runs `f` with the device while the driver is bound (holding off unbinding until `f`
    /// returns); `ENODEV` once it is unbound.
    pub fn with<R>(&self, f: impl FnOnce(&Device<device::Bound>) -> R) -> Result<R> {
        let guard = self.dev.lock();
        let dev = guard.as_ref().ok_or(ENODEV)?;
        let raw: *const Device = &**dev;
        // SAFETY: By the type invariants the device is bound while it is in `dev`, and it stays
        // there while the lock is held. `Device<Bound>` is a transparent wrapper of the same
        // `struct virtio_device`.
        let bound = unsafe { &*raw.cast::<Device<device::Bound>>() };
        Ok(f(bound))
    }
}

impl<'a> Device<device::Core<'a>> {
    /// Tells the device the driver is ready (`DRIVER_OK`), so that its queues can be used
    /// during probe. Done automatically after probe otherwise; calling it twice is harmless.
    pub fn ready(&self) {
        // SAFETY: `self.as_raw()` is valid; the device is being probed (core context).
        unsafe {
            if bindings::virtio_get_status(self.as_raw())
                & bindings::VIRTIO_CONFIG_S_DRIVER_OK as u8
                == 0
            {
                bindings::virtio_device_ready(self.as_raw());
            }
        }
    }
}

// SAFETY: `Device` is a transparent wrapper of a type that doesn't depend on `Device`'s generic
// argument.
kernel::impl_device_context_deref!(unsafe { Device });
kernel::impl_device_context_into_aref!(Device);

// SAFETY: Instances of `Device` are always reference-counted through their `struct device`.
unsafe impl AlwaysRefCounted for Device {
    fn inc_ref(&self) {
        // SAFETY: The existence of a shared reference guarantees that the refcount is non-zero.
        unsafe { bindings::get_device(addr_of_mut!((*self.as_raw()).dev)) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The safety requirements guarantee that the refcount is non-zero.
        unsafe {
            bindings::put_device(addr_of_mut!(
                (*obj.cast::<bindings::virtio_device>().as_ptr()).dev
            ))
        }
    }
}

impl<Ctx: device::DeviceContext> AsRef<device::Device<Ctx>> for Device<Ctx> {
    fn as_ref(&self) -> &device::Device<Ctx> {
        // SAFETY: By the type invariant, `self.as_raw()` is a valid `struct virtio_device`.
        let dev = unsafe { addr_of_mut!((*self.as_raw()).dev) };
        // SAFETY: `dev` points to a valid `struct device`.
        unsafe { device::Device::from_raw(dev) }
    }
}

// SAFETY: A `Device` is always reference-counted and can be released from any thread.
unsafe impl Send for Device {}

// SAFETY: The methods of `Device<Normal>` are thread safe.
unsafe impl Sync for Device {}

// SAFETY: Same `struct virtio_device`; `Bound` is a zero-sized marker.
unsafe impl Sync for Device<device::Bound> {}

/// Memory of another owner that a [`Buffer`] lends to the device, described by a
/// scatter-gather list (e.g. the data pages of a block request).
///
/// # Safety
///
/// When [`Payload::sg`] returns `Some(sg)`, `sg` is the first entry of a valid scatterlist
/// (end-marked) whose entries describe memory that stays valid, and that safe code does not
/// access, for as long as the payload exists and is not accessed through `&mut`. The list
/// itself stays valid for as long as the payload is not moved or dropped.
pub unsafe trait Payload: Send {
    /// The scatterlist, or `None` when the payload carries no memory.
    fn sg(&mut self) -> Option<NonNull<bindings::scatterlist>>;

    /// Whether the device writes the payload (a read from the device) rather than reads it.
    fn device_writes(&self) -> bool;
}

/// A [`Payload`] that never carries memory.
pub struct NoPayload;

// SAFETY: `sg` never returns a scatterlist.
unsafe impl Payload for NoPayload {
    fn sg(&mut self) -> Option<NonNull<bindings::scatterlist>> {
        None
    }

    fn device_writes(&self) -> bool {
        false
    }
}

/// The memory of a value lent to the device, in the order the device sees it: bytes it reads,
/// a scatterlist of data (read or written by the device), bytes it writes. Made by
/// [`Lend::memory`]; only the kernel crate can fill it.
pub struct Chain {
    pub(crate) out: Option<(NonNull<u8>, u32)>,
    pub(crate) data: Option<(NonNull<bindings::scatterlist>, bool)>,
    pub(crate) inb: Option<(NonNull<u8>, u32)>,
}

impl Chain {
    /// The numbers of device-readable and device-writable scatterlists of the chain.
    pub fn counts(&self) -> (u32, u32) {
        let mut out = u32::from(self.out.is_some_and(|(_, len)| len > 0));
        let mut inn = u32::from(self.inb.is_some_and(|(_, len)| len > 0));
        match self.data {
            Some((_, true)) => inn += 1,
            Some((_, false)) => out += 1,
            None => {}
        }
        (out, inn)
    }
}

/// A value that is itself the virtqueue token: it moves into the virtqueue with
/// [`Virtqueue::add_lent`] and comes back, the same value, from [`Virtqueue::get_buf`] as
/// [`Used::Lent`] once the device is done with the memory its [`Chain`] describes (e.g. a block
/// request, `block::mq::DeviceRequest`, whose command, status and scatterlist live in the
/// request's own private data, so that adding it allocates nothing).
///
/// # Invariants the implementer guarantees (ownership)
///
/// While the value is in the virtqueue (between `into_raw` and `from_raw`) the driver holds
/// nothing through which it could reach the memory of the chain: the value itself was the
/// only way, and it is gone into the ring.
///
/// # Safety
///
/// - `into_raw` returns a pointer aligned to at least 2 that `from_raw` turns back into the
///   same value; the value is not dropped in between.
/// - The memory the chain from [`Lend::memory`] describes (and its scatterlist entries) stays
///   valid, and no safe code accesses it, from `into_raw` until `from_raw`.
pub unsafe trait Lend: Send + Sized {
    /// The memory to lend to the device.
    fn memory(&mut self) -> Chain;

    /// Gives the value up as a raw pointer (the virtqueue token).
    fn into_raw(self) -> NonNull<c_void>;

    /// Takes the value back.
    ///
    /// # Safety
    ///
    /// `ptr` comes from [`Lend::into_raw`] of this type and is taken back only once.
    unsafe fn from_raw(ptr: NonNull<c_void>) -> Self;
}

/// A [`Lend`] type for handlers that lend nothing but [`Buffer`]s.
pub enum NoLend {}

// SAFETY: `NoLend` has no values, so none of the methods can be called.
unsafe impl Lend for NoLend {
    fn memory(&mut self) -> Chain {
        match *self {}
    }

    fn into_raw(self) -> NonNull<c_void> {
        match self {}
    }

    unsafe fn from_raw(_ptr: NonNull<c_void>) -> Self {
        // SAFETY: By the safety requirements `ptr` comes from `into_raw`, which cannot be
        // called: this is never reached.
        unsafe { core::hint::unreachable_unchecked() }
    }
}

/// Something the device has used, given back by [`Virtqueue::get_buf`].
pub enum Used<H: Handler> {
    /// A buffer added with [`Virtqueue::add`].
    Buffer(HandlerBuffer<H>),
    /// A value added with [`Virtqueue::add_lent`].
    Lent(H::Lent),
}

/// The low bit of a virtqueue token that marks a [`Lend`] value (a `KBox<Buffer>` is aligned
/// to at least 8, a lent value's pointer to at least 2).
const LENT_TAG: usize = 1;

/// Turns a token back into what was added.
///
/// # Safety
///
/// `token` is a non-null token of a virtqueue of handler `H`, made by [`Virtqueue::add`] or
/// [`Virtqueue::add_lent`], that the device no longer uses and that nobody took back yet.
unsafe fn token_back<H: Handler>(token: NonNull<c_void>) -> Used<H> {
    let addr = token.as_ptr() as usize;
    if addr & LENT_TAG != 0 {
        let raw = token
            .as_ptr()
            .cast::<u8>()
            .wrapping_sub(LENT_TAG)
            .cast::<c_void>();
        // SAFETY: A tagged token is a `Lend::into_raw` pointer plus `LENT_TAG`, non-null.
        Used::Lent(unsafe { H::Lent::from_raw(NonNull::new_unchecked(raw)) })
    } else {
        // SAFETY: An untagged token is a `KBox<Buffer<..>>` from `add`.
        Used::Buffer(unsafe { KBox::from_raw(token.as_ptr().cast()) })
    }
}

/// A buffer chain for a virtqueue: bytes the device reads, an optional payload, and bytes the
/// device writes, in that order, plus a driver context `C` the device never sees.
pub struct Buffer<C, P: Payload> {
    out: KVec<u8>,
    payload: Option<P>,
    inb: KVec<u8>,
    ctx: C,
}

impl<C: Send, P: Payload> Buffer<C, P> {
    /// A buffer whose device-read part is `out` and whose device-written part is `in_len`
    /// zeroed bytes. Allocated with `flags`.
    pub fn new(
        ctx: C,
        out: KVec<u8>,
        payload: Option<P>,
        in_len: usize,
        flags: Flags,
    ) -> Result<KBox<Self>> {
        let mut inb = KVec::with_capacity(in_len, flags)?;
        inb.resize(in_len, 0, flags)?;
        Ok(KBox::new(
            Self {
                out,
                payload,
                inb,
                ctx,
            },
            flags,
        )?)
    }

    /// The bytes the device was given to read.
    pub fn out_bytes(&self) -> &[u8] {
        &self.out
    }

    /// The bytes the device wrote (zero where it wrote nothing).
    pub fn in_bytes(&self) -> &[u8] {
        &self.inb
    }

    /// The driver's context.
    pub fn ctx(&self) -> &C {
        &self.ctx
    }

    /// Takes the buffer apart: the context and the payload.
    pub fn into_parts(self) -> (C, Option<P>) {
        (self.ctx, self.payload)
    }

    /// The memory of the buffer, in the order the device sees it.
    fn memory(&mut self) -> Chain {
        let out = NonNull::new(self.out.as_mut_ptr())
            .zip(u32::try_from(self.out.len()).ok())
            .filter(|(_, len)| *len > 0);
        let inb = NonNull::new(self.inb.as_mut_ptr())
            .zip(u32::try_from(self.inb.len()).ok())
            .filter(|(_, len)| *len > 0);
        let data = self.payload.as_mut().and_then(|p| {
            let writes = p.device_writes();
            p.sg().map(|sg| (sg, writes))
        });
        Chain { out, data, inb }
    }

    /// The numbers of device-readable and device-writable scatterlists this buffer adds.
    pub fn sg_counts(&mut self) -> (u32, u32) {
        self.memory().counts()
    }
}

/// A buffer that could not be added to a virtqueue, given back with the reason.
pub struct AddError<C, P: Payload> {
    /// Why: `ENOSPC` when the ring is full.
    pub error: Error,
    /// The buffer, untouched.
    pub buffer: KBox<Buffer<C, P>>,
}

/// The buffers of the queues of handler `H`.
pub type HandlerBuffer<H> = KBox<Buffer<<H as Handler>::Ctx, <H as Handler>::Payload>>;

/// Called when the device has used buffers of a queue.
pub trait Handler: Sized + 'static {
    /// The driver's context in each buffer.
    type Ctx: Send;
    /// The payload type of the buffers.
    type Payload: Payload;
    /// The values that are their own token (e.g. block requests); [`NoLend`] for none.
    type Lent: Lend;

    /// The device used buffers of `queue`. Called from the queue's interrupt with local
    /// interrupts disabled, which `irq` proves: lock the queue with [`Queue::lock_with`], which
    /// then need not disable them again.
    fn done(queue: &Queue<Self>, irq: &LocalInterruptDisabled);
}

/// A virtqueue, reached through the lock of its [`Queue`]; empty (`None`) while the device's
/// queues are frozen ([`Queues::freeze`]): then nothing can be added (`ESHUTDOWN`) and nothing
/// is used.
///
/// # Invariants
///
/// When `vq` is `Some`, it is a valid virtqueue of the device: the virtqueues are only deleted
/// after `vq` was taken out (under the lock). Every token in it is a
/// `KBox<Buffer<H::Ctx, H::Payload>>` turned into a raw pointer, or an `H::Lent` from
/// [`Lend::into_raw`] tagged with [`LENT_TAG`].
pub struct Virtqueue<H: Handler> {
    vq: Option<NonNull<bindings::virtqueue>>,
    _p: PhantomData<KBox<Buffer<H::Ctx, H::Payload>>>,
}

// SAFETY: The virtqueue is used under the lock of its `Queue`; the buffers it owns are `Send`.
unsafe impl<H: Handler> Send for Virtqueue<H> {}

impl<H: Handler> Virtqueue<H> {
    /// Adds `buffer` to the queue: the device may use it from now on, and the driver gets it back
    /// from [`Virtqueue::get_buf`]. On failure the buffer comes back in the error.
    pub fn add(
        &mut self,
        mut buffer: KBox<Buffer<H::Ctx, H::Payload>>,
        flags: Flags,
    ) -> Result<(), AddError<H::Ctx, H::Payload>> {
        let chain = buffer.memory();
        let token = KBox::into_raw(buffer);
        // SAFETY: `token` is the box's pointer, aligned to at least 8 (untagged); the chain
        // describes memory the buffer (or its payload, by the `Payload` contract) owns, and the
        // queue owns the buffer from here until `get_buf` or `detach_unused_buf` returns it.
        let ret = unsafe { self.add_chain(&chain, token.cast(), flags) };
        if let Err(error) = ret {
            // SAFETY: The queue refused the buffer, so `token` is still ours, from `into_raw`.
            let buffer = unsafe { KBox::from_raw(token) };
            return Err(AddError { error, buffer });
        }
        Ok(())
    }

    /// Adds a value that is its own token (e.g. a block request with its command in its
    /// private data): nothing is allocated. The device may use its memory from now on; the
    /// driver gets the value back from [`Virtqueue::get_buf`] as [`Used::Lent`]. On failure the
    /// value comes back with the error.
    // Always inlined, as `add_chain` (a block request's path).
    #[inline(always)]
    pub fn add_lent(&mut self, mut value: H::Lent, flags: Flags) -> Result<(), (Error, H::Lent)> {
        let chain = value.memory();
        let raw = value.into_raw();
        if raw.as_ptr() as usize & LENT_TAG != 0 {
            // SAFETY: `raw` is from `into_raw` and was not given to the queue.
            return Err((EINVAL, unsafe { H::Lent::from_raw(raw) }));
        }
        let token = raw
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(LENT_TAG)
            .cast::<c_void>();
        // SAFETY: `token` is `raw` tagged (`raw` is aligned to 2, by the `Lend` contract); the
        // chain's memory stays valid and untouched until the value is taken back (`Lend`
        // contract), which only `get_buf` or `detach_unused_buf` does.
        if let Err(e) = unsafe { self.add_chain(&chain, token, flags) } {
            // SAFETY: The queue refused the token, so `raw` is still ours, from `into_raw`.
            return Err((e, unsafe { H::Lent::from_raw(raw) }));
        }
        Ok(())
    }

    /// Adds the scatterlists of `chain` with `token`.
    ///
    /// # Safety
    ///
    /// The memory `chain` describes stays valid and is not accessed by safe code until the
    /// device has used the token (`get_buf`) or the queue is torn down (`detach_unused_buf`);
    /// `token` is untagged for a `KBox<Buffer>`, tagged with [`LENT_TAG`] for a lent value.
    // Always inlined: a call and return cost more than their instructions under emulation
    // (TCG looks the return's target up at run time), and this is on every I/O.
    #[inline(always)]
    unsafe fn add_chain(&mut self, chain: &Chain, token: *mut c_void, flags: Flags) -> Result {
        // Frozen: the device has no virtqueue to add to.
        let vq = self.vq.ok_or(ESHUTDOWN)?;
        let (n_out, n_in) = chain.counts();
        if n_out + n_in == 0 {
            return Err(EINVAL);
        }
        // Left uninitialised until used: `sg_init_one` initialises the whole entry.
        let mut out_sg = MaybeUninit::<bindings::scatterlist>::uninit();
        let mut in_sg = MaybeUninit::<bindings::scatterlist>::uninit();
        let mut sgs: [*mut bindings::scatterlist; 3] = [core::ptr::null_mut(); 3];
        let mut n = 0;
        if let Some((p, len)) = chain.out.filter(|(_, len)| *len > 0) {
            // SAFETY: `out_sg` has room for a scatterlist entry, which `sg_init_one` fills;
            // `p` is valid for `len` bytes.
            unsafe { bindings::sg_init_one(out_sg.as_mut_ptr(), p.as_ptr().cast(), len) };
            sgs[n] = out_sg.as_mut_ptr();
            n += 1;
        }
        if let Some((sg, false)) = chain.data {
            sgs[n] = sg.as_ptr();
            n += 1;
        }
        if let Some((sg, true)) = chain.data {
            sgs[n] = sg.as_ptr();
            n += 1;
        }
        if let Some((p, len)) = chain.inb.filter(|(_, len)| *len > 0) {
            // SAFETY: As above.
            unsafe { bindings::sg_init_one(in_sg.as_mut_ptr(), p.as_ptr().cast(), len) };
            sgs[n] = in_sg.as_mut_ptr();
        }
        // SAFETY: By the type invariant `vq` is valid and we hold the queue's lock. `sgs`
        // holds `n_out + n_in` valid scatterlists, device-readable ones first; their memory
        // stays valid until the token comes back (safety requirements). The virtqueue copies
        // the addresses: the stack scatterlists are not used after the call.
        to_result(unsafe {
            bindings::virtqueue_add_sgs(
                vq.as_ptr(),
                sgs.as_mut_ptr(),
                n_out,
                n_in,
                token,
                flags.as_raw(),
            )
        })
    }

    /// Gets something the device has used, with the number of bytes the device says it wrote
    /// (device-provided: not to be trusted).
    pub fn get_buf(&mut self) -> Option<(Used<H>, u32)> {
        let vq = self.vq?;
        let mut len: u32 = 0;
        // SAFETY: `vq` is valid (type invariant) and we hold the queue's lock.
        let token = unsafe { bindings::virtqueue_get_buf(vq.as_ptr(), &mut len) };
        let token = NonNull::new(token)?;
        // SAFETY: By the type invariant every token comes from `add` or `add_lent`; the device
        // is done with it, so it is ours again.
        Some((unsafe { token_back::<H>(token) }, len))
    }

    /// Prepares a notification of the device; `true` when [`Queue::notify`] should follow
    /// (never while frozen).
    pub fn kick_prepare(&mut self) -> bool {
        let Some(vq) = self.vq else {
            return false;
        };
        // SAFETY: `vq` is valid (type invariant) and we hold the queue's lock.
        unsafe { bindings::virtqueue_kick_prepare(vq.as_ptr()) }
    }

    /// Disables used-buffer callbacks (a hint to the device).
    pub fn disable_cb(&mut self) {
        if let Some(vq) = self.vq {
            // SAFETY: `vq` is valid (type invariant) and we hold the queue's lock.
            unsafe { bindings::virtqueue_disable_cb(vq.as_ptr()) }
        }
    }

    /// Re-enables callbacks; `false` when buffers were used meanwhile (poll again). Always
    /// `true` while frozen or broken (nothing to poll).
    pub fn enable_cb(&mut self) -> bool {
        let Some(vq) = self.vq else {
            return true;
        };
        // SAFETY: `vq` is valid (type invariant) and we hold the queue's lock.
        unsafe { bindings::virtqueue_enable_cb(vq.as_ptr()) }
    }

    /// The number of descriptors of the ring (0 while frozen).
    pub fn size(&self) -> u32 {
        let Some(vq) = self.vq else {
            return 0;
        };
        // SAFETY: `vq` is valid (type invariant).
        unsafe { bindings::virtqueue_get_vring_size(vq.as_ptr()) }
    }
}

/// One virtqueue of a device and its lock; the callback of the virtqueue calls
/// [`Handler::done`] with it.
///
/// # Invariants
///
/// `notify_vq` is null or the virtqueue inside `vq`; while it is non-null, the virtqueue is not
/// deleted before an RCU grace period has passed after it was cleared ([`Queues::freeze`]).
#[pin_data]
pub struct Queue<H: Handler> {
    #[pin]
    vq: SpinLockIrq<Virtqueue<H>>,
    notify_vq: Atomic<*mut bindings::virtqueue>,
    index: usize,
}

// SAFETY: The virtqueue is only used under `vq`'s lock, except for `notify`, which the virtio
// core allows concurrently with the other operations.
unsafe impl<H: Handler> Send for Queue<H> {}
// SAFETY: See above.
unsafe impl<H: Handler> Sync for Queue<H> {}

impl<H: Handler> Queue<H> {
    /// Locks the virtqueue (interrupts disabled).
    pub fn lock(&self) -> Guard<'_, Virtqueue<H>, SpinLockIrqBackend> {
        self.vq.lock()
    }

    /// Locks the virtqueue where local interrupts are already disabled (in
    /// [`Handler::done`]): the same lock as [`Queue::lock`], without disabling interrupts again.
    pub fn lock_with<'a>(
        &'a self,
        irq: &'a LocalInterruptDisabled,
    ) -> Guard<'a, Virtqueue<H>, SpinLockBackend> {
        self.vq.lock_with(irq)
    }

    /// The index of the queue in its device.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Notifies the device after [`Virtqueue::kick_prepare`] returned `true`; may be called
    /// without the lock. `false` when the device is broken or its queues are frozen.
    // Always inlined, as `add_chain`.
    #[inline(always)]
    pub fn notify(&self) -> bool {
        // Freezing clears the pointer, then waits for this section to end before deleting.
        let _rcu = rcu::read_lock();
        // An RCU dereference: a relaxed load, the address dependency orders the uses (the
        // pointer is published with `Release`).
        let vq = self.notify_vq.load(Relaxed);
        if vq.is_null() {
            return false;
        }
        // SAFETY: By the type invariant a non-null `notify_vq` read in an RCU read-side section
        // is a virtqueue that is not deleted before the section ends; notifying needs no lock.
        unsafe { bindings::virtqueue_notify(vq) }
    }

    /// Prepares and sends a notification.
    pub fn kick(&self) -> bool {
        let needed = self.lock().kick_prepare();
        !needed || self.notify()
    }
}

/// The virtqueue callback: finds the [`Queue`] through the device's private pointer (the
/// driver's field `vdev->priv`, which `Queues` owns; `vq->priv` belongs to the transport) and
/// the virtqueue's index.
///
/// # Safety
///
/// Called by the virtio core with a valid virtqueue of a device whose queues were created by
/// [`Queues::new`] (or found again by [`Queues::restore`]). While the queues are frozen the
/// queue holds no virtqueue, and [`Handler::done`] finds nothing to complete.
unsafe extern "C" fn vq_callback<H: Handler>(vq: *mut bindings::virtqueue) {
    // SAFETY: `vq` is valid and so is its device.
    let (vdev, index) = unsafe { ((*vq).vdev, (*vq).index) };
    // SAFETY: `vdev` is valid; `priv_` is written before the device may use buffers and
    // cleared only after the device is reset and callbacks are synchronized.
    let queues = unsafe { core::ptr::read_volatile(&raw const (*vdev).priv_) };
    if queues.is_null() {
        return;
    }
    // SAFETY: A non-null `priv_` points to the `Queues<H>` inside an `Arc`, which clears it,
    // resets the device and waits for running callbacks before it is freed.
    let queues = unsafe { &*queues.cast::<Queues<H>>() };
    let Some(queue) = queues.get(index as usize) else {
        return;
    };
    // Virtqueue interrupts run with local interrupts disabled, except for interrupt threads
    // on PREEMPT_RT: disable them there, so `done` always has the proof.
    if interrupt::irqs_disabled() {
        // SAFETY: Local interrupts are disabled (checked above) and stay so for the whole call:
        // the handler of an interrupt does not enable them.
        H::done(queue, unsafe { LocalInterruptDisabled::assume_disabled() });
    } else {
        let irq = local_interrupt_disable();
        H::done(queue, &irq);
    }
}

/// The virtqueues of a device. Dropping them resets the device, drops the buffers the device
/// never used, and deletes the virtqueues. They can be deleted and found again while they
/// exist, around a system sleep or a reset of the transport ([`Queues::freeze`],
/// [`Queues::restore`]).
///
/// # Invariants
///
/// `dev` is the device whose virtqueues are `queues`, found by `Queues::new` with `names` and
/// `spread`. `state` is [`LIVE`] when every queue holds its virtqueue, [`FROZEN`] when none
/// does and the device has no virtqueues, [`CHANGING`] while one call of `freeze` or `restore`
/// goes from one to the other.
pub struct Queues<H: Handler> {
    dev: ARef<Device>,
    queues: KVec<Pin<KBox<Queue<H>>>>,
    names: KVec<&'static CStr>,
    spread: bool,
    state: Atomic<u32>,
}

/// [`Queues::state`]: the virtqueues exist.
const LIVE: u32 = 0;
/// [`Queues::state`]: a freeze or a restore is under way.
const CHANGING: u32 = 1;
/// [`Queues::state`]: the virtqueues are deleted (the device is frozen).
const FROZEN: u32 = 2;

/// Finds the virtqueues `names` of `vdev`, each with the callback of handler `H`: one non-null
/// pointer a name.
///
/// # Safety
///
/// `vdev` is a valid device, bound or being bound (its device lock held), that has no
/// virtqueues; its `priv_` is null or points to the `Queues<H>` the virtqueues are for.
unsafe fn find_vqs<H: Handler>(
    vdev: *mut bindings::virtio_device,
    names: &[&'static CStr],
    spread: bool,
) -> Result<KVec<NonNull<bindings::virtqueue>>> {
    let n = names.len();
    let nvqs = u32::try_from(n)?;
    let mut raw: KVec<*mut bindings::virtqueue> = KVec::with_capacity(n, GFP_KERNEL)?;
    let mut infos: KVec<bindings::virtqueue_info> = KVec::with_capacity(n, GFP_KERNEL)?;
    for name in names {
        raw.push(core::ptr::null_mut(), GFP_KERNEL)?;
        infos.push(
            bindings::virtqueue_info {
                name: name.as_char_ptr(),
                callback: Some(vq_callback::<H>),
                ctx: false,
            },
            GFP_KERNEL,
        )?;
    }
    let mut found = KVec::with_capacity(n, GFP_KERNEL)?;
    // No vectors kept out of the spread: every vector is a queue's.
    let mut affinity: bindings::irq_affinity = pin_init::zeroed();
    let affinity_ptr: *mut bindings::irq_affinity = if spread {
        &mut affinity
    } else {
        core::ptr::null_mut()
    };
    // SAFETY: `vdev` is valid and has no virtqueues (safety requirements); `raw` and `infos`
    // have `nvqs` entries; `affinity_ptr` is null or points to a descriptor that outlives the
    // call.
    to_result(unsafe {
        bindings::virtio_find_vqs(
            vdev,
            nvqs,
            raw.as_mut_ptr(),
            infos.as_mut_ptr(),
            affinity_ptr,
        )
    })?;
    for vq in raw.iter() {
        match NonNull::new(*vq) {
            // Cannot fail: the capacity is reserved.
            Some(vq) => found.push(vq, GFP_KERNEL)?,
            None => {
                // SAFETY: The virtqueues were found above and nothing refers to them yet.
                unsafe { bindings::virtio_del_vqs(vdev) };
                return Err(EINVAL);
            }
        }
    }
    Ok(found)
}

impl<H: Handler> Queues<H> {
    /// Finds `names.len()` virtqueues of `dev`, each calling [`Handler::done`].
    pub fn new(dev: &Device<device::Core<'_>>, names: &[&'static CStr]) -> Result<Arc<Self>> {
        Self::find(dev, names, false)
    }

    /// Like [`Queues::new`], with the queues' interrupt vectors spread over the CPUs and
    /// managed by the kernel (`struct irq_affinity`), as a driver with one queue per CPU
    /// wants: each queue then interrupts the CPUs that submit to it (see
    /// [`TagSet::new_for_device_irqs`](crate::block::mq::TagSet::new_for_device_irqs)).
    pub fn new_spread(
        dev: &Device<device::Core<'_>>,
        names: &[&'static CStr],
    ) -> Result<Arc<Self>> {
        Self::find(dev, names, true)
    }

    fn find(
        dev: &Device<device::Core<'_>>,
        names: &[&'static CStr],
        spread: bool,
    ) -> Result<Arc<Self>> {
        let n = names.len();
        let mut kept = KVec::with_capacity(n, GFP_KERNEL)?;
        kept.extend_from_slice(names, GFP_KERNEL)?;
        let vdev = dev.as_raw();
        // A driver bound before may have left its own pointer in `priv` (the C virtio_blk
        // does): clear it before the callbacks exist, so that they never read a stale one.
        // SAFETY: `vdev` is valid and being probed; no virtqueue exists yet.
        unsafe { core::ptr::write_volatile(&raw mut (*vdev).priv_, core::ptr::null_mut()) };
        // SAFETY: `vdev` is valid, being probed (core context), without virtqueues; its
        // `priv_` is null.
        let raw = unsafe { find_vqs::<H>(vdev, names, spread) }?;
        let del = ScopeGuard::new(|| {
            // SAFETY: The virtqueues were found above and nothing refers to them on this path.
            unsafe { bindings::virtio_del_vqs(vdev) };
        });
        let mut queues = KVec::with_capacity(n, GFP_KERNEL)?;
        for (index, &raw_vq) in raw.iter().enumerate() {
            let queue = KBox::pin_init(
                pin_init!(Queue {
                    vq <- crate::new_spinlock_irq!(Virtqueue {
                        vq: Some(raw_vq),
                        _p: PhantomData,
                    }),
                    notify_vq: Atomic::new(raw_vq.as_ptr()),
                    index,
                }),
                GFP_KERNEL,
            )?;
            queues.push(queue, GFP_KERNEL)?;
        }
        // From here `Queues` (on drop) deletes the virtqueues.
        del.dismiss();
        let this = Arc::new(
            Self {
                dev: ARef::from(dev),
                queues,
                names: kept,
                spread,
                state: Atomic::new(LIVE),
            },
            GFP_KERNEL,
        )?;
        let p: *const Self = &*this;
        // SAFETY: `vdev` is valid and `priv_` is the driver's; no buffer was added yet, so no
        // callback reads it. `Drop` clears it before the `Queues` go.
        unsafe { core::ptr::write_volatile(&raw mut (*vdev).priv_, p.cast_mut().cast()) };
        Ok(this)
    }

    /// The number of queues.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    /// Whether there are no queues.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Queue `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<&Queue<H>> {
        self.queues.get(index).map(|q| &**q)
    }

    /// All queues.
    pub fn iter(&self) -> impl Iterator<Item = &Queue<H>> {
        self.queues.iter().map(|q| &**q)
    }

    /// Whether the queues are frozen (their virtqueues deleted).
    pub fn is_frozen(&self) -> bool {
        self.state.load(Relaxed) != LIVE
    }

    /// Resets the device and deletes its virtqueues, keeping the [`Queue`]s, for a system sleep
    /// ([`Driver::freeze`]) or a reset of the transport ([`Driver::reset_prepare`]). Until
    /// [`Queues::restore`], adding to a queue fails with `ESHUTDOWN`, nothing is used and
    /// notifying does nothing. Buffers the device had not used are dropped (a driver drains its
    /// requests first). `EBUSY` when the queues are not live, `EINVAL` when `dev` is not their
    /// device.
    pub fn freeze(&self, dev: &Device<device::Core<'_>>) -> Result {
        if dev.as_raw() != self.dev.as_raw() {
            return Err(EINVAL);
        }
        self.state
            .cmpxchg(LIVE, CHANGING, Full)
            .map_err(|_| EBUSY)?;
        let vdev = self.dev.as_raw();
        // SAFETY: `vdev` is valid (we hold a reference). Resetting stops the device using
        // buffers and interrupting; synchronizing waits for callbacks still running.
        unsafe {
            bindings::virtio_reset_device(vdev);
            bindings::virtio_synchronize_cbs(vdev);
        }
        // No notification starts on a virtqueue once its pointer is cleared; the grace period
        // waits for those under way.
        for q in self.iter() {
            q.notify_vq.store(core::ptr::null_mut(), Release);
        }
        rcu::synchronize_rcu();
        for q in self.iter() {
            // Taken out under the lock: from here no one reaches the virtqueue.
            let vq = q.vq.lock().vq.take();
            if let Some(vq) = vq {
                // SAFETY: `vq` was the queue's virtqueue, now reachable from here only; the
                // device is reset.
                unsafe { drop_unused::<H>(vq) };
            }
        }
        // SAFETY: The device is reset, no callback runs, and no handle to a virtqueue is left
        // (taken out of every queue, notify pointers cleared and waited for).
        unsafe { bindings::virtio_del_vqs(vdev) };
        self.state.store(FROZEN, Release);
        Ok(())
    }

    /// Finds the virtqueues again after [`Queues::freeze`] (from [`Driver::restore`] or
    /// [`Driver::reset_done`]: the core has reset the device and negotiated its features) and
    /// puts them in the queues. The driver then calls [`Device::ready`]. On error the queues stay
    /// frozen. `EBUSY` when they are not frozen, `EINVAL` when `dev` is not their device.
    pub fn restore(&self, dev: &Device<device::Core<'_>>) -> Result {
        if dev.as_raw() != self.dev.as_raw() {
            return Err(EINVAL);
        }
        self.state
            .cmpxchg(FROZEN, CHANGING, Full)
            .map_err(|_| EBUSY)?;
        // SAFETY: `dev` is in core context (its device lock is held) and has no virtqueues (the
        // state was `FROZEN`); its `priv_` points to `self`, set by `find`.
        let found = match unsafe { find_vqs::<H>(self.dev.as_raw(), &self.names, self.spread) } {
            Ok(found) => found,
            Err(e) => {
                self.state.store(FROZEN, Release);
                return Err(e);
            }
        };
        for (q, vq) in self.iter().zip(found.iter()) {
            q.vq.lock().vq = Some(*vq);
            q.notify_vq.store(vq.as_ptr(), Release);
        }
        self.state.store(LIVE, Release);
        Ok(())
    }
}

/// Drops the buffers the device never used of virtqueue `vq`.
///
/// # Safety
///
/// `vq` is a valid virtqueue of handler `H` whose device is reset, and nothing else uses it.
unsafe fn drop_unused<H: Handler>(vq: NonNull<bindings::virtqueue>) {
    loop {
        // SAFETY: `vq` is valid and the device is stopped (safety requirements).
        let token = unsafe { bindings::virtqueue_detach_unused_buf(vq.as_ptr()) };
        let Some(token) = NonNull::new(token) else {
            break;
        };
        // SAFETY: Tokens come from `Virtqueue::add` or `add_lent`; the device is reset, so it
        // no longer uses them.
        drop(unsafe { token_back::<H>(token) });
    }
}

impl<H: Handler> Drop for Queues<H> {
    fn drop(&mut self) {
        let vdev = self.dev.as_raw();
        // SAFETY: `vdev` is valid (we hold a reference). Resetting stops the device using
        // buffers; synchronizing waits for callbacks still running, so none runs after this.
        unsafe {
            bindings::virtio_reset_device(vdev);
            bindings::virtio_synchronize_cbs(vdev);
        }
        // SAFETY: `vdev` is valid; no callback runs any more (see above).
        unsafe { core::ptr::write_volatile(&raw mut (*vdev).priv_, core::ptr::null_mut()) };
        // Frozen queues have no virtqueues left to empty or delete.
        let mut live = false;
        for q in self.queues.iter() {
            let vq = q.vq.lock().vq.take();
            if let Some(vq) = vq {
                live = true;
                // SAFETY: `vq` is valid (taken out of its queue, which is going) and the device
                // is stopped.
                unsafe { drop_unused::<H>(vq) };
            }
        }
        if live {
            // SAFETY: The device is reset and no callback runs; nothing uses the queues after
            // this (`self.queues` is dropped right after).
            unsafe { bindings::virtio_del_vqs(vdev) };
        }
    }
}

#[macros::kunit_tests(rust_virtio)]
mod tests {
    use super::*;

    #[test]
    fn consistent_read_returns_first_stable_value() {
        let mut gen = 0u32;
        let mut reads = 0u32;
        let r = retry_consistent(
            || gen,
            || {
                reads += 1;
                Ok(reads)
            },
        );
        assert_eq!(r, Ok(1));
        let _ = &mut gen;
    }

    #[test]
    fn consistent_read_retries_while_generation_changes() {
        // The generation changes during the first two reads.
        let mut calls = 0u32;
        let mut reads = 0u32;
        let r = retry_consistent(
            || {
                calls += 1;
                // before/after pairs: (1,2) (3,4) then stable at 5.
                core::cmp::min(calls, 5)
            },
            || {
                reads += 1;
                Ok(reads)
            },
        );
        assert_eq!(r, Ok(3));
    }

    #[test]
    fn consistent_read_gives_up_on_a_device_that_never_settles() {
        let mut calls = 0u32;
        let r = retry_consistent(
            || {
                calls += 1;
                calls
            },
            || Ok(()),
        );
        assert_eq!(r, Err(EIO));
        assert_eq!(calls, 2 * CONFIG_RETRIES);
    }

    #[test]
    fn consistent_read_passes_errors_through() {
        let r: Result<()> = retry_consistent(|| 0, || Err(ENODEV));
        assert_eq!(r, Err(ENODEV));
    }

    #[test]
    fn buffer_counts_its_scatterlists() {
        let mut out = KVec::new();
        out.push(1u8, GFP_KERNEL).unwrap();
        let mut b = Buffer::<(), NoPayload>::new((), out, Some(NoPayload), 1, GFP_KERNEL).unwrap();
        assert_eq!(b.sg_counts(), (1, 1));
        assert_eq!(b.in_bytes(), &[0u8]);
        let mut empty = Buffer::<(), NoPayload>::new((), KVec::new(), None, 0, GFP_KERNEL).unwrap();
        assert_eq!(empty.sg_counts(), (0, 0));
    }

    /// A lent value for the token tests: a boxed number.
    struct Boxed(KBox<u64>);

    // SAFETY: `into_raw`/`from_raw` are `KBox`'s (aligned to 8); the chain is empty.
    unsafe impl Lend for Boxed {
        fn memory(&mut self) -> Chain {
            Chain {
                out: None,
                data: None,
                inb: None,
            }
        }

        fn into_raw(self) -> NonNull<c_void> {
            // SAFETY: `KBox::into_raw` never returns null.
            unsafe { NonNull::new_unchecked(KBox::into_raw(self.0).cast()) }
        }

        unsafe fn from_raw(ptr: NonNull<c_void>) -> Self {
            // SAFETY: `ptr` comes from `into_raw`, a `KBox<u64>`.
            Self(unsafe { KBox::from_raw(ptr.as_ptr().cast()) })
        }
    }

    struct TestHandler;

    impl Handler for TestHandler {
        type Ctx = u32;
        type Payload = NoPayload;
        type Lent = Boxed;

        fn done(_queue: &Queue<Self>, _irq: &LocalInterruptDisabled) {}
    }

    #[test]
    fn tokens_come_back_as_what_was_added() {
        // A lent value: tagged, as `add_lent` does.
        let raw = Boxed(KBox::new(42u64, GFP_KERNEL).unwrap()).into_raw();
        let token = raw
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(LENT_TAG)
            .cast::<c_void>();
        // SAFETY: `token` is a tagged `Boxed` pointer, as `add_lent` makes it.
        match unsafe { token_back::<TestHandler>(NonNull::new(token).unwrap()) } {
            Used::Lent(b) => assert_eq!(*b.0, 42),
            Used::Buffer(_) => panic!("a lent value came back as a buffer"),
        }
        // A buffer: untagged, as `add` does.
        let buf = Buffer::<u32, NoPayload>::new(7, KVec::new(), None, 1, GFP_KERNEL).unwrap();
        let token = KBox::into_raw(buf).cast::<c_void>();
        // SAFETY: `token` is a `KBox<Buffer<..>>` pointer, as `add` makes it.
        match unsafe { token_back::<TestHandler>(NonNull::new(token).unwrap()) } {
            Used::Buffer(b) => assert_eq!(*b.ctx(), 7),
            Used::Lent(_) => panic!("a buffer came back as a lent value"),
        }
    }

    #[test]
    fn chain_counts_readable_and_writable_parts() {
        let mut byte = 0u8;
        let p = NonNull::from(&mut byte);
        let mut sg: bindings::scatterlist = pin_init::zeroed();
        let sgp = NonNull::from(&mut sg);
        let c = Chain {
            out: Some((p, 16)),
            data: Some((sgp, true)),
            inb: Some((p, 1)),
        };
        assert_eq!(c.counts(), (1, 2));
        let c = Chain {
            out: Some((p, 16)),
            data: Some((sgp, false)),
            inb: Some((p, 0)),
        };
        assert_eq!(c.counts(), (2, 0));
    }
}
