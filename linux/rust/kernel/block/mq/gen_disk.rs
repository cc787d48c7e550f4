// SPDX-License-Identifier: GPL-2.0

//! Generic disk abstraction.
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)
//! C header: [`include/linux/blk-mq.h`](srctree/include/linux/blk-mq.h)

use crate::{
    bindings,
    block::mq::{Operations, TagSet},
    device,
    error::{self, from_err_ptr, Result},
    fmt::{self, Write},
    prelude::*,
    static_lock_class,
    str::NullTerminatedFormatter,
    sync::aref::ARef,
    sync::atomic::{Atomic, Full, Release},
    sync::Arc,
    types::{ForeignOwnable, Opaque, ScopeGuard},
};
use core::marker::PhantomData;

/// A builder for [`GenDisk`].
///
/// Use this struct to configure and add new [`GenDisk`] to the VFS.
pub struct GenDiskBuilder {
    rotational: bool,
    logical_block_size: u32,
    physical_block_size: u32,
    capacity_sectors: u64,
    limits: QueueLimits,
    read_only: bool,
    parent: Option<ARef<device::Device>>,
    serial: Option<KVec<u8>>,
    geometry: Option<Geometry>,
}

/// The cylinder/head/sector geometry a disk reports to `HDIO_GETGEO`, for partitioning tools
/// that still ask for it.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Cylinders.
    pub cylinders: u16,
    /// Heads.
    pub heads: u8,
    /// Sectors per track.
    pub sectors: u8,
}

/// Queue limits beyond the block sizes, for [`GenDiskBuilder::limits`]. Zero means the block
/// layer's default.
#[derive(Clone, Copy, Default, Debug)]
pub struct QueueLimits {
    /// Largest request, in 512-byte sectors.
    pub max_hw_sectors: u32,
    /// Most data segments in a request.
    pub max_segments: u16,
    /// Largest data segment, in bytes.
    pub max_segment_size: u32,
    /// Preferred minimum I/O size, in bytes.
    pub io_min: u32,
    /// Optimal I/O size, in bytes.
    pub io_opt: u32,
    /// Largest discard, in sectors (0: no discard).
    pub max_discard_sectors: u32,
    /// Most ranges in one discard request.
    pub max_discard_segments: u16,
    /// Discard granularity, in bytes.
    pub discard_granularity: u32,
    /// Largest secure erase, in sectors (0: no secure erase).
    pub max_secure_erase_sectors: u32,
    /// Largest write-zeroes, in sectors (0: no write-zeroes).
    pub max_write_zeroes_sectors: u32,
    /// The device has a volatile write cache (flush requests are sent).
    pub write_cache: bool,
    /// The device supports forced unit access writes.
    pub fua: bool,
}

impl Default for GenDiskBuilder {
    fn default() -> Self {
        Self {
            rotational: false,
            logical_block_size: bindings::PAGE_SIZE as u32,
            physical_block_size: bindings::PAGE_SIZE as u32,
            capacity_sectors: 0,
            limits: QueueLimits::default(),
            read_only: false,
            parent: None,
            serial: None,
            geometry: None,
        }
    }
}

impl GenDiskBuilder {
    /// Create a new instance.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the rotational media attribute for the device to be built.
    pub fn rotational(mut self, rotational: bool) -> Self {
        self.rotational = rotational;
        self
    }

    /// Validate block size by verifying that it is between 512 and `PAGE_SIZE`,
    /// and that it is a power of two.
    pub fn validate_block_size(size: u32) -> Result {
        if !(512..=bindings::PAGE_SIZE as u32).contains(&size) || !size.is_power_of_two() {
            Err(error::code::EINVAL)
        } else {
            Ok(())
        }
    }

    /// Set the logical block size of the device to be built.
    ///
    /// This method will check that block size is a power of two and between 512
    /// and 4096. If not, an error is returned and the block size is not set.
    ///
    /// This is the smallest unit the storage device can address. It is
    /// typically 4096 bytes.
    pub fn logical_block_size(mut self, block_size: u32) -> Result<Self> {
        Self::validate_block_size(block_size)?;
        self.logical_block_size = block_size;
        Ok(self)
    }

    /// Set the physical block size of the device to be built.
    ///
    /// This method will check that block size is a power of two and between 512
    /// and 4096. If not, an error is returned and the block size is not set.
    ///
    /// This is the smallest unit a physical storage device can write
    /// atomically. It is usually the same as the logical block size but may be
    /// bigger. One example is SATA drives with 4096 byte physical block size
    /// that expose a 512 byte logical block size to the operating system.
    pub fn physical_block_size(mut self, block_size: u32) -> Result<Self> {
        Self::validate_block_size(block_size)?;
        self.physical_block_size = block_size;
        Ok(self)
    }

