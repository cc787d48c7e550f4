// SPDX-License-Identifier: GPL-2.0

//! A virtio block driver in Rust, on the `kernel::virtio` and `kernel::block::mq` abstractions.
//!
//! It binds the same devices as the C `virtio_blk` (whichever module is loaded first binds) and
//! speaks the same protocol: each request is a chain of a 16-byte header the device reads, the
//! request's data, and a status byte the device writes.

#![deny(unsafe_code)]

use kernel::{
    block::mq::{
        self,
        gen_disk::{self, Disk, DiskAttribute, GenDisk, GenDiskBuilder, QueueLimits, ShowBuffer},
        DeviceRequest, Operation, Request, TagSet, CMD_OUT_MAX,
    },
    debugfs, device,
    fmt::Write,
    interrupt::LocalInterruptDisabled,
    new_spinlock_irq, pr_warn_once,
    prelude::*,
    str::CString,
    sync::{
        aref::ARef,
        atomic::{Atomic, Full, Relaxed},
        Arc, ArcBorrow, SpinLockIrq,
    },
    time::{delay::fsleep, Delta},
    virtio,
};

kernel::virtio_device_table!(VIRTIO_BLK_IDS, [virtio::DeviceId::new(VIRTIO_ID_BLOCK)]);

kernel::module_virtio_driver! {
    type: RVirtioBlk,
    name: "rvirtio_blk",
    authors: ["Ferrite"],
    description: "Virtio block driver in Rust",
    license: "GPL v2",
    params: {
        queue_depth: u32 {
            default: 0,
            description: "Requests per hardware queue (0: the virtqueue's size)",
        },
        num_request_queues: u32 {
            default: 0,
            description: "Most hardware queues to use (0: one per CPU, up to the device's)",
        },
    },
}

/// The virtio device type of block devices.
const VIRTIO_ID_BLOCK: u32 = 2;

// Feature bits (virtio specification, block device).
const F_SIZE_MAX: u32 = 1;
const F_SEG_MAX: u32 = 2;
const F_GEOMETRY: u32 = 4;
const F_RO: u32 = 5;
const F_BLK_SIZE: u32 = 6;
const F_FLUSH: u32 = 9;
const F_TOPOLOGY: u32 = 10;
const F_CONFIG_WCE: u32 = 11;
const F_MQ: u32 = 12;
const F_DISCARD: u32 = 13;
const F_WRITE_ZEROES: u32 = 14;
const F_SECURE_ERASE: u32 = 16;
/// A transport feature: descriptors may point to tables of descriptors.
const F_RING_INDIRECT_DESC: u32 = 28;

// Offsets in `struct virtio_blk_config`.
const CFG_CAPACITY: u32 = 0;
const CFG_SIZE_MAX: u32 = 8;
const CFG_SEG_MAX: u32 = 12;
const CFG_CYLINDERS: u32 = 16;
const CFG_HEADS: u32 = 18;
const CFG_SECTORS: u32 = 19;
const CFG_BLK_SIZE: u32 = 20;
const CFG_PHYSICAL_BLOCK_EXP: u32 = 24;
const CFG_MIN_IO_SIZE: u32 = 26;
const CFG_OPT_IO_SIZE: u32 = 28;
const CFG_WRITEBACK: u32 = 32;
const CFG_NUM_QUEUES: u32 = 34;
const CFG_MAX_DISCARD_SECTORS: u32 = 36;
const CFG_DISCARD_SECTOR_ALIGNMENT: u32 = 44;
const CFG_MAX_WRITE_ZEROES_SECTORS: u32 = 48;
const CFG_MAX_SECURE_ERASE_SECTORS: u32 = 60;

// Request types.
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;
const T_DISCARD: u32 = 11;
const T_WRITE_ZEROES: u32 = 13;
const T_SECURE_ERASE: u32 = 14;

/// Bytes of the device id (serial) that GET_ID returns.
const ID_BYTES: usize = 20;
/// How long probe waits for the device to answer GET_ID, in milliseconds.
const ID_TIMEOUT_MS: u32 = 5000;
/// Polling interval while waiting for GET_ID, in milliseconds.
const ID_POLL_MS: u32 = 10;

// Request status written by the device.
const S_OK: u8 = 0;
const S_UNSUPP: u8 = 2;

/// Queue names (virtqueue names must outlive the queues); also the most queues used.
const QUEUE_NAMES: [&CStr; 16] = [
    c"req.0", c"req.1", c"req.2", c"req.3", c"req.4", c"req.5", c"req.6", c"req.7", c"req.8",
    c"req.9", c"req.10", c"req.11", c"req.12", c"req.13", c"req.14", c"req.15",
];

