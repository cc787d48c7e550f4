// SPDX-License-Identifier: GPL-2.0

//! The Landlock trace events, for the Rust Landlock (`CONFIG_SECURITY_LANDLOCK_RUST`).
//!
//! The events are those of the C Landlock (system `landlock`, the same event and field
//! names, the same text output), defined with prototypes of plain values in
//! [`include/trace/events/landlock_rust.h`](srctree/include/trace/events/landlock_rust.h).
//! Each function here emits one event when it is enabled (a static key); those that have to
//! resolve a path or copy a name do that only then. Access masks are the uapi's
//! (`LANDLOCK_ACCESS_*`, `LANDLOCK_SCOPE_*`); ids are Landlock's ruleset and domain ids.

use super::{audit::Data, Dentry, Inode, Path, UnixSock};
use crate::{
    alloc::{flags::GFP_KERNEL, KVec},
    bindings,
    ffi::{c_char, c_int},
    task::Task,
};

/// The events as `declare_trace!` makes them: each calls `rust_do_trace_<event>` when the
/// event is enabled. Safety of each: every pointer argument must be valid for reads of the
/// length passed with it during the call.
// The functions `declare_trace!` generates have no `# Safety` sections (see above) and as many
// arguments as the events have fields; its unsafe block takes the arguments as they are.
#[allow(
    clippy::missing_safety_doc,
    clippy::too_many_arguments,
    clippy::macro_metavars_in_unsafe
)]
mod raw {
    use crate::{ffi::c_char, tracepoint::declare_trace};

    declare_trace! {
        pub(super) unsafe fn landlock_create_ruleset(id: u64, version: u64, fs: u32, net: u32, scoped: u32);
        pub(super) unsafe fn landlock_free_ruleset(id: u64, version: u64);
        pub(super) unsafe fn landlock_add_rule_path_beneath(
            id: u64,
            version: u64,
            access: u32,
            dev: u32,
            ino: u64,
            name: *const c_char,
            name_len: u32,
        );
        pub(super) unsafe fn landlock_add_rule_net_port(id: u64, version: u64, access: u32, port: u64);
        pub(super) unsafe fn landlock_create_domain(id: u64, parent: u64, ruleset: u64, version: u64);
        pub(super) unsafe fn landlock_enforce_domain(id: u64, complete: bool, process_wide: bool, nnp: bool);
        pub(super) unsafe fn landlock_free_domain(id: u64, denials: u64);
        pub(super) unsafe fn landlock_check_rule_inode(
            id: u64,
            request: u32,
            dev: u32,
            ino: u64,
            grants: *const u32,
            num_layers: u32,
        );
        pub(super) unsafe fn landlock_check_rule_net_port(
            id: u64,
            request: u32,
            port: u64,
            grants: *const u32,
            num_layers: u32,
        );
        pub(super) unsafe fn landlock_deny_access_fs(
            id: u64,
            same_exec: bool,
            logged: bool,
            blockers_type: u32,
            blockers: u32,
            dev: u32,
            ino: u64,
            name: *const c_char,
            name_len: u32,
        );
        pub(super) unsafe fn landlock_deny_access_net(
            id: u64,
            same_exec: bool,
            logged: bool,
            blockers: u32,
            port: i64,
        );
        pub(super) unsafe fn landlock_deny_ptrace(
            id: u64,
            same_exec: bool,
            logged: bool,
            tracee_domain: u64,
            tracee_pid: i32,
            comm: *const c_char,
            comm_len: u32,
        );
        pub(super) unsafe fn landlock_deny_scope_signal(
            id: u64,
            same_exec: bool,
            logged: bool,
            target_domain: u64,
            target_pid: i32,
            comm: *const c_char,
            comm_len: u32,
        );
        pub(super) unsafe fn landlock_deny_scope_abstract_unix_socket(
            id: u64,
            same_exec: bool,
            logged: bool,
            peer_domain: u64,
            peer_pid: i32,
            sun_path: *const c_char,
            sun_path_len: u32,
        );
    }
}
use raw::*;

/// Whether the event whose `struct tracepoint` is `bindings::$tp` is enabled.
macro_rules! enabled {
    ($tp:ident) => {{
        #[cfg(CONFIG_TRACEPOINTS)]
        let on = {
            // SAFETY: `$tp` is a tracepoint defined in C; its static key may always be read.
            unsafe {
                crate::jump_label::static_branch_unlikely!(bindings::$tp, bindings::tracepoint, key)
            }
        };
        #[cfg(not(CONFIG_TRACEPOINTS))]
        let on = false;
        on
    }};
}