    /// Set the capacity of the device to be built, in sectors (512 bytes).
    pub fn capacity_sectors(mut self, capacity: u64) -> Self {
        self.capacity_sectors = capacity;
        self
    }

    /// Set the queue limits beyond the block sizes.
    pub fn limits(mut self, limits: QueueLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Make the disk read-only.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Register the disk as a child of `parent` in sysfs (the device that provides it).
    pub fn parent(mut self, parent: &device::Device) -> Self {
        self.parent = Some(parent.into());
        self
    }

    /// Give the disk a `serial` attribute in sysfs (`/sys/block/NAME/serial`) showing `serial`.
    pub fn serial(mut self, serial: &[u8]) -> Result<Self> {
        let mut v = KVec::with_capacity(serial.len(), GFP_KERNEL)?;
        v.extend_from_slice(serial, GFP_KERNEL)?;
        self.serial = Some(v);
        Ok(self)
    }

    /// Report `geometry` to `HDIO_GETGEO` (without it the ioctl fails with `ENOTTY`).
    pub fn geometry(mut self, geometry: Geometry) -> Self {
        self.geometry = Some(geometry);
        self
    }

    /// Build a new `GenDisk` and add it to the VFS.
    pub fn build<T: Operations>(
        mut self,
        name: fmt::Arguments<'_>,
        tagset: Arc<TagSet<T>>,
        queue_data: T::QueueData,
    ) -> Result<GenDisk<T>> {
        let data = queue_data.into_foreign();
        let recover_data = ScopeGuard::new(|| {
            // SAFETY: T::QueueData was created by the call to `into_foreign()` above
            drop(unsafe { T::QueueData::from_foreign(data) });
        });

        let mut lim: bindings::queue_limits = pin_init::zeroed();

        lim.logical_block_size = self.logical_block_size;
        lim.physical_block_size = self.physical_block_size;
        if self.rotational {
            lim.features = bindings::BLK_FEAT_ROTATIONAL;
        }
        let l = &self.limits;
        lim.max_hw_sectors = l.max_hw_sectors;
        lim.max_segments = l.max_segments;
        lim.max_segment_size = l.max_segment_size;
        lim.io_min = l.io_min;
        lim.io_opt = l.io_opt;
        lim.max_hw_discard_sectors = l.max_discard_sectors;
        lim.max_discard_segments = l.max_discard_segments;
        lim.discard_granularity = l.discard_granularity;
        lim.max_secure_erase_sectors = l.max_secure_erase_sectors;
        lim.max_write_zeroes_sectors = l.max_write_zeroes_sectors;
        if l.write_cache {
            lim.features |= bindings::BLK_FEAT_WRITE_CACHE;
            if l.fua {
                lim.features |= bindings::BLK_FEAT_FUA;
            }
        }

        // SAFETY: `tagset.raw_tag_set()` points to a valid and initialized tag set
        let gendisk = from_err_ptr(unsafe {
            bindings::__blk_mq_alloc_disk(
                tagset.raw_tag_set(),
                &mut lim,
                data,
                static_lock_class!().as_ptr(),
            )
        })?;

        const TABLE: bindings::block_device_operations = bindings::block_device_operations {
            submit_bio: None,
            open: None,
            release: None,
            ioctl: None,
            compat_ioctl: None,
            check_events: None,
            unlock_native_capacity: None,
            getgeo: Some(getgeo),
            set_read_only: None,
            swap_slot_free_notify: None,
            report_zones: None,
            devnode: None,
            alternative_gpt_sector: None,
            get_unique_id: None,
            // TODO: Set to `THIS_MODULE`.
            owner: core::ptr::null_mut(),
            pr_ops: core::ptr::null_mut(),
            free_disk: Some(free_disk),
            poll_bio: None,
        };

        // SAFETY: `gendisk` is a valid pointer as we initialized it above
        unsafe { (*gendisk).fops = &TABLE };

        let cleanup_failure = ScopeGuard::new_with_data((gendisk, data), |(gendisk, data)| {
            // SAFETY: `gendisk` came from `__blk_mq_alloc_disk()` above and
            // has not been added to the VFS on this cleanup path.
            unsafe { bindings::put_disk(gendisk) };
            // SAFETY: `data` came from `into_foreign()` above and has not been
            // converted back on this cleanup path.
            drop(unsafe { T::QueueData::from_foreign(data) });
        });

        // The failure guard now owns both pieces of cleanup; the early guard
        // must not run on this path anymore.
        recover_data.dismiss();

        let mut writer = NullTerminatedFormatter::new(
            // SAFETY: `gendisk` points to a valid and initialized instance. We
            // have exclusive access, since the disk is not added to the VFS
            // yet.
            unsafe { &mut (*gendisk).disk_name },
        )
        .ok_or(EINVAL)?;
        writer.write_fmt(name)?;

        // SAFETY: `gendisk` points to a valid and initialized instance of
        // `struct gendisk`. `set_capacity` takes a lock to synchronize this
        // operation, so we will not race.
        unsafe { bindings::set_capacity(gendisk, self.capacity_sectors) };

        if self.read_only {
            // SAFETY: `gendisk` is valid and not yet added.
            unsafe { bindings::set_disk_ro(gendisk, true) };
        }

        let parent = self
            .parent
            .as_ref()
            .map_or(core::ptr::null_mut(), |p| p.as_raw());

        let driver_attrs = T::DISK_ATTRIBUTES;
        let attrs = if self.serial.is_some() || self.geometry.is_some() || !driver_attrs.is_empty()
        {
            let mut ptrs = KVec::with_capacity(driver_attrs.len() + 1, GFP_KERNEL)?;
            for a in driver_attrs {
                ptrs.push(a.as_raw_attr(), GFP_KERNEL)?;
            }
            ptrs.push(core::ptr::null_mut(), GFP_KERNEL)?;
            // SAFETY: All zeroes is a valid `attribute_group` (no name, no callbacks).
            let mut driver_group: bindings::attribute_group = unsafe { core::mem::zeroed() };
            driver_group.__bindgen_anon_2.attrs = ptrs.as_mut_ptr();
            driver_group.__bindgen_anon_1.is_visible = Some(driver_attr_visible::<T>);
            let mut boxed = KBox::new(
                DiskAttrs {
                    serial: self.serial.take(),
                    geometry: self.geometry,
                    _driver_attrs: ptrs,
                    driver_group,
                    groups: [
                        &raw const DISK_GROUP.0,
                        core::ptr::null(),
                        core::ptr::null(),
                    ],
                },
                GFP_KERNEL,
            )?;
            if !driver_attrs.is_empty() {
                // The box does not move (it becomes `private_data`), so the pointer stays valid.
                boxed.groups[1] = &raw const boxed.driver_group;
            }
            KBox::into_foreign(boxed)
        } else {
            core::ptr::null_mut()
        };
        let groups = if attrs.is_null() {
            DISK_GROUPS.0.as_ptr()
        } else {
            // SAFETY: `attrs` is the `DiskAttrs` just made, not shared yet.
            unsafe { (*attrs.cast::<DiskAttrs>()).groups.as_ptr() }
        };
        // SAFETY: `gendisk` is valid and not yet added; `private_data` is the driver's.
        unsafe { (*gendisk).private_data = attrs };
        let free_attrs = ScopeGuard::new(|| {
            if !attrs.is_null() {
                // SAFETY: `attrs` came from `into_foreign` above; the disk was not added, so
                // no sysfs callback uses it.
                drop(unsafe { KBox::<DiskAttrs>::from_foreign(attrs) });
            }
        });

        crate::error::to_result(
            // SAFETY: `gendisk` points to a valid and initialized instance of
            // `struct gendisk`; `parent` is null or a device we hold a reference to; `groups`
            // is a null-terminated array of groups that live until `free_disk` (after
            // `del_gendisk` removed them).
            unsafe { bindings::device_add_disk(parent, gendisk, groups.cast_mut()) },
        )?;

        cleanup_failure.dismiss();
        free_attrs.dismiss();

        // INVARIANT: `gendisk` was initialized above.
        // INVARIANT: `gendisk` was added to the VFS via `device_add_disk` above.
        // INVARIANT: `gendisk.queue.queue_data` is set to `data` in the call to
        // `__blk_mq_alloc_disk` above.
        Ok(GenDisk {
            _tagset: tagset,
            gendisk,
            quiesce: Atomic::new(RUNNING),
        })
    }
}

/// A generic block device.
///
/// # Invariants
///
///  - `gendisk` must always point to an initialized and valid `struct gendisk`.
///  - `gendisk` was added to the VFS through a call to
///    `bindings::device_add_disk`.
///  - `self.gendisk.queue.queuedata` is initialized by a call to `ForeignOwnable::into_foreign`.
///  - `quiesce` is [`QUIESCED`] when this `GenDisk` holds one quiesce level of the disk's queue
///    (taken by [`GenDisk::quiesce_drained`]), [`RUNNING`] when it holds none, [`CHANGING`]
///    while one call goes from one to the other.
pub struct GenDisk<T: Operations> {
    _tagset: Arc<TagSet<T>>,
    gendisk: *mut bindings::gendisk,
    quiesce: Atomic<u32>,
}

/// [`GenDisk::quiesce`]: requests reach the driver.
const RUNNING: u32 = 0;
/// [`GenDisk::quiesce`]: a quiesce or unquiesce is under way.
const CHANGING: u32 = 1;
/// [`GenDisk::quiesce`]: the queue is held quiesced by the `GenDisk`.
const QUIESCED: u32 = 2;

// SAFETY: `GenDisk` is an owned pointer to a `struct gendisk` and an `Arc` to a
// `TagSet`. It is safe to send this to other threads as long as these two are `Send`.
unsafe impl<T> Send for GenDisk<T>
where
    T: Operations,
    T::QueueData: Send,
    Arc<TagSet<T>>: Send,
{
}

impl<T: Operations> GenDisk<T> {
    /// Sets the capacity (in 512-byte sectors) of the live disk and tells user space when it
    /// changed (a resize).
    pub fn set_capacity(&self, sectors: u64) {
        // SAFETY: By type invariant `self.gendisk` is valid and added; the call takes the locks
        // it needs.
        unsafe { bindings::set_capacity_and_notify(self.gendisk, sectors) };
    }