/// The most data segments of a request the C driver accepts from a device (its scatterlist
/// limit, less the header and the status).
const C_MAX_SEGMENTS: u32 = 32768 - EXTRA_DESCS;

/// The scatterlist entries each request carries in its private data (32 bytes each): a
/// request with more segments chains entries from the kernel's pools. 32 covers a 128 KiB
/// request of scattered 4 KiB pages without allocating (the C driver keeps 2 and allocates
/// for anything larger).
const INLINE_SEGMENTS: u32 = 32;

/// Descriptors of a request besides its data: the header and the status.
const EXTRA_DESCS: u32 = 2;

/// Disk letters in use (`vda` is bit 0).
static DISK_INDEXES: Atomic<u32> = Atomic::new(0);

/// Takes the lowest free disk index.
fn take_disk_index() -> Result<u32> {
    let mut cur = DISK_INDEXES.load(Relaxed);
    loop {
        let free = (!cur).trailing_zeros();
        if free >= 26 {
            return Err(ENOSPC);
        }
        match DISK_INDEXES.cmpxchg(cur, cur | (1 << free), Full) {
            Ok(_) => return Ok(free),
            Err(now) => cur = now,
        }
    }
}

fn put_disk_index(index: u32) {
    let mut cur = DISK_INDEXES.load(Relaxed);
    while let Err(now) = DISK_INDEXES.cmpxchg(cur, cur & !(1u32 << index), Full) {
        cur = now;
    }
}

/// How plug flushes reached the driver: the `queue_rqs` calls and the requests they carried
/// (`queue_rqs` in the disk's debugfs directory, `rvirtio_blk-vdX`).
struct PlugStats {
    calls: Atomic<u64>,
    requests: Atomic<u64>,
}

impl core::fmt::Debug for PlugStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "calls {} requests {}",
            self.calls.load(Relaxed),
            self.requests.load(Relaxed)
        )
    }
}

/// Requests whose data took more scatterlist entries than each request carries (chained from
/// the pools), and the most entries of one request (`scatterlists` in the disk's debugfs
/// directory): shows that requests beyond the inline entries, up to the device's `seg_max`,
/// reach the device.
struct SgStats {
    chained: Atomic<u64>,
    most: Atomic<u32>,
}

impl SgStats {
    fn note(&self, nents: u32) {
        if nents <= INLINE_SEGMENTS {
            return;
        }
        self.chained.add(1, Relaxed);
        let mut seen = self.most.load(Relaxed);
        while nents > seen {
            match self.most.cmpxchg(seen, nents, Relaxed) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
    }
}

impl core::fmt::Debug for SgStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "chained {} most {}",
            self.chained.load(Relaxed),
            self.most.load(Relaxed)
        )
    }
}

/// The times the driver stopped and started the device, for system sleeps (`pm` in the disk's
/// debugfs directory: "freeze N restore M") or for resets of its transport (`reset`: "prepare N
/// done M"); only the calls that completed count.
struct StopStartStats {
    /// The words printed before the two counts.
    names: (&'static str, &'static str),
    stops: Atomic<u64>,
    starts: Atomic<u64>,
}

impl StopStartStats {
    fn new(stop: &'static str, start: &'static str) -> Self {
        Self {
            names: (stop, start),
            stops: Atomic::new(0),
            starts: Atomic::new(0),
        }
    }
}

impl core::fmt::Debug for StopStartStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.names.0,
            self.stops.load(Relaxed),
            self.names.1,
            self.starts.load(Relaxed)
        )
    }
}

/// What the request path needs of the device.
struct Shared {
    queues: Arc<virtio::Queues<Blk>>,
    little_endian: bool,
    /// The device, for the `cache_type` attribute.
    dev: Arc<virtio::BoundDevice>,
    plug_stats: Pin<KBox<debugfs::File<PlugStats>>>,
    sg_stats: Pin<KBox<debugfs::File<SgStats>>>,
    pm_stats: Pin<KBox<debugfs::File<StopStartStats>>>,
    reset_stats: Pin<KBox<debugfs::File<StopStartStats>>>,
    _debugfs: debugfs::Dir,
}

impl Shared {
    fn u32_bytes(&self, v: u32) -> [u8; 4] {
        if self.little_endian {
            v.to_le_bytes()
        } else {
            v.to_ne_bytes()
        }
    }

    fn u64_bytes(&self, v: u64) -> [u8; 8] {
        if self.little_endian {
            v.to_le_bytes()
        } else {
            v.to_ne_bytes()
        }
    }