/// The request types of `deny_access_fs`, numbered as in the event header.
const REQUEST_FS_CHANGE_TOPOLOGY: u32 = 2;
const REQUEST_FS_ACCESS: u32 = 3;

/// `PATH_MAX`.
const PATH_MAX: usize = 4096;

/// Landlock's access masks fit in 32 bits (the width of C's `access_mask_t`).
fn mask(m: u64) -> u32 {
    m as u32
}

/// Calls `f` with a name that `resolve` writes into a buffer of `PATH_MAX` bytes (its
/// arguments: the buffer and its size; it returns a pointer into the buffer to the start of
/// the NUL-terminated name, or an error pointer), or with C Landlock's placeholder when
/// there is no name: `<no_mem>`, `<too_long>`, `<unreachable>`.
fn with_name<R>(
    resolve: impl FnOnce(*mut c_char, c_int) -> *mut c_char,
    f: impl FnOnce(&[u8]) -> R,
) -> R {
    let mut buf = KVec::<u8>::new();
    if buf.resize(PATH_MAX, 0, GFP_KERNEL).is_err() {
        return f(b"<no_mem>");
    }
    let p = resolve(buf.as_mut_ptr().cast(), PATH_MAX as c_int);
    let start = (p as usize).wrapping_sub(buf.as_ptr() as usize);
    if start >= PATH_MAX {
        // An error pointer (or null).
        let too_long = p as isize == crate::error::code::ENAMETOOLONG.to_errno() as isize;
        return f(if too_long {
            b"<too_long>"
        } else {
            b"<unreachable>"
        });
    }
    let name = buf.get(start..).unwrap_or(&[]);
    f(name.split(|b| *b == 0).next().unwrap_or(&[]))
}

/// Calls `f` with the absolute path of `path` (as `d_absolute_path`, whatever the mount
/// namespace of the tracer), or a placeholder (see [`with_name`]).
fn with_path_name<R>(path: &Path, f: impl FnOnce(&[u8]) -> R) -> R {
    with_name(
        // SAFETY: `path` is valid; `d_absolute_path` writes at most `len` bytes to `buf`.
        |buf, len| unsafe { bindings::d_absolute_path(path.0.get(), buf, len) },
        f,
    )
}

/// Calls `f` with the path of `dentry` from the root of its filesystem (no mount is known).
fn with_dentry_name<R>(dentry: &Dentry, f: impl FnOnce(&[u8]) -> R) -> R {
    with_name(
        // SAFETY: `dentry` is valid; `dentry_path_raw` writes at most `len` bytes to `buf`.
        |buf, len| unsafe { bindings::dentry_path_raw(dentry.0.get(), buf, len) },
        f,
    )
}

/// The device of `dentry`'s filesystem and its inode number (0 for a negative dentry).
fn dev_ino(dentry: &Dentry) -> (u32, u64) {
    // SAFETY: a live dentry has a superblock, whose `s_dev` does not change.
    let dev = unsafe { (*(*dentry.0.get()).d_sb).s_dev };
    (dev, dentry.inode().map_or(0, Inode::ino))
}

impl Inode {
    /// The inode number (`i_ino`).
    pub fn ino(&self) -> u64 {
        // SAFETY: `i_ino` of a live inode does not change.
        unsafe { (*self.0.get()).i_ino }
    }

    /// The device of the inode's filesystem (`i_sb->s_dev`).
    pub fn dev(&self) -> u32 {
        // SAFETY: a live inode has a superblock, whose `s_dev` does not change.
        unsafe { (*(*self.0.get()).i_sb).s_dev }
    }
}

/// The length of a name for an event (names are at most `PATH_MAX` bytes).
fn len32(s: &[u8]) -> u32 {
    u32::try_from(s.len()).unwrap_or(u32::MAX)
}

/// `landlock_create_ruleset`: a ruleset created (before its file descriptor exists).
pub fn create_ruleset(id: u64, version: u64, handled_fs: u64, handled_net: u64, scoped: u64) {
    // SAFETY: the event takes plain values.
    unsafe {
        landlock_create_ruleset(
            id,
            version,
            mask(handled_fs),
            mask(handled_net),
            mask(scoped),
        )
    }
}

/// `landlock_free_ruleset`: a ruleset freed (its last reference dropped).
pub fn free_ruleset(id: u64, version: u64) {
    // SAFETY: the event takes plain values.
    unsafe { landlock_free_ruleset(id, version) }
}