    /// Waits until every request of the disk has completed, then holds new ones back: they
    /// wait in the block layer, not in the driver, until [`GenDisk::unquiesce`]. When this
    /// returns, no request is with the driver and no call of its `queue_rq`/`queue_rqs` is under
    /// way (what a driver needs before its device stops, e.g. for a system sleep: the C
    /// virtio_blk's freeze). Sleeps. `EBUSY` when the disk is already held quiesced.
    pub fn quiesce_drained(&self) -> Result {
        self.quiesce
            .cmpxchg(RUNNING, CHANGING, Full)
            .map_err(|_| EBUSY)?;
        // SAFETY: By the type invariants `self.gendisk` is valid and added; its queue lives as
        // long as it.
        let q = unsafe { (*self.gendisk).queue };
        // SAFETY: `q` is a valid queue. Freezing waits for every request to complete (and
        // keeps new ones from being allocated); quiescing then waits for dispatches under way
        // and holds back later ones; unfreezing lets requests be allocated again, to wait in
        // the quiesced queue. Nothing is allocated while frozen, so the no-I/O allocation scope
        // of `blk_mq_freeze_queue` is not needed.
        unsafe {
            bindings::blk_mq_freeze_queue_nomemsave(q);
            bindings::blk_mq_quiesce_queue(q);
            bindings::blk_mq_unfreeze_queue_nomemrestore(q);
        }
        self.quiesce.store(QUIESCED, Release);
        Ok(())
    }