    /// Writes the 16-byte request header (type, I/O priority, sector), followed for discard,
    /// write-zeroes and secure-erase by one range (sector, number of sectors, flags without
    /// the unmap hint), to `cmd`; returns its length.
    fn write_command(
        &self,
        cmd: &mut [u8; CMD_OUT_MAX],
        kind: u32,
        sector: u64,
        range: Option<u32>,
    ) -> usize {
        let mut len = 0;
        // At most 32 bytes are put, so every field fits.
        let mut put = |field: &[u8]| {
            if let Some(dst) = cmd.get_mut(len..len + field.len()) {
                dst.copy_from_slice(field);
            }
            len += field.len();
        };
        put(&self.u32_bytes(kind));
        put(&self.u32_bytes(0));
        match range {
            None => put(&self.u64_bytes(sector)),
            Some(sectors) => {
                // The header's sector is unused: the range carries it.
                put(&self.u64_bytes(0));
                put(&self.u64_bytes(sector));
                put(&self.u32_bytes(sectors));
                put(&self.u32_bytes(0));
            }
        }
        len
    }

    /// The 16-byte request header, for a driver-internal request.
    fn header(&self, kind: u32, sector: u64) -> Result<KVec<u8>> {
        let mut cmd = [0u8; CMD_OUT_MAX];
        let len = self.write_command(&mut cmd, kind, sector, None);
        let mut hdr = KVec::with_capacity(len, GFP_KERNEL)?;
        hdr.extend_from_slice(cmd.get(..len).unwrap_or(&[]), GFP_KERNEL)?;
        Ok(hdr)
    }
}

/// The block-layer and virtqueue side of the driver.
struct Blk;

/// A driver-internal request (GET_ID) waited for at probe: the device's answer (the id bytes
/// then the status byte) is copied here by the completion.
#[pin_data]
struct IdWait {
    #[pin]
    answer: SpinLockIrq<Option<[u8; ID_BYTES + 1]>>,
}

/// The result the device reported in a status byte.
fn status_of(status: Option<&u8>) -> Result {
    match status {
        Some(&S_OK) => Ok(()),
        Some(&S_UNSUPP) => Err(EOPNOTSUPP),
        _ => Err(EIO),
    }
}

// Always inlined into `done`: one function per interrupt, as the C driver's (a call and return
// cost far more than their instructions under emulation).
#[inline(always)]
fn complete(used: virtio::Used<Blk>) {
    match used {
        virtio::Used::Lent(drq) => {
            let status = status_of(drq.in_bytes().last());
            if Request::end(drq.into_request(), status).is_err() {
                pr_warn_once!("rvirtio_blk: a completed request was still referenced\n");
            }
        }
        virtio::Used::Buffer(buf) => {
            if let Some(wait) = buf.ctx() {
                let mut answer = [0u8; ID_BYTES + 1];
                for (a, b) in answer.iter_mut().zip(buf.in_bytes()) {
                    *a = *b;
                }
                *wait.answer.lock() = Some(answer);
            }
        }
    }
}

/// Internal requests (GET_ID) are boxed buffers carrying their waiter; block requests are
/// their own token, their command and status in the request's private data.
impl virtio::Handler for Blk {
    type Ctx = Option<Arc<IdWait>>;
    type Payload = virtio::NoPayload;
    type Lent = DeviceRequest<Blk>;

    // Inlined into the virtqueue callback, as `complete` into it.
    #[inline(always)]
    fn done(queue: &virtio::Queue<Self>, irq: &LocalInterruptDisabled) {
        let mut vq = queue.lock_with(irq);
        loop {
            vq.disable_cb();
            while let Some((used, _len)) = vq.get_buf() {
                complete(used);
            }
            // A broken queue's `enable_cb` is `true` too: the loop ends.
            if vq.enable_cb() {
                break;
            }
        }
    }
}

/// The most requests of a `queue_rqs` batch added to a virtqueue under one lock (a plug
/// flushes at most 32 requests for one disk, 64 across disks).
const BATCH: usize = 32;

/// Prepared requests of one hardware queue, waiting to be added to its virtqueue together.
struct Batch {
    hw_queue: u32,
    len: usize,
    rqs: [Option<DeviceRequest<Blk>>; BATCH],
}

impl Batch {
    fn new() -> Self {
        Self {
            hw_queue: 0,
            len: 0,
            rqs: [const { None }; BATCH],
        }
    }