/// `landlock_add_rule_path_beneath`: a rule granting `access` (with the rights the ruleset
/// does not handle added) beneath `path` added to a ruleset, now at `version`.
pub fn add_rule_path_beneath(id: u64, version: u64, access: u64, path: &Path) {
    if !enabled!(__tracepoint_landlock_add_rule_path_beneath) {
        return;
    }
    let (dev, ino) = dev_ino(path.dentry());
    with_path_name(path, |name| {
        // SAFETY: `name` is valid for `name.len()` bytes during the call.
        unsafe {
            landlock_add_rule_path_beneath(
                id,
                version,
                mask(access),
                dev,
                ino,
                name.as_ptr(),
                len32(name),
            )
        }
    });
}

/// `landlock_add_rule_net_port`: a rule granting `access` on `port` added to a ruleset.
pub fn add_rule_net_port(id: u64, version: u64, access: u64, port: u64) {
    // SAFETY: the event takes plain values.
    unsafe { landlock_add_rule_net_port(id, version, mask(access), port) }
}

/// `landlock_create_domain`: the domain `id` (in the domain `parent`, 0: none) created from
/// the ruleset `ruleset` at `version`.
pub fn create_domain(id: u64, parent: u64, ruleset: u64, version: u64) {
    // SAFETY: the event takes plain values.
    unsafe { landlock_create_domain(id, parent, ruleset, version) }
}

/// `landlock_enforce_domain`: the current thread now runs in the domain `id`.
pub fn enforce_domain(id: u64, complete: bool, process_wide: bool, no_new_privs: bool) {
    // SAFETY: the event takes plain values.
    unsafe { landlock_enforce_domain(id, complete, process_wide, no_new_privs) }
}

/// `landlock_free_domain`: the domain `id`, which denied `denials` requests, freed.
pub fn free_domain(id: u64, denials: u64) {
    // SAFETY: the event takes plain values.
    unsafe { landlock_free_domain(id, denials) }
}

/// Whether `landlock_check_rule_inode` is enabled (the caller then works out the grants).
#[inline]
pub fn check_rule_inode_enabled() -> bool {
    enabled!(__tracepoint_landlock_check_rule_inode)
}

/// Whether `landlock_check_rule_net_port` is enabled.
pub fn check_rule_net_port_enabled() -> bool {
    enabled!(__tracepoint_landlock_check_rule_net_port)
}

/// The per-layer masks of an event, as C's 32-bit masks (at most 16 layers).
fn grants32(grants: &[u64]) -> ([u32; 16], u32) {
    let mut out = [0u32; 16];
    let mut n = 0;
    for (o, g) in out.iter_mut().zip(grants) {
        *o = mask(*g);
        n += 1;
    }
    (out, n)
}

/// `landlock_check_rule_inode`: a rule of the domain `id` met on `inode` while checking
/// `request`; `grants[l]`: what the rule of layer `l` (the oldest first) grants of it.
pub fn check_rule_inode(id: u64, request: u64, inode: &Inode, grants: &[u64]) {
    let (g, n) = grants32(grants);
    // SAFETY: `g` holds `n` masks.
    unsafe { landlock_check_rule_inode(id, mask(request), inode.dev(), inode.ino(), g.as_ptr(), n) }
}

/// `landlock_check_rule_net_port`: as [`check_rule_inode`], for a rule on `port`.
pub fn check_rule_net_port(id: u64, request: u64, port: u64, grants: &[u64]) {
    let (g, n) = grants32(grants);
    // SAFETY: `g` holds `n` masks.
    unsafe { landlock_check_rule_net_port(id, mask(request), port, g.as_ptr(), n) }
}

/// What a filesystem denial blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsBlocker {
    /// These access rights.
    Access(u64),
    /// A mount change (`fs.change_topology`).
    ChangeTopology,
}

/// `landlock_deny_access_fs`: the domain `id` denied `blocker` on the filesystem object of
/// `object` (a path, dentry, file or ioctl; nothing is emitted for other objects).
/// `same_exec`: the current task entered the domain itself; `logged`: the domain's audit
/// decision.
pub fn deny_access_fs(
    id: u64,
    same_exec: bool,
    logged: bool,
    blocker: FsBlocker,
    object: &Data<'_>,
) {
    if !enabled!(__tracepoint_landlock_deny_access_fs) {
        return;
    }
    let (kind, access) = match blocker {
        FsBlocker::Access(a) => (REQUEST_FS_ACCESS, mask(a)),
        FsBlocker::ChangeTopology => (REQUEST_FS_CHANGE_TOPOLOGY, 0),
    };
    let emit = |(dev, ino): (u32, u64), name: &[u8]| {
        // SAFETY: `name` is valid for `name.len()` bytes during the call.
        unsafe {
            landlock_deny_access_fs(
                id,
                same_exec,
                logged,
                kind,
                access,
                dev,
                ino,
                name.as_ptr(),
                len32(name),
            )
        }
    };
    let path = match object {
        Data::Path(p) => *p,
        Data::File(f) | Data::Ioctl(f, _) => f.path(),
        Data::Dentry(d) => {
            with_dentry_name(d, |name| emit(dev_ino(d), name));
            return;
        }
        Data::Task(_) | Data::Net(_) => return,
    };
    with_path_name(path, |name| emit(dev_ino(path.dentry()), name));
}

