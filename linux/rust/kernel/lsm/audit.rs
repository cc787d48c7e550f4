// SPDX-License-Identifier: GPL-2.0

//! Audit records for LSMs.
//!
//! A [`Record`] is an audit buffer (`audit_log_start`) of one record type, filled with
//! formatted text ([`Record::format`], Rust formatting through `%pA`), untrusted strings
//! ([`Record::untrusted`], quoted or hex-encoded as `audit_log_n_untrustedstring` decides) and
//! the common LSM fields of an object ([`Record::lsm_data`]: `audit_log_lsm_data`, so a path,
//! a task or a socket is printed exactly as other LSMs print it). It is sent when dropped
//! (`audit_log_end`).
//!
//! Without `CONFIG_AUDIT`, [`enabled`] is `false` and [`Record::start`] always `None`.
//!
//! C headers: [`include/linux/audit.h`](srctree/include/linux/audit.h),
//! [`include/linux/lsm_audit.h`](srctree/include/linux/lsm_audit.h).

use super::{Dentry, File, Path, Socket, UnixSock};
use crate::task::Task;
#[cfg(CONFIG_AUDIT)]
use crate::{bindings, ffi::c_void};
use core::{fmt, marker::PhantomData};

/// `AUDIT_LANDLOCK_ACCESS`: a Landlock denial.
pub const AUDIT_LANDLOCK_ACCESS: u32 = 1423;
/// `AUDIT_LANDLOCK_DOMAIN`: a Landlock domain's status.
pub const AUDIT_LANDLOCK_DOMAIN: u32 = 1424;

/// Whether audit is enabled (`audit_enabled`, set by `audit=` and `auditctl -e`).
pub fn enabled() -> bool {
    #[cfg(CONFIG_AUDIT)]
    {
        // SAFETY: `audit_enabled` is a word-sized global the kernel reads without locks too;
        // a racy read only gives the previous or the next value.
        unsafe { core::ptr::read_volatile(&raw const bindings::audit_enabled) != 0 }
    }
    #[cfg(not(CONFIG_AUDIT))]
    {
        false
    }
}

/// The address of a [`Net`] record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetAddr {
    /// None (e.g. `AF_UNSPEC`).
    None,
    /// IPv4, network byte order.
    V4([u8; 4]),
    /// IPv6, network byte order.
    V6([u8; 16]),
}

/// The network fields of a record (`struct lsm_network_audit`).
pub struct Net<'a> {
    sk: *const crate::bindings::sock,
    family: u16,
    sport: u16,
    dport: u16,
    saddr: NetAddr,
    daddr: NetAddr,
    _p: PhantomData<&'a ()>,
}

impl<'a> Net<'a> {
    /// The socket `sock` (its local and foreign addresses are printed) and an address family.
    pub fn socket(sock: &'a Socket, family: u16) -> Self {
        Self {
            sk: sock.sk_ptr(),
            family,
            sport: 0,
            dport: 0,
            saddr: NetAddr::None,
            daddr: NetAddr::None,
            _p: PhantomData,
        }
    }

    /// The UNIX socket `sk` (its path is printed).
    pub fn unix(sk: &'a UnixSock) -> Self {
        Self {
            sk: sk.0.get(),
            family: 0,
            sport: 0,
            dport: 0,
            saddr: NetAddr::None,
            daddr: NetAddr::None,
            _p: PhantomData,
        }
    }

    /// Sets the source port (network byte order, as in the `sockaddr`) and address.
    pub fn source(mut self, port_be: u16, addr: NetAddr) -> Self {
        self.sport = port_be;
        self.saddr = addr;
        self
    }

    /// Sets the destination port (network byte order) and address.
    pub fn dest(mut self, port_be: u16, addr: NetAddr) -> Self {
        self.dport = port_be;
        self.daddr = addr;
        self
    }
}