    /// Adds the batch to its virtqueue under one lock and kicks it once. Requests the ring has
    /// no room for are requeued (they were started), as `queue_rq` would have them retried.
    fn submit(&mut self, shared: &Shared) {
        let len = core::mem::take(&mut self.len);
        let Some(rqs) = self.rqs.get_mut(..len) else {
            return;
        };
        let Some(queue) = shared.queues.get(self.hw_queue as usize) else {
            for drq in rqs.iter_mut().filter_map(Option::take) {
                if Request::end(drq.into_request(), Err(EIO)).is_err() {
                    pr_warn_once!("rvirtio_blk: a failed request was still referenced\n");
                }
            }
            return;
        };
        let mut vq = queue.lock();
        for drq in rqs.iter_mut().filter_map(Option::take) {
            if let Err((_e, drq)) = vq.add_lent(drq, GFP_ATOMIC) {
                if Request::requeue(drq.into_request()).is_err() {
                    pr_warn_once!("rvirtio_blk: a refused request was still referenced\n");
                }
            }
        }
        let notify = vq.kick_prepare();
        drop(vq);
        if notify {
            queue.notify();
        }
    }
}

impl Shared {
    /// What a block request asks of the device.
    fn command_of(&self, rq: &Request<Blk>) -> Result<Command> {
        let sectors = rq.bytes() >> 9;
        let (kind, range, device_writes) = match rq.operation() {
            Operation::Read => (T_IN, None, true),
            Operation::Write => (T_OUT, None, false),
            Operation::Flush => (T_FLUSH, None, false),
            Operation::Discard => (T_DISCARD, Some(sectors), false),
            Operation::WriteZeroes => (T_WRITE_ZEROES, Some(sectors), false),
            Operation::SecureErase => (T_SECURE_ERASE, Some(sectors), false),
            _ => return Err(EOPNOTSUPP),
        };
        let sector = if kind == T_FLUSH { 0 } else { rq.sector() };
        Ok(Command {
            kind,
            sector,
            range,
            device_writes,
        })
    }

    /// Prepares a block request for the device: its command written straight into the
    /// request's command area, a status byte for the device to write, its data mapped.
    // Always inlined into `queue_rq`, as `complete` into `done`.
    #[inline(always)]
    fn prepare(
        &self,
        rq: ARef<Request<Blk>>,
    ) -> Result<DeviceRequest<Blk>, (Error, ARef<Request<Blk>>)> {
        let c = match self.command_of(&rq) {
            Ok(c) => c,
            Err(e) => return Err((e, rq)),
        };
        let drq = Request::into_device(
            rq,
            |out| self.write_command(out, c.kind, c.sector, c.range),
            1,
            c.device_writes,
        )?;
        self.sg_stats.note(drq.nents());
        Ok(drq)
    }
}

/// What a block request asks of the device: the command's fields, and whether the device
/// writes the request's data (a read).
struct Command {
    kind: u32,
    sector: u64,
    range: Option<u32>,
    device_writes: bool,
}

/// The write-cache mode: the device's `writeback` field when the driver may change it, else
/// whether the device takes flushes (like the C driver, a device without flush is taken to
/// write through).
fn cache_mode(dev: &virtio::Device<device::Bound>) -> bool {
    if dev.has_feature(F_CONFIG_WCE) {
        if let Ok(wce) = dev.config_u8(CFG_WRITEBACK) {
            return wce != 0;
        }
    }
    dev.has_feature(F_FLUSH)
}

/// The names of the write-cache modes in `cache_type`, indexed by the `writeback` field.
const CACHE_TYPES: [&str; 2] = ["write through", "write back"];

/// `cache_type`: the write-cache mode.
fn cache_type_show(disk: &Disk<Blk>, out: &mut ShowBuffer) -> Result {
    let writeback = disk.queue_data().dev.with(cache_mode)?;
    let name = if writeback {
        CACHE_TYPES[1]
    } else {
        CACHE_TYPES[0]
    };
    writeln!(out, "{}", name).map_err(|_| EINVAL)
}

/// Writing `cache_type` (only when the device lets the driver change the mode) sets the
/// device's `writeback` field, then tells the block layer the mode the device reports.
fn cache_type_store(disk: &Disk<Blk>, input: &[u8]) -> Result {
    let input = input.strip_suffix(b"\n").unwrap_or(input);
    let mode = CACHE_TYPES
        .iter()
        .position(|t| t.as_bytes() == input)
        .ok_or(EINVAL)?;
    let writeback = disk.queue_data().dev.with(|dev| {
        if !dev.has_feature(F_CONFIG_WCE) {
            return Err(EPERM);
        }
        dev.config_write_u8(CFG_WRITEBACK, u8::from(mode == 1))?;
        Ok(cache_mode(dev))
    })??;
    disk.set_write_cache(writeback)
}

/// `cache_type` is writable when the device has a configurable write cache.
fn cache_type_writable(disk: &Disk<Blk>) -> bool {
    disk.queue_data()
        .dev
        .with(|dev| dev.has_feature(F_CONFIG_WCE))
        .unwrap_or(false)
}