/// `landlock_deny_access_net`: the domain `id` denied `access` on `port` (host byte order;
/// `None`: no port was checked).
pub fn deny_access_net(id: u64, same_exec: bool, logged: bool, access: u64, port: Option<u16>) {
    let port = port.map_or(-1, i64::from);
    // SAFETY: the event takes plain values.
    unsafe { landlock_deny_access_net(id, same_exec, logged, mask(access), port) }
}

/// The thread group id (initial pid namespace) and name of `task`.
fn task_id(task: &Task) -> (i32, [u8; 16], usize) {
    let mut comm = [0u8; 16];
    // SAFETY: `task` is valid and `comm` has room for `TASK_COMM_LEN` (16) bytes.
    unsafe { bindings::lsm_task_comm(task.as_ptr(), comm.as_mut_ptr()) };
    // SAFETY: `task` is valid.
    let pid = unsafe { bindings::lsm_task_tgid_nr(task.as_ptr()) };
    let len = comm.iter().position(|b| *b == 0).unwrap_or(comm.len());
    (pid, comm, len)
}

/// `landlock_deny_ptrace`: the tracer's domain `id` denied tracing `tracee` (in the domain
/// `tracee_domain`, 0: none); `same_exec` is the tracer's.
pub fn deny_ptrace(id: u64, same_exec: bool, logged: bool, tracee_domain: u64, tracee: &Task) {
    if !enabled!(__tracepoint_landlock_deny_ptrace) {
        return;
    }
    let (pid, comm, len) = task_id(tracee);
    let comm = comm.get(..len).unwrap_or(&[]);
    // SAFETY: `comm` is valid for `comm.len()` bytes during the call.
    unsafe {
        landlock_deny_ptrace(
            id,
            same_exec,
            logged,
            tracee_domain,
            pid,
            comm.as_ptr(),
            len32(comm),
        )
    }
}

/// `landlock_deny_scope_signal`: the domain `id` denied a signal to `target` (in the domain
/// `target_domain`, 0: none).
pub fn deny_scope_signal(
    id: u64,
    same_exec: bool,
    logged: bool,
    target_domain: u64,
    target: &Task,
) {
    if !enabled!(__tracepoint_landlock_deny_scope_signal) {
        return;
    }
    let (pid, comm, len) = task_id(target);
    let comm = comm.get(..len).unwrap_or(&[]);
    // SAFETY: `comm` is valid for `comm.len()` bytes during the call.
    unsafe {
        landlock_deny_scope_signal(
            id,
            same_exec,
            logged,
            target_domain,
            pid,
            comm.as_ptr(),
            len32(comm),
        )
    }
}

/// `landlock_deny_scope_abstract_unix_socket`: the domain `id` denied reaching the abstract
/// UNIX socket `peer` (created in the domain `peer_domain`, 0: none).
pub fn deny_scope_abstract_unix_socket(
    id: u64,
    same_exec: bool,
    logged: bool,
    peer_domain: u64,
    peer: &UnixSock,
) {
    if !enabled!(__tracepoint_landlock_deny_scope_abstract_unix_socket) {
        return;
    }
    let sk = peer.0.get();
    let mut name: *const c_char = core::ptr::null();
    // SAFETY: `peer` is a valid UNIX socket whose state lock is held (see `UnixSock`), so its
    // address is stable; the helper sets `name`.
    let len = unsafe { bindings::lsm_unix_abstract_name(sk, &mut name) };
    // SAFETY: as above.
    let pid = unsafe { bindings::lsm_sk_peer_pid_nr(sk) };
    let len = u32::try_from(len).unwrap_or(0);
    // SAFETY: `name` points to `len` bytes of the socket's address, stable under the state
    // lock held during the call.
    unsafe {
        landlock_deny_scope_abstract_unix_socket(id, same_exec, logged, peer_domain, pid, name, len)
    }
}