    /// Lets the requests held back by [`GenDisk::quiesce_drained`] reach the driver again.
    /// `EINVAL` when the disk is not held quiesced.
    pub fn unquiesce(&self) -> Result {
        self.quiesce
            .cmpxchg(QUIESCED, CHANGING, Full)
            .map_err(|_| EINVAL)?;
        // SAFETY: `self.gendisk` and its queue are valid (type invariants); this `GenDisk`
        // holds a quiesce level (the state was `QUIESCED`), which this gives back.
        unsafe { bindings::blk_mq_unquiesce_queue((*self.gendisk).queue) };
        self.quiesce.store(RUNNING, Release);
        Ok(())
    }
}

// SAFETY: `GenDisk`'s `&self` methods only call block-layer functions that lock internally.
unsafe impl<T> Sync for GenDisk<T>
where
    T: Operations,
    T::QueueData: Send,
{
}

impl<T: Operations> Drop for GenDisk<T> {
    fn drop(&mut self) {
        // SAFETY: By type invariant of `Self`, `self.gendisk` points to a valid
        // and initialized instance of `struct gendisk`, and, `queuedata` was
        // initialized with the result of a call to
        // `ForeignOwnable::into_foreign`.
        let queue_data = unsafe { (*(*self.gendisk).queue).queuedata };

        // A disk still held quiesced (a driver whose device did not come back from a sleep)
        // lets its requests go, to the driver, which fails them: deleting it waits for them.
        if *self.quiesce.get_mut() == QUIESCED {
            // SAFETY: The disk and its queue are valid; this `GenDisk` holds a quiesce level.
            unsafe { bindings::blk_mq_unquiesce_queue((*self.gendisk).queue) };
        }

        // SAFETY: By type invariant, `self.gendisk` points to a valid and
        // initialized instance of `struct gendisk`, and it was previously added
        // to the VFS.
        unsafe { bindings::del_gendisk(self.gendisk) };

        // The disk's `DiskAttrs` (`private_data`) go in `free_disk`, with the last reference
        // to the disk: an opened block device may still ask for its geometry after
        // `del_gendisk`.

        // SAFETY: By type invariant, `self.gendisk` was added to the VFS, so
        // `put_disk()` must follow `del_gendisk()` to drop the final gendisk
        // reference and trigger the remaining release path.
        unsafe { bindings::put_disk(self.gendisk) };

        // SAFETY: `queue.queuedata` was created by `GenDiskBuilder::build` with
        // a call to `ForeignOwnable::into_foreign` to create `queuedata`.
        // `ForeignOwnable::from_foreign` is only called here.
        drop(unsafe { T::QueueData::from_foreign(queue_data) });
    }
}

/// What the driver told the builder about a disk beyond its queue (sysfs `serial`, geometry),
/// in `gendisk.private_data` from `build` until `free_disk`.
struct DiskAttrs {
    serial: Option<KVec<u8>>,
    geometry: Option<Geometry>,
    /// The driver's attributes ([`Operations::DISK_ATTRIBUTES`]), null-terminated, when it has
    /// any; only read through `driver_group`, which points to this buffer (`groups` points to
    /// both groups).
    _driver_attrs: KVec<*mut bindings::attribute>,
    driver_group: bindings::attribute_group,
    groups: [*const bindings::attribute_group; 3],
}

/// `getgeo` of the disk's operations (`HDIO_GETGEO`): the geometry given to the builder.
///
/// # Safety
///
/// Called by the block layer with a disk built by [`GenDiskBuilder::build`] (which holds a
/// reference to it) and a valid `hd_geometry`.
unsafe extern "C" fn getgeo(
    disk: *mut bindings::gendisk,
    geo: *mut bindings::hd_geometry,
) -> crate::ffi::c_int {
    // SAFETY: `disk` is valid; `private_data` is null or a `DiskAttrs` from `build`, freed only
    // in `free_disk`, after the last reference to the disk (the caller holds one) is gone.
    let attrs = unsafe { (*disk).private_data.cast::<DiskAttrs>().as_ref() };
    match attrs.and_then(|a| a.geometry) {
        Some(g) => {
            // SAFETY: `geo` is valid for writes, by the safety requirements.
            unsafe {
                (*geo).cylinders = g.cylinders;
                (*geo).heads = g.heads;
                (*geo).sectors = g.sectors;
            }
            0
        }
        None => ENOTTY.to_errno(),
    }
}

/// `free_disk` of the disk's operations: the disk's last reference is gone.
///
/// # Safety
///
/// Called once by the block layer when a disk that [`GenDiskBuilder::build`] added is released.
unsafe extern "C" fn free_disk(disk: *mut bindings::gendisk) {
    // SAFETY: `disk` is valid until this returns; nothing else uses it any more.
    let attrs = unsafe { (*disk).private_data };
    if !attrs.is_null() {
        // SAFETY: `attrs` came from `into_foreign` in `build` and is released only here.
        unsafe {
            (*disk).private_data = core::ptr::null_mut();
            drop(KBox::<DiskAttrs>::from_foreign(attrs));
        }
    }
}

/// The `DiskAttrs` of the disk whose `struct device` is `dev`, if it has any.
///
/// # Safety
///
/// `dev` is the `struct device` of a live block device (`bd_device`) whose disk was built by
/// [`GenDiskBuilder::build`], and the returned reference is not used after the disk's
/// attributes are removed.
unsafe fn disk_attrs<'a>(dev: *mut bindings::device) -> Option<&'a DiskAttrs> {
    // SAFETY: By the safety requirements `dev` is embedded in a `struct block_device`.
    let bdev = unsafe { crate::container_of!(dev, bindings::block_device, bd_device) };
    // SAFETY: `bdev` is valid; its disk outlives its sysfs attributes.
    let disk = unsafe { (*bdev).bd_disk };
    if disk.is_null() {
        return None;
    }
    // SAFETY: `disk` is valid; `private_data` is null or a `DiskAttrs` from `build`, freed only
    // after the attributes are removed.
    unsafe { (*disk).private_data.cast::<DiskAttrs>().as_ref() }
}

/// `show` of the `serial` attribute: the serial, without a newline (like virtio_blk's).
///
/// # Safety
///
/// Called by sysfs for the `serial` attribute of a disk built by [`GenDiskBuilder::build`];
/// `buf` is a page.
unsafe extern "C" fn serial_show(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut crate::ffi::c_char,
) -> isize {
    // SAFETY: By the safety requirements the attribute belongs to a live disk.
    let Some(serial) = (unsafe { disk_attrs(dev) }).and_then(|a| a.serial.as_ref()) else {
        return 0;
    };
    let n = serial.len().min(bindings::PAGE_SIZE - 1);
    // SAFETY: `buf` has room for a page; `n` is less than that.
    unsafe { core::ptr::copy_nonoverlapping(serial.as_ptr(), buf.cast::<u8>(), n) };
    n as isize
}

/// `is_visible` of the disk attributes: shown only for disks that have them.
///
/// # Safety
///
/// Called by sysfs with the `kobj` of a disk's `struct device` and one of [`DISK_ATTRS`].
unsafe extern "C" fn disk_attr_visible(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::attribute,
    _n: crate::ffi::c_int,
) -> bindings::umode_t {
    // SAFETY: `kobj` is embedded in the disk's `struct device`.
    let dev = unsafe { crate::container_of!(kobj, bindings::device, kobj) };
    // SAFETY: `dev` belongs to a disk being added by `build`; the reference is used at once.
    if unsafe { disk_attrs(dev) }.is_some_and(|a| a.serial.is_some()) {
        // SAFETY: `attr` is one of our static attributes.
        unsafe { (*attr).mode }
    } else {
        0
    }
}

/// Static C tables (sysfs attributes) that hold raw pointers; never written.
#[repr(transparent)]
struct StaticTable<T>(T);

// SAFETY: The tables are immutable and only read by sysfs.
unsafe impl<T> Sync for StaticTable<T> {}

static SERIAL_ATTR: StaticTable<bindings::device_attribute> = StaticTable({
    // SAFETY: All zeroes is a valid `device_attribute` (null pointers, no callbacks).
    let mut a: bindings::device_attribute = unsafe { core::mem::zeroed() };
    a.attr.name = c"serial".to_bytes_with_nul().as_ptr();
    a.attr.mode = 0o444;
    a.__bindgen_anon_1.show = Some(serial_show);
    a
});

static DISK_ATTRS: StaticTable<[*mut bindings::attribute; 2]> = StaticTable([
    (&raw const SERIAL_ATTR.0.attr).cast_mut(),
    core::ptr::null_mut(),
]);

static DISK_GROUP: StaticTable<bindings::attribute_group> = StaticTable({
    // SAFETY: All zeroes is a valid `attribute_group`.
    let mut g: bindings::attribute_group = unsafe { core::mem::zeroed() };
    g.__bindgen_anon_2.attrs = (&raw const DISK_ATTRS.0).cast_mut().cast();
    g.__bindgen_anon_1.is_visible = Some(disk_attr_visible);
    g
});

static DISK_GROUPS: StaticTable<[*const bindings::attribute_group; 2]> =
    StaticTable([&raw const DISK_GROUP.0, core::ptr::null()]);

/// A disk as its driver's attribute callbacks see it: its queue data and the queue settings a
/// driver may change while the disk is live.
///
/// # Invariants
///
/// A `&Disk<T>` only exists for a disk built by [`GenDiskBuilder::build`] for `T` that is
/// added and not yet deleted (between `device_add_disk` and `del_gendisk`), so its
/// `queue.queuedata` is the `T::QueueData` given to `build`.
#[repr(transparent)]
pub struct Disk<T: Operations>(Opaque<bindings::gendisk>, PhantomData<T>);

impl<T: Operations> Disk<T> {
    /// # Safety
    ///
    /// `ptr` is a disk as the type invariants require, for the lifetime `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::gendisk) -> &'a Self {
        // SAFETY: `Disk<T>` is a transparent wrapper of `gendisk`; by the safety requirements
        // the disk is valid for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn as_raw(&self) -> *mut bindings::gendisk {
        self.0.get()
    }