/// The object of a record, printed by `audit_log_lsm_data`.
pub enum Data<'a> {
    /// `LSM_AUDIT_DATA_PATH`: `path=... dev=... ino=...`.
    Path(&'a Path),
    /// `LSM_AUDIT_DATA_DENTRY`: `name=... dev=... ino=...`.
    Dentry(&'a Dentry),
    /// `LSM_AUDIT_DATA_FILE`: the file's path, device and inode.
    File(&'a File),
    /// `LSM_AUDIT_DATA_IOCTL_OP`: the file's path, device, inode and `ioctlcmd=`.
    Ioctl(&'a File, u16),
    /// `LSM_AUDIT_DATA_TASK`: `opid=... ocomm=...`.
    Task(&'a Task),
    /// `LSM_AUDIT_DATA_NET`.
    Net(Net<'a>),
}

/// An audit record being written; sent when dropped.
pub struct Record {
    #[cfg(CONFIG_AUDIT)]
    ab: *mut bindings::audit_buffer,
    #[cfg(not(CONFIG_AUDIT))]
    _never: core::convert::Infallible,
}

/// Where a record belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The current task's system call (its audit context), allocated without sleeping: for
    /// records made in hooks, which may hold locks.
    CurrentAtomic,
    /// No task (e.g. an object freed from an RCU callback or a work item), allocated without
    /// sleeping.
    DetachedAtomic,
}

impl Record {
    /// Starts a record of type `ty` (e.g. [`AUDIT_LANDLOCK_ACCESS`]); `None` when audit does
    /// not want it (disabled, filtered out, backlog full) or without memory.
    pub fn start(ty: u32, origin: Origin) -> Option<Self> {
        #[cfg(CONFIG_AUDIT)]
        {
            let ctx = match origin {
                // SAFETY: reads the current task's audit context pointer.
                Origin::CurrentAtomic => unsafe { bindings::lsm_audit_context() },
                Origin::DetachedAtomic => core::ptr::null_mut(),
            };
            let gfp = bindings::GFP_ATOMIC | bindings::__GFP_NOWARN;
            // SAFETY: `ctx` is null or the current task's context; `audit_log_start` copes
            // with any record type and returns null on failure.
            let ab = unsafe { bindings::audit_log_start(ctx, gfp, ty as i32) };
            (!ab.is_null()).then_some(Self { ab })
        }
        #[cfg(not(CONFIG_AUDIT))]
        {
            let _ = (ty, origin);
            None
        }
    }

    /// Appends formatted text.
    pub fn format(&mut self, args: fmt::Arguments<'_>) {
        #[cfg(CONFIG_AUDIT)]
        // SAFETY: `self.ab` is a live buffer; `%pA` formats the `fmt::Arguments` it points
        // to, which lives for the call.
        unsafe {
            bindings::audit_log_format(
                self.ab,
                crate::str::CStrExt::as_char_ptr(c"%pA"),
                (&raw const args).cast::<c_void>(),
            )
        };
        #[cfg(not(CONFIG_AUDIT))]
        let _ = args;
    }

    /// Appends a string that user space controls (quoted, or hex when it has quotes,
    /// spaces or control characters).
    pub fn untrusted(&mut self, s: &[u8]) {
        #[cfg(CONFIG_AUDIT)]
        // SAFETY: `self.ab` is a live buffer; `s` is valid for `s.len()` bytes.
        unsafe {
            bindings::audit_log_n_untrustedstring(self.ab, s.as_ptr().cast(), s.len())
        };
        #[cfg(not(CONFIG_AUDIT))]
        let _ = s;
    }

    /// Appends the LSM fields describing `data`.
    pub fn lsm_data(&mut self, data: &Data<'_>) {
        #[cfg(CONFIG_AUDIT)]
        {
            // SAFETY: all-zero is a valid `common_audit_data` (null pointers, zero type).
            let mut ad: bindings::common_audit_data = unsafe { core::mem::zeroed() };
            // SAFETY: as above for the network and ioctl parts.
            let mut net: bindings::lsm_network_audit = unsafe { core::mem::zeroed() };
            // SAFETY: as above.
            let mut op: bindings::lsm_ioctlop_audit = unsafe { core::mem::zeroed() };
            match data {
                Data::Path(p) => {
                    ad.type_ = bindings::LSM_AUDIT_DATA_PATH as crate::ffi::c_char;
                    // SAFETY: a bitwise copy of a live `struct path`, used (without taking
                    // references) only while `p` is borrowed.
                    ad.u.path = unsafe { core::ptr::read(p.0.get()) };
                }
                Data::Dentry(d) => {
                    ad.type_ = bindings::LSM_AUDIT_DATA_DENTRY as crate::ffi::c_char;
                    ad.u.dentry = d.0.get();
                }
                Data::File(f) => {
                    ad.type_ = bindings::LSM_AUDIT_DATA_FILE as crate::ffi::c_char;
                    ad.u.file = f.0.get();
                }
                Data::Ioctl(f, cmd) => {
                    ad.type_ = bindings::LSM_AUDIT_DATA_IOCTL_OP as crate::ffi::c_char;
                    // SAFETY: as for `Data::Path`, the file's path.
                    op.path = unsafe { core::ptr::read(f.path().0.get()) };
                    op.cmd = *cmd;
                    ad.u.op = &raw mut op;
                }
                Data::Task(t) => {
                    ad.type_ = bindings::LSM_AUDIT_DATA_TASK as crate::ffi::c_char;
                    ad.u.tsk = t.as_ptr();
                }
                Data::Net(n) => {
                    ad.type_ = bindings::LSM_AUDIT_DATA_NET as crate::ffi::c_char;
                    net.sk = n.sk;
                    net.family = n.family;
                    net.sport = n.sport;
                    net.dport = n.dport;
                    // Writing union fields (plain data) is safe.
                    match n.saddr {
                        NetAddr::V4(a) => net.fam.v4.saddr = u32::from_ne_bytes(a),
                        NetAddr::V6(a) => net.fam.v6.saddr.in6_u.u6_addr8 = a,
                        NetAddr::None => {}
                    }
                    match n.daddr {
                        NetAddr::V4(a) => net.fam.v4.daddr = u32::from_ne_bytes(a),
                        NetAddr::V6(a) => net.fam.v6.daddr.in6_u.u6_addr8 = a,
                        NetAddr::None => {}
                    }
                    ad.u.net = &raw mut net;
                }
            }
            // SAFETY: `self.ab` is live; `ad` and what it points to (borrowed objects, the
            // locals `net` and `op`) are valid for the call.
            unsafe { bindings::audit_log_lsm_data(self.ab, &raw const ad) };
        }
        #[cfg(not(CONFIG_AUDIT))]
        let _ = data;
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        #[cfg(CONFIG_AUDIT)]
        // SAFETY: `self.ab` came from `audit_log_start` and is ended once.
        unsafe {
            bindings::audit_log_end(self.ab)
        };
    }
}