#[vtable]
impl mq::Operations for Blk {
    type QueueData = Arc<Shared>;

    const DISK_ATTRIBUTES: &'static [DiskAttribute<Self>] = &[DiskAttribute::new(
        c"cache_type",
        cache_type_show,
        Some(cache_type_store),
        Some(cache_type_writable),
    )];

    // Inlined into the block layer's callback, as `prepare` into it.
    #[inline(always)]
    fn queue_rq(shared: ArcBorrow<'_, Shared>, rq: ARef<Request<Self>>, is_last: bool) -> Result {
        let queue = shared.queues.get(rq.hw_queue_index() as usize).ok_or(EIO)?;
        let drq = shared.prepare(rq).map_err(|(e, _rq)| e)?;
        let mut vq = queue.lock();
        if let Err((e, drq)) = vq.add_lent(drq, GFP_ATOMIC) {
            drop(vq);
            drop(drq);
            // A full ring: the block layer retries the request later.
            return Err(if e == ENOSPC { ENOMEM } else { e });
        }
        let notify = is_last && vq.kick_prepare();
        drop(vq);
        if notify {
            queue.notify();
        }
        Ok(())
    }

    /// Prepares each request outside the lock, then adds the consecutive requests of a hardware
    /// queue to its virtqueue together, with one kick. Requests that cannot be prepared go back
    /// to the block layer, whose `queue_rq` then fails them.
    fn queue_rqs(shared: ArcBorrow<'_, Shared>, requests: &mut mq::RequestList<'_, Self>) {
        let mut batch = Batch::new();
        let mut taken = 0u64;
        while let Some(rq) = requests.pop() {
            taken = taken.saturating_add(1);
            let hw_queue = rq.hw_queue_index();
            if batch.len > 0 && (batch.hw_queue != hw_queue || batch.len == BATCH) {
                batch.submit(&shared);
            }
            batch.hw_queue = hw_queue;
            let prepared = match shared.command_of(&rq) {
                Ok(c) => rq
                    .into_device(
                        |out| shared.write_command(out, c.kind, c.sector, c.range),
                        1,
                        c.device_writes,
                    )
                    .map_err(|(_e, rq)| rq),
                Err(_) => Err(rq),
            };
            if let Ok(drq) = &prepared {
                shared.sg_stats.note(drq.nents());
            }
            match prepared {
                Ok(drq) => match batch.rqs.get_mut(batch.len) {
                    Some(slot) => {
                        *slot = Some(drq);
                        batch.len += 1;
                    }
                    // Not reached: a full batch was submitted above.
                    None => {
                        if Request::requeue(drq.into_request()).is_err() {
                            pr_warn_once!("rvirtio_blk: a requeued request was referenced\n");
                        }
                    }
                },
                // Dropped if it cannot be given back: ended with an error.
                Err(rq) => drop(requests.give_back(rq)),
            }
        }
        batch.submit(&shared);
        shared.plug_stats.calls.add(1, Relaxed);
        shared.plug_stats.requests.add(taken, Relaxed);
    }

    /// Kicks the queue left unkicked (its last request came without `is_last`).
    fn commit_rqs(shared: ArcBorrow<'_, Shared>, hw_queue: u32) {
        if let Some(queue) = shared.queues.get(hw_queue as usize) {
            queue.kick();
        }
    }

    fn complete(_rq: ARef<Request<Self>>) {}
}

/// A bound virtio block device. The disk goes first on unbind (draining its requests), then
/// the queues (resetting the device).
struct RVirtioBlk {
    disk: GenDisk<Blk>,
    shared: Arc<Shared>,
    _index: DiskIndex,
}

/// A disk letter in use; freed after the disk (declared before it) is gone.
struct DiskIndex(u32);

impl Drop for DiskIndex {
    fn drop(&mut self) {
        put_disk_index(self.0);
    }
}

/// Asks the device for its id (GET_ID) on queue 0 and waits for the answer. `None` when the
/// device does not support it.
fn get_id(shared: &Shared) -> Result<Option<KVec<u8>>> {
    let queue = shared.queues.get(0).ok_or(ENODEV)?;
    let wait = Arc::pin_init(
        pin_init!(IdWait {
            answer <- new_spinlock_irq!(None),
        }),
        GFP_KERNEL,
    )?;
    let hdr = shared.header(T_GET_ID, 0)?;
    let buf = virtio::Buffer::new(Some(wait.clone()), hdr, None, ID_BYTES + 1, GFP_KERNEL)?;
    queue.lock().add(buf, GFP_ATOMIC).map_err(|e| e.error)?;
    queue.kick();
    for _ in 0..ID_TIMEOUT_MS / ID_POLL_MS {
        // Copied out so that the lock is not held while parsing (which allocates).
        let answer = *wait.answer.lock();
        if let Some(answer) = answer {
            return parse_id(&answer);
        }
        fsleep(Delta::from_millis(i64::from(ID_POLL_MS)));
    }
    Err(ETIMEDOUT)
}