    /// The data given to [`GenDiskBuilder::build`] for the disk's queue.
    pub fn queue_data(&self) -> <T::QueueData as ForeignOwnable>::Borrowed<'_> {
        // SAFETY: By the type invariants the disk is live and `queuedata` came from
        // `into_foreign` in `build`; it is only converted back after `del_gendisk`, which
        // `&self` outlives.
        unsafe { T::QueueData::borrow((*(*self.as_raw()).queue).queuedata) }
    }

    /// Tells the block layer whether the device has a volatile write cache (whether flushes
    /// are sent; `queue/write_cache` in sysfs), freezing the queue for the change. Sleeps.
    pub fn set_write_cache(&self, enabled: bool) -> Result {
        // SAFETY: By the type invariants the disk and its queue are valid.
        let q = unsafe { (*self.as_raw()).queue };
        // SAFETY: `q` is a valid queue; this takes its `limits_lock`, which the commit below
        // releases.
        let mut lim = unsafe { bindings::queue_limits_start_update(q) };
        if enabled {
            lim.features |= bindings::BLK_FEAT_WRITE_CACHE;
        } else {
            lim.features &= !bindings::BLK_FEAT_WRITE_CACHE;
        }
        // SAFETY: `q` is valid and its `limits_lock` is held since `queue_limits_start_update`;
        // `lim` is a valid set of limits; the call releases the lock.
        crate::error::to_result(unsafe { bindings::queue_limits_commit_update_frozen(q, &mut lim) })
    }
}

impl<T: Operations> GenDisk<T> {
    /// The live disk, as its attribute callbacks see it.
    pub fn disk(&self) -> &Disk<T> {
        // SAFETY: By the type invariants `self.gendisk` is added; it is deleted only in `drop`,
        // so it is live while `self` is borrowed.
        unsafe { Disk::from_raw(self.gendisk) }
    }
}

/// The page a [`DiskAttribute`]'s `show` writes its text into (with [`core::fmt::Write`], e.g.
/// `writeln!`); writes beyond a page fail.
pub struct ShowBuffer {
    buf: *mut u8,
    len: usize,
}

impl ShowBuffer {
    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Write for ShowBuffer {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(core::fmt::Error)?;
        if end > bindings::PAGE_SIZE {
            return Err(core::fmt::Error);
        }
        // SAFETY: `buf` is valid for writes of a page (the type's construction in `attr_show`)
        // and `self.len + s.len()` is within it.
        unsafe { core::ptr::copy_nonoverlapping(s.as_ptr(), self.buf.add(self.len), s.len()) };
        self.len = end;
        Ok(())
    }
}

/// Shows an attribute: writes its value into the buffer.
pub type ShowFn<T> = fn(&Disk<T>, &mut ShowBuffer) -> Result;
/// Stores an attribute: the bytes user space wrote (a trailing newline included, when given).
pub type StoreFn<T> = fn(&Disk<T>, &[u8]) -> Result;
/// Whether a writable attribute is writable for this disk (else it is read-only).
pub type WritableFn<T> = fn(&Disk<T>) -> bool;