/// The serial in a GET_ID answer (id bytes, then status): up to the first NUL, at most
/// `ID_BYTES`; `None` when the status is not OK.
fn parse_id(answer: &[u8]) -> Result<Option<KVec<u8>>> {
    let (Some(&status), Some(id)) = (answer.get(ID_BYTES), answer.get(..ID_BYTES)) else {
        return Ok(None);
    };
    if status != S_OK {
        return Ok(None);
    }
    let len = id.iter().position(|&b| b == 0).unwrap_or(ID_BYTES);
    let mut serial = KVec::with_capacity(len, GFP_KERNEL)?;
    serial.extend_from_slice(id.get(..len).unwrap_or(&[]), GFP_KERNEL)?;
    Ok(Some(serial))
}

/// The disk geometry for `HDIO_GETGEO`: the device's when it offers one, else 64 heads of 32
/// sectors (cylinders from the capacity, at most 65535).
fn read_chs(dev: &virtio::Device<device::Bound>, capacity: u64) -> Result<gen_disk::Geometry> {
    if dev.has_feature(F_GEOMETRY) {
        let (cylinders, heads, sectors) = dev.config_consistent(|d| {
            Ok((
                d.config_u16(CFG_CYLINDERS)?,
                d.config_u8(CFG_HEADS)?,
                d.config_u8(CFG_SECTORS)?,
            ))
        })?;
        return Ok(gen_disk::Geometry {
            cylinders,
            heads,
            sectors,
        });
    }
    Ok(gen_disk::Geometry {
        cylinders: u16::try_from(capacity >> 11).unwrap_or(u16::MAX),
        heads: 64,
        sectors: 32,
    })
}

/// The block geometry the device describes, validated.
struct Geometry {
    logical: u32,
    physical: u32,
    io_min: u32,
    io_opt: u32,
}

fn read_geometry(dev: &virtio::Device<device::Bound>) -> Result<Geometry> {
    let logical = if dev.has_feature(F_BLK_SIZE) {
        dev.config_u32(CFG_BLK_SIZE)?
    } else {
        512
    };
    if GenDiskBuilder::validate_block_size(logical).is_err() {
        dev_err!(dev.as_ref(), "unsupported block size {}\n", logical);
        return Err(EINVAL);
    }
    let mut g = Geometry {
        logical,
        physical: logical,
        io_min: 0,
        io_opt: 0,
    };
    if dev.has_feature(F_TOPOLOGY) {
        let (exp, min_io, opt_io) = dev.config_consistent(|d| {
            Ok((
                d.config_u8(CFG_PHYSICAL_BLOCK_EXP)?,
                d.config_u16(CFG_MIN_IO_SIZE)?,
                d.config_u32(CFG_OPT_IO_SIZE)?,
            ))
        })?;
        let physical = logical.checked_shl(u32::from(exp)).unwrap_or(0);
        if GenDiskBuilder::validate_block_size(physical).is_ok() {
            g.physical = physical;
        } else {
            dev_warn!(dev.as_ref(), "ignoring physical block exponent {}\n", exp);
        }
        g.io_min = u32::from(min_io).checked_mul(logical).unwrap_or(0);
        g.io_opt = opt_io.checked_mul(logical).unwrap_or(0);
    }
    Ok(g)
}