/// A sysfs attribute of a driver's disks (`/sys/block/NAME/ATTR`), listed in
/// [`Operations::DISK_ATTRIBUTES`]. Its callbacks get the [`Disk`] (and through it the queue
/// data): they run only while the disk is live, and `del_gendisk` waits for them.
///
/// # Invariants
///
/// `attr.show` is `attr_show::<T>`; `attr.store` is `attr_store::<T>` when `store` is set,
/// else null; `attr.attr.name` is a static C string.
#[repr(C)]
pub struct DiskAttribute<T: Operations> {
    attr: bindings::device_attribute,
    show: ShowFn<T>,
    store: Option<StoreFn<T>>,
    writable: Option<WritableFn<T>>,
}

// SAFETY: A `DiskAttribute` is never written after construction; sysfs only reads it.
unsafe impl<T: Operations> Sync for DiskAttribute<T> {}
// SAFETY: See above; its pointers are to static data.
unsafe impl<T: Operations> Send for DiskAttribute<T> {}

impl<T: Operations> DiskAttribute<T> {
    /// An attribute `name`, readable by all, and writable by root when it has a `store`
    /// (and, if `writable` is given, when it returns `true` for the disk).
    pub const fn new(
        name: &'static CStr,
        show: ShowFn<T>,
        store: Option<StoreFn<T>>,
        writable: Option<WritableFn<T>>,
    ) -> Self {
        // SAFETY: All zeroes is a valid `device_attribute` (null pointers, no callbacks).
        let mut attr: bindings::device_attribute = unsafe { core::mem::zeroed() };
        attr.attr.name = name.to_bytes_with_nul().as_ptr();
        attr.attr.mode = if store.is_some() { 0o644 } else { 0o444 };
        attr.__bindgen_anon_1.show = Some(attr_show::<T>);
        if store.is_some() {
            attr.__bindgen_anon_2.store = Some(attr_store::<T>);
        }
        Self {
            attr,
            show,
            store,
            writable,
        }
    }