impl RVirtioBlk {
    fn bind(dev: &virtio::Device<device::Core<'_>>) -> Result<Self> {
        let capacity = dev.config_u64(CFG_CAPACITY)?;
        let geometry = read_geometry(dev)?;
        let chs = read_chs(dev, capacity)?;

        let mut nqueues = 1u32;
        if dev.has_feature(F_MQ) {
            nqueues = u32::from(dev.config_u16(CFG_NUM_QUEUES)?).max(1);
        }
        let wanted = module_parameters::num_request_queues.value();
        if wanted > 0 {
            nqueues = nqueues.min(wanted);
        }
        nqueues = nqueues
            .min(kernel::cpu::nr_cpu_ids())
            .min(QUEUE_NAMES.len() as u32)
            .max(1);
        let names = QUEUE_NAMES.get(..nqueues as usize).ok_or(EINVAL)?;
        // One vector a queue, spread over the CPUs, and the tag set's CPU map follows them:
        // a request completes where it was submitted (as C's virtio_blk).
        let queues = virtio::Queues::<Blk>::new_spread(dev, names)?;
        let bound = virtio::BoundDevice::new(dev)?;
        let ring = queues.get(0).ok_or(ENODEV)?.lock().size();

        // As the C driver: the device's `seg_max` (at least one), within its scatterlist limit.
        let mut seg_max = if dev.has_feature(F_SEG_MAX) {
            dev.config_u32(CFG_SEG_MAX)?
        } else {
            0
        };
        seg_max = seg_max.clamp(1, C_MAX_SEGMENTS);
        // Without indirect descriptors a request's descriptors must fit in the ring.
        if !dev.has_feature(F_RING_INDIRECT_DESC) {
            seg_max = seg_max.min(ring.saturating_sub(EXTRA_DESCS));
        }
        let dma_max = u32::try_from(dev.max_dma_size()).unwrap_or(u32::MAX);
        let mut seg_size = dma_max;
        if dev.has_feature(F_SIZE_MAX) {
            let size_max = dev.config_u32(CFG_SIZE_MAX)?;
            if size_max > 0 {
                seg_size = seg_size.min(size_max);
            }
        }
        // The block layer needs at least a page per segment.
        let seg_size = seg_size.max(kernel::page::PAGE_SIZE as u32);

        let write_cache = cache_mode(dev);

        let mut depth = ring;
        let wanted = module_parameters::queue_depth.value();
        if wanted > 0 {
            depth = depth.min(wanted);
        }
        let depth = depth.max(1);

        let mut limits = QueueLimits::default();
        if dev.has_feature(F_DISCARD) {
            let (max, align) = dev.config_consistent(|d| {
                Ok((
                    d.config_u32(CFG_MAX_DISCARD_SECTORS)?,
                    d.config_u32(CFG_DISCARD_SECTOR_ALIGNMENT)?,
                ))
            })?;
            limits.max_discard_sectors = if max == 0 { u32::MAX } else { max };
            limits.max_discard_segments = 1;
            limits.discard_granularity = align
                .checked_mul(512)
                .filter(|&g| g > 0)
                .unwrap_or(geometry.logical);
        }
        if dev.has_feature(F_WRITE_ZEROES) {
            let max = dev.config_u32(CFG_MAX_WRITE_ZEROES_SECTORS)?;
            limits.max_write_zeroes_sectors = if max == 0 { u32::MAX } else { max };
        }
        if dev.has_feature(F_SECURE_ERASE) {
            let max = dev.config_u32(CFG_MAX_SECURE_ERASE_SECTORS)?;
            limits.max_secure_erase_sectors = if max == 0 { u32::MAX } else { max };
        }
        let limits = QueueLimits {
            max_hw_sectors: u32::MAX,
            max_segments: u16::try_from(seg_max).unwrap_or(u16::MAX),
            max_segment_size: seg_size,
            io_min: geometry.io_min,
            io_opt: geometry.io_opt,
            write_cache,
            ..limits
        };

        // A request's scatterlist starts in its private data.
        let tagset = Arc::pin_init(
            TagSet::new_for_device_irqs(dev.as_ref(), nqueues, depth, seg_max.min(INLINE_SEGMENTS)),
            GFP_KERNEL,
        )?;
        let index = DiskIndex(take_disk_index()?);
        let letter = char::from(b'a' + index.0 as u8);
        let debugfs = debugfs::Dir::new(&CString::try_from_fmt(fmt!("rvirtio_blk-vd{}", letter))?);
        let plug_stats = KBox::pin_init(
            debugfs.read_only_file(
                c"queue_rqs",
                PlugStats {
                    calls: Atomic::new(0),
                    requests: Atomic::new(0),
                },
            ),
            GFP_KERNEL,
        )?;
        let sg_stats = KBox::pin_init(
            debugfs.read_only_file(
                c"scatterlists",
                SgStats {
                    chained: Atomic::new(0),
                    most: Atomic::new(0),
                },
            ),
            GFP_KERNEL,
        )?;
        let pm_stats = KBox::pin_init(
            debugfs.read_only_file(c"pm", StopStartStats::new("freeze", "restore")),
            GFP_KERNEL,
        )?;
        let reset_stats = KBox::pin_init(
            debugfs.read_only_file(c"reset", StopStartStats::new("prepare", "done")),
            GFP_KERNEL,
        )?;
        let shared = Arc::new(
            Shared {
                queues,
                little_endian: dev.is_little_endian(),
                dev: bound,
                plug_stats,
                sg_stats,
                pm_stats,
                reset_stats,
                _debugfs: debugfs,
            },
            GFP_KERNEL,
        )?;
        dev.ready();
        let serial = match get_id(&shared) {
            Ok(serial) => serial,
            Err(e) => {
                dev_warn!(dev.as_ref(), "no answer to GET_ID: {:?}\n", e);
                None
            }
        };

        let vdev: &virtio::Device = dev;
        let disk = GenDiskBuilder::new()
            .capacity_sectors(capacity)
            .logical_block_size(geometry.logical)
            .and_then(|b| b.physical_block_size(geometry.physical))
            .map(|b| {
                // Like the C driver: the host's medium is unknown, so the disk is not
                // declared non-rotational (and keeps the rotational read-ahead default).
                b.limits(limits)
                    .rotational(true)
                    .geometry(chs)
                    .read_only(dev.has_feature(F_RO))
                    .parent(vdev.as_ref())
            })
            .and_then(|b| match &serial {
                Some(serial) => b.serial(serial),
                None => Ok(b),
            })
            .and_then(|b| b.build(fmt!("vd{}", letter), tagset, shared.clone()))?;
        dev_info!(
            dev.as_ref(),
            "[vd{}] {} 512-byte logical blocks, {} queue(s) of {}\n",
            letter,
            capacity,
            nqueues,
            depth
        );
        Ok(Self {
            disk,
            shared,
            _index: index,
        })
    }
}