    fn as_raw_attr(&self) -> *mut bindings::attribute {
        (&raw const self.attr.attr).cast_mut()
    }
}

/// The disk whose `struct device` is `dev`.
///
/// # Safety
///
/// `dev` is the `struct device` of a disk's `part0` (`bd_device`) that is being added or live.
unsafe fn disk_of_dev(dev: *mut bindings::device) -> *mut bindings::gendisk {
    // SAFETY: By the safety requirements `dev` is embedded in a `struct block_device`.
    let bdev = unsafe { crate::container_of!(dev, bindings::block_device, bd_device) };
    // SAFETY: `bdev` is valid; `bd_disk` is set when `part0` is allocated with the disk.
    unsafe { (*bdev).bd_disk }
}

/// The [`DiskAttribute`] that holds `attr`.
///
/// # Safety
///
/// `attr` is the `device_attribute` of a `DiskAttribute<T>` with static lifetime.
unsafe fn driver_attr<T: Operations>(
    attr: *mut bindings::device_attribute,
) -> &'static DiskAttribute<T> {
    // SAFETY: `attr` is the first field of a `#[repr(C)]` `DiskAttribute<T>` that lives forever.
    unsafe { &*crate::container_of!(attr, DiskAttribute<T>, attr) }
}

/// `show` of a driver's disk attribute.
///
/// # Safety
///
/// Called by sysfs for a `DiskAttribute<T>` of a live disk built for `T`; `buf` is a page.
unsafe extern "C" fn attr_show<T: Operations>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut crate::ffi::c_char,
) -> isize {
    // SAFETY: By the safety requirements `attr` is in a static `DiskAttribute<T>`.
    let a = unsafe { driver_attr::<T>(attr) };
    // SAFETY: sysfs calls `show` only while the attribute exists: the disk is live (its
    // attributes go in `del_gendisk`, which waits for running callbacks).
    let disk = unsafe { Disk::<T>::from_raw(disk_of_dev(dev)) };
    let mut out = ShowBuffer {
        buf: buf.cast(),
        len: 0,
    };
    match (a.show)(disk, &mut out) {
        Ok(()) => out.len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// `store` of a driver's disk attribute.
///
/// # Safety
///
/// Called by sysfs for a `DiskAttribute<T>` with a `store`, of a live disk built for `T`;
/// `buf` is valid for reads of `count` bytes.
unsafe extern "C" fn attr_store<T: Operations>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *const crate::ffi::c_char,
    count: usize,
) -> isize {
    // SAFETY: By the safety requirements `attr` is in a static `DiskAttribute<T>`.
    let a = unsafe { driver_attr::<T>(attr) };
    // SAFETY: As in `attr_show`: the disk is live while the callback runs.
    let disk = unsafe { Disk::<T>::from_raw(disk_of_dev(dev)) };
    // SAFETY: By the safety requirements `buf` holds `count` initialised bytes.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    let Some(store) = a.store else {
        return EACCES.to_errno() as isize;
    };
    if a.writable.is_some_and(|w| !w(disk)) {
        return EACCES.to_errno() as isize;
    }
    match store(disk, input) {
        Ok(()) => isize::try_from(count).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// `is_visible` of the driver's attribute group: every attribute is shown; one whose
/// `writable` says no for this disk is read-only.
///
/// # Safety
///
/// Called by sysfs with the `kobj` of a disk's `struct device` being added by `build` for `T`,
/// and one of `T::DISK_ATTRIBUTES`.
unsafe extern "C" fn driver_attr_visible<T: Operations>(
    kobj: *mut bindings::kobject,
    attr: *mut bindings::attribute,
    _n: crate::ffi::c_int,
) -> bindings::umode_t {
    // SAFETY: `kobj` is embedded in the disk's `struct device`.
    let dev = unsafe { crate::container_of!(kobj, bindings::device, kobj) };
    // SAFETY: `attr` is the `attr` field of a `device_attribute` in a `DiskAttribute<T>`.
    let dattr = unsafe { crate::container_of!(attr, bindings::device_attribute, attr) };
    // SAFETY: See above.
    let a = unsafe { driver_attr::<T>(dattr) };
    // SAFETY: The disk is being added: its queue data is set (at allocation) and freed only
    // after `del_gendisk`; the reference is used during this call only.
    let disk = unsafe { Disk::<T>::from_raw(disk_of_dev(dev)) };
    let mode = a.attr.attr.mode;
    if a.writable.is_some_and(|w| !w(disk)) {
        mode & !0o222
    } else {
        mode
    }
}