#[vtable]
impl virtio::Driver for RVirtioBlk {
    const ID_TABLE: virtio::IdTable = &VIRTIO_BLK_IDS;
    const FEATURES: &'static [u32] = &[
        F_SIZE_MAX,
        F_SEG_MAX,
        F_GEOMETRY,
        F_RO,
        F_BLK_SIZE,
        F_FLUSH,
        F_TOPOLOGY,
        F_CONFIG_WCE,
        F_MQ,
        F_DISCARD,
        F_WRITE_ZEROES,
        F_SECURE_ERASE,
    ];

    fn probe(dev: &virtio::Device<device::Core<'_>>) -> impl PinInit<Self, Error> {
        Self::bind(dev)
    }

    /// A resize: the host changed the capacity.
    fn config_changed(dev: &virtio::Device<device::Bound>, this: Pin<&Self>) {
        match dev.config_u64(CFG_CAPACITY) {
            Ok(capacity) => {
                dev_info!(
                    dev.as_ref(),
                    "capacity is now {} 512-byte blocks\n",
                    capacity
                );
                this.disk.set_capacity(capacity);
            }
            Err(e) => dev_warn!(dev.as_ref(), "cannot read the new capacity: {:?}\n", e),
        }
    }

    /// A system sleep: the disk stops ([`RVirtioBlk::stop`]).
    fn freeze(dev: &virtio::Device<device::Core<'_>>, this: Pin<&Self>) -> Result {
        this.stop(dev, &this.shared.pm_stats)
    }

    /// Back from the sleep (the core reset the device): the disk starts again
    /// ([`RVirtioBlk::start`]).
    fn restore(dev: &virtio::Device<device::Core<'_>>, this: Pin<&Self>) -> Result {
        this.start(dev, &this.shared.pm_stats)
    }

    /// The transport is about to reset the device (e.g. a PCI function reset): as for a sleep.
    fn reset_prepare(dev: &virtio::Device<device::Core<'_>>, this: Pin<&Self>) -> Result {
        this.stop(dev, &this.shared.reset_stats)
    }

    /// The reset is over (the core reset the device again): as after a sleep.
    fn reset_done(dev: &virtio::Device<device::Core<'_>>, this: Pin<&Self>) -> Result {
        this.start(dev, &this.shared.reset_stats)
    }
}

impl RVirtioBlk {
    /// Stops using the device, for a sleep or a reset: the requests with the device complete,
    /// later ones wait in the block layer, and the virtqueues go (the device is reset).
    /// Counted in `stats` when done.
    fn stop(&self, dev: &virtio::Device<device::Core<'_>>, stats: &StopStartStats) -> Result {
        self.disk.quiesce_drained()?;
        if let Err(e) = self.shared.queues.freeze(dev) {
            // The sleep or the reset is called off: the disk goes on.
            let _ = self.disk.unquiesce();
            return Err(e);
        }
        stats.stops.add(1, Relaxed);
        Ok(())
    }

    /// Uses the device again after [`RVirtioBlk::stop`] (the core reset it): new virtqueues,
    /// then the requests held back go to them. Counted in `stats` when done.
    fn start(&self, dev: &virtio::Device<device::Core<'_>>, stats: &StopStartStats) -> Result {
        self.shared.queues.restore(dev)?;
        dev.ready();
        self.disk.unquiesce()?;
        stats.starts.add(1, Relaxed);
        Ok(())
    }
}
