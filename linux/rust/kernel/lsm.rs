// SPDX-License-Identifier: GPL-2.0

//! Linux Security Modules written in Rust.
//!
//! A Rust LSM is a type implementing [`Hooks`]: every hook it does not override is a no-op
//! that allows the operation. [`define_lsm!`](crate::define_lsm) generates, in the LSM's
//! crate, the `extern "C"` functions that the C hook list (`LSM_HOOK_INIT`, which only C
//! can expand) points to, the `lsm_blob_sizes` static and the init function, so the LSM's
//! own crate needs no `unsafe`: the trampolines here turn the raw pointers the LSM
//! framework passes into references to the types of this module.
//!
//! Security blobs:
//! - credentials: an `Option<Arc<Hooks::Cred>>` and a `u32` word the LSM defines, copied by
//!   `cred_prepare`/`cred_transfer` and dropped by `cred_free` (the LSM's C hook list must
//!   register the three hooks); `bprm_creds_for_exec` may change the word of the credentials
//!   of a new program ([`Hooks::exec_cred_word`]);
//! - inodes and files: a [`BlobData`] value (atomics), zero when the object is allocated
//!   (the framework zeroes blobs) and never dropped;
//! - files also carry, after the `BlobData`, the owner recorded by `file_set_fowner` (an
//!   `Option<Arc<Hooks::Cred>>`, a `u64` the LSM defines and the owner's thread group, released
//!   by `file_free_security`, which the LSM's C hook list must then register).
//!
//! An LSM may keep inodes in memory with [`InodeRef`]s (so that their blobs live on); it must
//! drop those of a superblock being shut down from [`Hooks::sb_delete`] (the LSM's C hook list
//! must then register `sb_delete`).
//!
//! [`audit`] writes audit records.
//!
//! C headers: [`include/linux/lsm_hooks.h`](srctree/include/linux/lsm_hooks.h),
//! [`include/linux/lsm_hook_defs.h`](srctree/include/linux/lsm_hook_defs.h).

use crate::{
    alloc::{flags::GFP_KERNEL, KBox, KVec},
    bindings,
    error::{code::*, to_result, Error, Result},
    ffi::{c_char, c_int, c_uint, c_ulong, c_void},
    prelude::pin_data,
    str::{CStr, CStrExt},
    sync::{aref::ARef, Arc, ArcBorrow, CondVar, SpinLock},
    task::Task,
    types::Opaque,
};
pub mod audit;
#[cfg(CONFIG_SECURITY_LANDLOCK_RUST)]
pub mod trace;

use core::{
    any::TypeId,
    marker::PhantomData,
    ops::{ControlFlow, Deref},
    ptr::{self, NonNull},
    sync::atomic::{AtomicU32, AtomicU64, AtomicUsize},
};

/// Data that can live in an inode or file security blob: valid when all-zero (the LSM
/// framework zeroes blobs), shareable between threads and without drop glue (blobs are freed
/// by the framework without running destructors).
///
/// # Safety
///
/// An all-zero bit pattern must be a valid value of the type, and the type must not need
/// dropping.
pub unsafe trait BlobData: Sync + 'static {}

// SAFETY: zero is a valid atomic integer and atomics have no drop glue.
unsafe impl BlobData for AtomicU32 {}
// SAFETY: zero is a valid atomic integer and atomics have no drop glue.
unsafe impl BlobData for AtomicU64 {}
// SAFETY: zero is a valid atomic integer and atomics have no drop glue.
unsafe impl BlobData for AtomicUsize {}
// SAFETY: an array of zero-valid, drop-free elements is zero-valid and drop-free.
unsafe impl<T: BlobData, const N: usize> BlobData for [T; N] {}

/// The hooks of a Rust LSM. Each returns `Ok(())` to allow the operation or an error (usually
/// `EACCES`/`EPERM`) to deny it; the default implementations allow everything.
pub trait Hooks: Sized + Send + Sync + 'static {
    /// Per-credential state: credentials carry an `Option<Arc<Self::Cred>>`. Its drop must
    /// not sleep (file owners are released under a spinlock). The last reference held by
    /// credentials is dropped from a worker (`system_wq`): credentials are freed from RCU
    /// callbacks.
    type Cred: Send + Sync + 'static;
    /// Per-inode state.
    type Inode: BlobData;
    /// Per-file state.
    type File: BlobData;

    /// Called once at boot, after the hooks are registered.
    fn init() -> Result {
        Ok(())
    }
    /// `file_open`: a file is being opened (`file.cred()` is the opener's).
    fn file_open(_file: &File) -> Result {
        Ok(())
    }
    /// `file_truncate`: `ftruncate(2)` on an opened file.
    fn file_truncate(_file: &File) -> Result {
        Ok(())
    }
    /// `file_ioctl` and `file_ioctl_compat`.
    fn file_ioctl(_file: &File, _cmd: u32, _compat: bool) -> Result {
        Ok(())
    }
    /// `path_mkdir`, `path_mknod` (with the device number) and `path_symlink` (`S_IFLNK`):
    /// `dentry` is to be created in `dir` with file type and mode `mode`.
    fn path_create(_dir: &Path, _dentry: &Dentry, _mode: u16, _dev: u32) -> Result {
        Ok(())
    }
    /// `path_unlink` and `path_rmdir` (`is_dir`): `dentry` is to be removed from `dir`.
    fn path_remove(_dir: &Path, _dentry: &Dentry, _is_dir: bool) -> Result {
        Ok(())
    }
    /// `path_link`: a hard link to `old` is to be made as `new_dentry` in `new_dir`.
    fn path_link(_old: &Dentry, _new_dir: &Path, _new_dentry: &Dentry) -> Result {
        Ok(())
    }
    /// `path_rename`.
    fn path_rename(
        _old_dir: &Path,
        _old_dentry: &Dentry,
        _new_dir: &Path,
        _new_dentry: &Dentry,
        _flags: u32,
    ) -> Result {
        Ok(())
    }
    /// `path_truncate`: `truncate(2)` or `open(O_TRUNC)` on a path.
    fn path_truncate(_path: &Path) -> Result {
        Ok(())
    }
    /// `sb_mount`, `move_mount`, `sb_umount`, `sb_remount` and `sb_pivotroot`: a change to
    /// the mount topology by the current task, at `target`.
    fn mount_change(_target: MountTarget<'_>) -> Result {
        Ok(())
    }
    /// `ptrace_access_check` (`tracer_is_current`) and `ptrace_traceme`: `other` is the
    /// tracee or the tracer; `audit` unless the caller asked for no audit record
    /// (`PTRACE_MODE_NOAUDIT`).
    fn ptrace(_other: &Task, _tracer_is_current: bool, _audit: bool) -> Result {
        Ok(())
    }
    /// `socket_bind` (`connect == false`) and `socket_connect`; `addr` is the address as
    /// passed by user space (already copied into the kernel).
    fn socket_addr(_sock: &Socket, _addr: &[u8], _connect: bool) -> Result {
        Ok(())
    }
    /// `socket_sendmsg`: the current task sends a message on `sock`; `addr` is the explicit
    /// destination address (`msg_name`, already in kernel memory), if any, and `flags` the
    /// `MSG_*` flags.
    fn socket_sendmsg(_sock: &Socket, _addr: Option<&[u8]>, _flags: u32) -> Result {
        Ok(())
    }
    /// `unix_find`: the current task looked up the named UNIX socket `other` at `path` to
    /// connect or send to it; `coredump` when the lookup is the kernel's, to save a core dump.
    fn unix_find(_path: &Path, _other: &FoundUnixSock, _coredump: bool) -> Result {
        Ok(())
    }
    /// `unix_stream_connect`: the current task connects a stream socket to `other` (the
    /// listening socket, locked).
    fn unix_stream_connect(_other: &UnixSock) -> Result {
        Ok(())
    }
    /// `unix_may_send`: the current task sends a datagram to, or connects a datagram socket
    /// to, `other` (locked); `connected_to_it` when the sending socket's peer is already
    /// `other`.
    fn unix_may_send(_other: &UnixSock, _connected_to_it: bool) -> Result {
        Ok(())
    }
    /// `task_kill`: a signal `sig` to `target`, sent by the current task (`sender == None`)
    /// or on behalf of the credentials `sender` (USB asynchronous I/O).
    fn task_kill(_target: &Task, _sig: i32, _sender: Option<&Cred>) -> Result {
        Ok(())
    }
    /// `file_set_fowner`: the current task sets itself as the owner of `file` (`F_SETOWN`,
    /// ...) for `SIGIO`/`SIGURG`; `owner_is_other_process` unless the owner is a task of the
    /// current process. Returns the state and a word to record for
    /// [`Hooks::file_send_sigiotask`] (with the current thread group), or `None` to record
    /// nothing.
    fn file_set_fowner(_owner_is_other_process: bool) -> Option<(Arc<Self::Cred>, u64)> {
        None
    }
    /// `file_send_sigiotask`: `SIGIO`/`SIGURG` to `target` for a file whose owner recorded
    /// `owner` and `data`; `owner_process` when `target` is in the thread group recorded with
    /// it. Not called when nothing was recorded.
    fn file_send_sigiotask(
        _target: &Task,
        _owner: &Self::Cred,
        _data: u64,
        _owner_process: bool,
    ) -> Result {
        Ok(())
    }
    /// `bprm_creds_for_exec`: the word of the credentials a new program will run with, from
    /// the word they were prepared with (unchanged by default).
    fn exec_cred_word(word: u32) -> u32 {
        word
    }
    /// `sb_delete`: `sb` is being shut down (its last mount is gone). Its unused inodes were
    /// evicted; before returning, the LSM must drop every [`InodeRef`] it holds on an inode of
    /// `sb` (see [`Inode::is_on`]), or the VFS finds busy inodes after unmount. Called in
    /// process context with the superblock's `s_umount` held: may sleep, and may put inodes.
    fn sb_delete(_sb: &SuperBlock) {}
}

/// Where a mount topology change happens.
pub enum MountTarget<'a> {
    /// A mount point or a mount's new place (`sb_mount`, `move_mount`, `sb_pivotroot`).
    Path(&'a Path),
    /// The root of a mount or superblock (`sb_umount`, `sb_remount`).
    Dentry(&'a Dentry),
}

/// The `lsm_blob_sizes` of an LSM: sizes before boot, offsets (written by the LSM framework
/// before the LSM's init) afterwards.
#[repr(transparent)]
pub struct BlobSizes(Opaque<bindings::lsm_blob_sizes>);

// SAFETY: the framework writes the sizes once, during boot, before any hook or reader runs;
// afterwards they are only read.
unsafe impl Sync for BlobSizes {}

impl BlobSizes {
    /// The blob sizes of the LSM `T`. Credentials carry a pointer.
    pub const fn new<T: Hooks>() -> Self {
        // SAFETY: `lsm_blob_sizes` is a C struct of integers: all-zero is valid.
        let mut b: bindings::lsm_blob_sizes = unsafe { core::mem::zeroed() };
        b.lbs_cred = core::mem::size_of::<CredSlot<T>>() as c_uint;
        b.lbs_inode = core::mem::size_of::<T::Inode>() as c_uint;
        b.lbs_file = (file_owner_offset::<T>() + core::mem::size_of::<FileOwner<T>>()) as c_uint;
        Self(Opaque::new(b))
    }

    fn get(&self) -> bindings::lsm_blob_sizes {
        // SAFETY: the framework wrote the offsets before any hook could run (see `Sync`).
        unsafe { ptr::read(self.0.get()) }
    }
}

/// The owner recorded in a file's blob by `file_set_fowner`: null or a reference from
/// `Arc::into_raw`, the LSM's word, and null or a referenced `struct pid` (the owner's thread
/// group).
#[repr(C)]
struct FileOwner<T: Hooks> {
    cred: *const T::Cred,
    data: u64,
    tgid: *mut bindings::pid,
}

/// The LSM's part of a credentials blob: null or a reference from `Arc::into_raw`, and the
/// LSM's word.
#[repr(C)]
struct CredSlot<T: Hooks> {
    cred: *const T::Cred,
    word: u32,
}

/// Where [`FileOwner`] is in the LSM's file blob: after `T::File`, pointer aligned.
const fn file_owner_offset<T: Hooks>() -> usize {
    core::mem::size_of::<T::File>().next_multiple_of(core::mem::align_of::<FileOwner<T>>())
}

/// Implemented by [`define_lsm!`](crate::define_lsm): where the LSM's blob offsets are.
pub trait HasBlobSizes: Hooks {
    /// The static the C `DEFINE_LSM` points to.
    fn blob_sizes() -> &'static BlobSizes;
}

/// Adds a byte offset to a blob pointer, checking for a missing blob.
fn blob_at<B>(base: *mut c_void, offset: c_uint) -> *mut B {
    // The framework always allocates the blobs of a registered LSM; a null base would be a
    // framework bug, caught here in debug builds.
    debug_assert!(!base.is_null());
    base.cast::<u8>().wrapping_add(offset as usize).cast::<B>()
}

/// A reference to credentials (`struct cred`), giving access to the LSM's blob.
pub struct CredRef<'a, T: HasBlobSizes> {
    cred: *const bindings::cred,
    _p: PhantomData<(&'a bindings::cred, T)>,
}

impl<'a, T: HasBlobSizes> CredRef<'a, T> {
    /// # Safety
    ///
    /// `cred` must be valid credentials for `'a`, with the LSM's blob.
    unsafe fn from_raw(cred: *const bindings::cred) -> Self {
        Self {
            cred,
            _p: PhantomData,
        }
    }

    fn slot(&self) -> *mut CredSlot<T> {
        // SAFETY: `self.cred` is valid (type invariant); `security` is its blob.
        let base = unsafe { (*self.cred).security };
        blob_at(base, T::blob_sizes().get().lbs_cred)
    }

    /// The LSM's word in these credentials.
    pub fn word(&self) -> u32 {
        // SAFETY: the slot is in live credentials, not changed once committed.
        unsafe { (*self.slot()).word }
    }

    /// The LSM's state in these credentials, if any.
    pub fn get(&self) -> Option<ArcBorrow<'a, T::Cred>> {
        // SAFETY: the slot holds null or a pointer from `Arc::into_raw`, owned by the
        // credentials, which outlive `'a`; credentials are not changed once committed.
        let p = unsafe { (*self.slot()).cred };
        if p.is_null() {
            None
        } else {
            // SAFETY: see above: `p` came from `Arc::into_raw` and the credentials hold it.
            Some(unsafe { ArcBorrow::from_raw(p) })
        }
    }
}

/// Credentials (`struct cred`) passed by a hook.
#[repr(transparent)]
pub struct Cred(Opaque<bindings::cred>);

impl Cred {
    /// # Safety
    ///
    /// `p` must be valid credentials for `'a`.
    unsafe fn from_raw<'a>(p: *const bindings::cred) -> &'a Self {
        // SAFETY: `Cred` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*p.cast() }
    }

    /// The LSM's blob of these credentials.
    pub fn lsm<T: HasBlobSizes>(&self) -> CredRef<'_, T> {
        // SAFETY: the credentials are valid as long as `self`, with the LSM's blob.
        unsafe { CredRef::from_raw(self.0.get()) }
    }
}

/// The current task's credentials, with a reference held.
pub struct CurrentCred<T: HasBlobSizes> {
    cred: *const bindings::cred,
    _p: PhantomData<T>,
}

impl<T: HasBlobSizes> CurrentCred<T> {
    /// Takes a reference to the current task's credentials.
    pub fn get() -> Self {
        // SAFETY: the current task always has credentials; `get_cred` takes a reference.
        let cred = unsafe { bindings::get_cred(bindings::current_cred()) };
        Self {
            cred,
            _p: PhantomData,
        }
    }

    /// The credentials.
    pub fn cred(&self) -> CredRef<'_, T> {
        // SAFETY: we hold a reference to the credentials.
        unsafe { CredRef::from_raw(self.cred) }
    }
}

impl<T: HasBlobSizes> Drop for CurrentCred<T> {
    fn drop(&mut self) {
        // SAFETY: we own a reference, taken in `get`.
        unsafe { bindings::put_cred(self.cred) };
    }
}

/// The credentials of another task, with a reference held.
pub fn task_cred<T: HasBlobSizes>(task: &Task) -> CurrentCred<T> {
    // SAFETY: `task` is valid; `get_task_cred` returns its credentials with a reference.
    let cred = unsafe { bindings::get_task_cred(task.as_ptr()) };
    CurrentCred {
        cred,
        _p: PhantomData,
    }
}

/// New credentials for the current task (`prepare_creds`), aborted when dropped unless
/// committed.
pub struct NewCred<T: HasBlobSizes>(ReadyCred<T>);

impl<T: HasBlobSizes> NewCred<T> {
    /// Prepares a copy of the current task's credentials.
    pub fn prepare() -> Result<Self> {
        // SAFETY: FFI call without preconditions.
        let cred = unsafe { bindings::prepare_creds() };
        if cred.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: `cred` came from `prepare_creds`, with the reference the value owns.
        Ok(Self(ReadyCred {
            cred,
            _p: PhantomData,
        }))
    }

    /// The LSM's state in the new credentials.
    pub fn get(&self) -> Option<ArcBorrow<'_, T::Cred>> {
        // SAFETY: we own the new credentials.
        unsafe { CredRef::<T>::from_raw(self.0.cred) }.get()
    }

    /// Replaces the LSM's state in the new credentials.
    pub fn set(&mut self, value: Option<Arc<T::Cred>>) {
        // SAFETY: we own the new credentials, not yet visible to anybody else.
        let slot = unsafe { CredRef::<T>::from_raw(self.0.cred) }.slot();
        let new = value.map_or(ptr::null(), Arc::into_raw);
        // SAFETY: `slot` is the blob slot of credentials we own exclusively.
        let old = unsafe { ptr::replace(&raw mut (*slot).cred, new) };
        if !old.is_null() {
            // SAFETY: the slot owned the reference from `Arc::into_raw`.
            drop(unsafe { Arc::from_raw(old) });
        }
    }

    /// The LSM's word in the new credentials.
    pub fn word(&self) -> u32 {
        // SAFETY: we own the new credentials.
        unsafe { CredRef::<T>::from_raw(self.0.cred) }.word()
    }

    /// Replaces the LSM's word in the new credentials.
    pub fn set_word(&mut self, word: u32) {
        // SAFETY: we own the new credentials, not yet visible to anybody else.
        let slot = unsafe { CredRef::<T>::from_raw(self.0.cred) }.slot();
        // SAFETY: as above.
        unsafe { (*slot).word = word };
    }

    /// Installs the new credentials on the current task.
    pub fn commit(self) {
        self.ready().commit();
    }

    /// The new credentials, final: they can be committed, no longer changed.
    pub fn ready(self) -> ReadyCred<T> {
        self.0
    }
}

/// New credentials that are final ([`NewCred::ready`]), possibly shared with other threads of
/// the process that committed them too ([`NewCred::apply_to_other_threads`]): installed on the
/// current task by [`ReadyCred::commit`], aborted when dropped.
///
/// # Invariants
///
/// `cred` came from `prepare_creds` (on this task, or on the task whose new credentials these
/// are shared from) and this value owns one reference to it.
pub struct ReadyCred<T: HasBlobSizes> {
    cred: *mut bindings::cred,
    _p: PhantomData<T>,
}

impl<T: HasBlobSizes> ReadyCred<T> {
    /// Installs the credentials on the current task.
    pub fn commit(self) {
        let cred = self.cred;
        core::mem::forget(self);
        // SAFETY: By the type invariants `cred` is prepared credentials and we own a reference,
        // which `commit_creds` consumes; it cannot fail for credentials prepared in this
        // process (C's `TSYNC` commits a caller's prepared credentials in its siblings alike).
        unsafe { bindings::commit_creds(cred) };
    }
}

impl<T: HasBlobSizes> Drop for ReadyCred<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own a reference to prepared, uncommitted
        // credentials.
        unsafe { bindings::abort_creds(self.cred) };
    }
}

impl<T: HasBlobSizes> NewCred<T> {
    /// Gives every other thread of the current process new credentials carrying the LSM state
    /// and word of `self` (and `no_new_privs` when `set_no_new_privs`): all of them or, on
    /// error, none.
    ///
    /// Each thread changes its own credentials (only a task may change its own), from a
    /// `task_work` run when it next returns to user space. The threads prepare their
    /// credentials, wait until all have, then all commit or all abort: a failure in one
    /// (`ENOMEM`) leaves every thread as it was. Threads that appear meanwhile (a sibling
    /// calling `clone`) are found by looking again until no new thread shows up. Returns
    /// `ERESTARTNOINTR` (the system call is restarted, signals handled in between) when
    /// another thread of the process holds the exec lock for the same purpose or when a
    /// signal interrupts the wait for the others' preparation. This is what Landlock's
    /// `LANDLOCK_RESTRICT_SELF_TSYNC` does; the caller commits the returned credentials
    /// afterwards. With `committed`, each thread calls it with the new LSM state (if any) and
    /// whether it has `no_new_privs`, in its own context, after its commit.
    ///
    /// As in C, a thread whose credentials are the caller's current ones (threads share them
    /// until one changes its own) takes a reference to `self` instead of a copy, so that the
    /// threads end up sharing one object, as after a single commit; that is also why `self`
    /// comes back final, as a [`ReadyCred`].
    pub fn apply_to_other_threads(
        self,
        set_no_new_privs: bool,
        committed: Option<fn(&T::Cred, bool)>,
    ) -> Result<ReadyCred<T>> {
        let value: Option<Arc<T::Cred>> = self.get().map(Arc::from);
        let word = self.word();
        let new = self.ready();
        // SAFETY: FFI call on the current task, which always has credentials.
        let old_cred = unsafe { bindings::current_cred() };
        // Held across the whole exchange: no `execve` (which would kill the siblings and
        // change the credentials) and no second exchange in the same process meanwhile.
        let _exec = ExecUpdateLock::try_lock()?;
        pin_init::stack_pin_init!(let shared = pin_init::pin_init!(ThreadSync::<T> {
            value,
            word,
            old_cred,
            new_cred: new.cred,
            set_no_new_privs,
            committed,
            state <- crate::new_spinlock!(SyncState {
                preparing: 0,
                // The caller's own count, dropped when it has sent every work.
                unfinished: 1,
                error: 0,
                ready: false,
            }),
            to_caller <- crate::new_condvar!(),
            to_threads <- crate::new_condvar!(),
        }));
        let shared: &ThreadSync<T> = &shared;
        let mut works = KVec::<KBox<ThreadWork<T>>>::new();
        loop {
            let wanted = other_threads(&works);
            if wanted == 0 {
                break;
            }
            // Allocated outside the RCU read section the walk over the threads needs.
            let mut spare = KVec::new();
            let grown = works.reserve(wanted, GFP_KERNEL).is_ok()
                && spare.reserve(wanted, GFP_KERNEL).is_ok()
                && (0..wanted).all(|_| {
                    KBox::new(ThreadWork::<T>::new(shared), GFP_KERNEL)
                        .ok()
                        .and_then(|w| spare.push_within_capacity(w).ok())
                        .is_some()
                });
            if !grown {
                shared.state.lock().fail(ENOMEM);
                break;
            }
            shared.state.lock().preparing = 1;
            let more = send_works(&mut works, &mut spare);
            let mut state = shared.state.lock();
            state.preparing -= 1;
            let mut interrupted = false;
            while state.preparing > 0 {
                // Woken by a signal, the wait is interrupted only if the preparation is still
                // not done (as `wait_for_completion_interruptible`). Under a stream of signals
                // from a sibling, that sibling's last signal and its own preparation (its work
                // runs as it leaves that `tgkill`) come together: aborting then would restart
                // the system call into the same race, again and again.
                if shared.to_caller.wait_interruptible(&mut state) && state.preparing > 0 {
                    interrupted = true;
                    break;
                }
            }
            if interrupted {
                state.fail(ERESTARTNOINTR);
                drop(state);
                cancel_works(shared, &works);
                break;
            }
            if !more || state.error != 0 {
                break;
            }
        }
        let mut state = shared.state.lock();
        state.ready = true;
        state.unfinished -= 1;
        shared.to_threads.notify_all();
        while state.unfinished > 0 {
            shared.to_caller.wait(&mut state);
        }
        let error = state.error;
        drop(state);
        // Every work has run or was cancelled: `works` (task references) can go.
        drop(works);
        if error != 0 {
            Err(Error::from_errno(error))
        } else {
            Ok(new)
        }
    }
}

/// The current process's `signal->exec_update_lock`, taken for writing.
struct ExecUpdateLock;

impl ExecUpdateLock {
    /// Takes the lock or asks for the system call to be restarted.
    fn try_lock() -> Result<Self> {
        // SAFETY: FFI call on the current task.
        if unsafe { bindings::lsm_exec_update_trylock() } {
            Ok(Self)
        } else {
            // SAFETY: FFI call on the current task: flags it for a restart.
            Err(Error::from_errno(unsafe { bindings::restart_syscall() }))
        }
    }
}

impl Drop for ExecUpdateLock {
    fn drop(&mut self) {
        // SAFETY: taken by `try_lock` on the current task, which this value does not leave.
        unsafe { bindings::lsm_exec_update_unlock() };
    }
}

/// The state the threads of [`NewCred::apply_to_other_threads`] share, on the caller's
/// stack: the caller returns only once no thread can touch it any more.
struct SyncState {
    /// Threads of the current round still preparing (plus one while the caller sends works).
    preparing: usize,
    /// Threads not done yet (plus one for the caller).
    unfinished: usize,
    /// The first error, as a negative errno, or 0.
    error: c_int,
    /// The caller has sent every work: the threads may commit (or abort on `error`).
    ready: bool,
}

impl SyncState {
    fn fail(&mut self, e: Error) {
        if self.error == 0 {
            self.error = e.to_errno();
        }
    }
}

#[pin_data]
struct ThreadSync<T: HasBlobSizes> {
    /// The caller's new LSM state and word, which every other thread takes.
    value: Option<Arc<T::Cred>>,
    word: u32,
    /// The caller's credentials when it started, compared (never dereferenced) with each
    /// thread's own.
    old_cred: *const bindings::cred,
    /// The caller's new credentials ([`ReadyCred`], alive until the caller returns), shared
    /// with the threads whose credentials are `old_cred`.
    new_cred: *mut bindings::cred,
    set_no_new_privs: bool,
    /// Called by each thread after its commit.
    committed: Option<fn(&T::Cred, bool)>,
    // A spinlock, not a mutex: a thread's last access is its unlock, after which the caller
    // may free this; `mutex_unlock` may still touch the mutex after another task took it.
    #[pin]
    state: SpinLock<SyncState>,
    /// What the caller waits for (every thread prepared, every thread finished), and what the
    /// threads wait for (`ready`): two queues, so that the last thread to prepare wakes the
    /// caller alone, not every thread waiting to commit.
    #[pin]
    to_caller: CondVar,
    #[pin]
    to_threads: CondVar,
}

impl<T: HasBlobSizes> ThreadSync<T> {
    /// Runs in each other thread, from its `task_work`.
    fn run_in_this_thread(&self) {
        // SAFETY: FFI call on the current task, which always has credentials.
        let prepared = if unsafe { bindings::current_cred() } == self.old_cred {
            // INVARIANT: `new_cred` is the caller's prepared credentials, alive until the caller
            // returns, which is after this thread is done with `self`; `get_cred` takes the
            // reference the new value owns.
            Ok(ReadyCred::<T> {
                // SAFETY: `new_cred` is valid (see above).
                cred: unsafe { bindings::get_cred(self.new_cred) }.cast_mut(),
                _p: PhantomData,
            })
        } else {
            NewCred::<T>::prepare().map(|mut cred| {
                cred.set(self.value.clone());
                cred.set_word(self.word);
                cred.ready()
            })
        };
        let mut state = self.state.lock();
        if prepared.is_err() {
            state.fail(ENOMEM);
        }
        state.preparing -= 1;
        if state.preparing == 0 {
            self.to_caller.notify_all();
        }
        while !state.ready {
            self.to_threads.wait(&mut state);
        }
        let commit = state.error == 0;
        drop(state);
        if let (true, Ok(cred)) = (commit, prepared) {
            if self.set_no_new_privs {
                // SAFETY: FFI call on the current task.
                unsafe { bindings::task_set_no_new_privs(bindings::get_current()) };
            }
            cred.commit();
            if let (Some(committed), Some(value)) = (self.committed, &self.value) {
                committed(value, current_no_new_privs());
            }
        }
        let mut state = self.state.lock();
        state.unfinished -= 1;
        if state.unfinished == 0 {
            self.to_caller.notify_all();
        }
        // Unlocking is the last access to `self`.
    }
}

/// A `task_work` sent to one other thread.
#[repr(C)]
struct ThreadWork<T: HasBlobSizes> {
    /// First, so that the callback finds the work from its `callback_head`.
    head: Opaque<bindings::callback_head>,
    shared: *const ThreadSync<T>,
    /// The thread, with a reference held; `None` until sent.
    task: Option<ARef<Task>>,
}

impl<T: HasBlobSizes> ThreadWork<T> {
    fn new(shared: &ThreadSync<T>) -> Self {
        Self {
            head: Opaque::uninit(),
            shared,
            task: None,
        }
    }

    /// # Safety
    ///
    /// `head` must be the `head` of a `ThreadWork<T>` sent by `send_works`, whose caller
    /// waits for this callback before freeing the work or the shared state.
    unsafe extern "C" fn run(head: *mut bindings::callback_head) {
        // SAFETY: `head` is the first field of a `#[repr(C)]` `ThreadWork<T>` (see above).
        let shared = unsafe { (*head.cast::<Self>()).shared };
        // SAFETY: the caller keeps the shared state alive until this thread is counted out
        // of `unfinished`, which is the last thing `run_in_this_thread` does with it.
        unsafe { &*shared }.run_in_this_thread();
    }
}

/// Visits the other live (not exiting) threads of the current process under the RCU read
/// lock.
fn for_each_other_thread(mut visit: impl FnMut(*mut bindings::task_struct) -> ControlFlow<()>) {
    let _rcu = crate::sync::rcu::read_lock();
    // SAFETY: FFI call on the current task, RCU read lock held.
    let me = unsafe { bindings::get_current() };
    // SAFETY: as above: the thread list of the current process, walked under RCU.
    let mut t = unsafe { bindings::lsm_first_thread(me) };
    while !t.is_null() {
        // SAFETY: `t` is a task of the thread list, valid under RCU; `flags` changes
        // concurrently, so it is read once (READ_ONCE).
        let flags = unsafe { ptr::read_volatile(ptr::addr_of!((*t).flags)) };
        if t != me && flags & bindings::PF_EXITING == 0 && visit(t).is_break() {
            break;
        }
        // SAFETY: `t` is valid under RCU; the next one or null at the end.
        t = unsafe { bindings::__next_thread(t) };
    }
}

fn has_work<T: HasBlobSizes>(works: &[KBox<ThreadWork<T>>], t: *mut bindings::task_struct) -> bool {
    works
        .iter()
        .any(|w| w.task.as_ref().is_some_and(|task| task.as_ptr() == t))
}

/// How many other threads have no work yet.
fn other_threads<T: HasBlobSizes>(works: &[KBox<ThreadWork<T>>]) -> usize {
    let mut n = 0usize;
    for_each_other_thread(|t| {
        if !has_work(works, t) {
            n += 1;
        }
        ControlFlow::Continue(())
    });
    n
}

/// Sends a work from `spare` to each other thread without one; returns whether any such
/// thread was found (one more look is then needed: it may have cloned meanwhile).
fn send_works<T: HasBlobSizes>(
    works: &mut KVec<KBox<ThreadWork<T>>>,
    spare: &mut KVec<KBox<ThreadWork<T>>>,
) -> bool {
    let mut found = false;
    for_each_other_thread(|t| {
        if has_work(works, t) {
            return ControlFlow::Continue(());
        }
        found = true;
        let Some(mut work) = spare.pop() else {
            // More threads than counted a moment ago: the next round gets them.
            return ControlFlow::Break(());
        };
        // SAFETY: `t` is valid under the RCU read lock `for_each_other_thread` holds;
        // `Task` is a transparent wrapper and the reference is counted from here on.
        work.task = Some(ARef::from(unsafe { &*t.cast::<Task>() }));
        // SAFETY: `work.shared` is valid (the caller's stack, see `apply_to_other_threads`).
        let shared = unsafe { &*work.shared };
        {
            let mut state = shared.state.lock();
            state.preparing += 1;
            state.unfinished += 1;
        }
        // SAFETY: the head is in a box that stays in `works` (not moved) until the callback
        // ran or was cancelled; `run` is the matching callback.
        let err = unsafe {
            bindings::init_task_work(work.head.get(), Some(ThreadWork::<T>::run));
            bindings::task_work_add(
                t,
                work.head.get(),
                bindings::task_work_notify_mode_TWA_SIGNAL,
            )
        };
        if err != 0 {
            // The thread is exiting: it will not run the work.
            let mut state = shared.state.lock();
            state.preparing -= 1;
            state.unfinished -= 1;
            drop(state);
            work.task = None;
            // The box goes back to the spares (no allocation under RCU, none can fail).
            if let Err(w) = spare.push_within_capacity(work) {
                drop(w);
            }
            return ControlFlow::Continue(());
        }
        // Cannot fail: `works` has room for every counted thread.
        if let Err(w) = works.push_within_capacity(work) {
            // Unreachable; a work already sent must outlive its callback, so leak it rather
            // than free it.
            core::mem::forget(w);
        }
        ControlFlow::Continue(())
    });
    found
}

/// Takes back the works not started yet (after a signal): those threads are counted out.
fn cancel_works<T: HasBlobSizes>(shared: &ThreadSync<T>, works: &[KBox<ThreadWork<T>>]) {
    for w in works {
        let Some(task) = &w.task else { continue };
        // SAFETY: the head was added to `task` by `send_works` and is still in its box.
        if unsafe { bindings::task_work_cancel(task.as_ptr(), w.head.get()) } {
            let mut state = shared.state.lock();
            state.preparing -= 1;
            state.unfinished -= 1;
        }
    }
}

/// An inode (`struct inode`).
#[repr(transparent)]
pub struct Inode(Opaque<bindings::inode>);

impl Inode {
    /// # Safety
    ///
    /// `p` must be a valid inode for `'a`.
    unsafe fn from_raw<'a>(p: *const bindings::inode) -> &'a Self {
        // SAFETY: `Inode` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*p.cast() }
    }

    /// The file type and mode bits (`i_mode`).
    #[inline]
    pub fn mode(&self) -> u16 {
        // SAFETY: `i_mode` of a live inode is stable for the file type bits.
        unsafe { (*self.0.get()).i_mode }
    }

    /// The device number of a device inode (`i_rdev`; 0/0 for a whiteout).
    #[inline]
    pub fn rdev(&self) -> u32 {
        // SAFETY: `i_rdev` of a live inode is set when it is created and not changed.
        unsafe { (*self.0.get()).i_rdev }
    }

    /// Whether the inode is a filesystem-internal one (`IS_PRIVATE`).
    #[inline]
    pub fn is_private(&self) -> bool {
        // SAFETY: reading the flags of a live inode.
        unsafe { (*self.0.get()).i_flags & bindings::S_PRIVATE != 0 }
    }

    /// Whether the inode is a character or block device.
    #[inline]
    pub fn is_device(&self) -> bool {
        let t = u32::from(self.mode()) & bindings::S_IFMT;
        t == bindings::S_IFCHR || t == bindings::S_IFBLK
    }

    /// Whether the inode is a directory.
    #[inline]
    pub fn is_dir(&self) -> bool {
        u32::from(self.mode()) & bindings::S_IFMT == bindings::S_IFDIR
    }

    /// The LSM's blob of this inode.
    pub fn blob<T: HasBlobSizes>(&self) -> &T::Inode {
        // SAFETY: the inode is live, so is its blob, which holds a `T::Inode` (zeroed by the
        // framework, valid when zero by `BlobData`).
        unsafe {
            let base = (*self.0.get()).i_security;
            &*blob_at::<T::Inode>(base, T::blob_sizes().get().lbs_inode)
        }
    }
}

impl Inode {
    /// Whether the inode belongs to the superblock `sb`.
    pub fn is_on(&self, sb: &SuperBlock) -> bool {
        // SAFETY: `i_sb` of a live inode is set when it is allocated and never changes; it is
        // only compared.
        unsafe { ptr::eq((*self.0.get()).i_sb, sb.0.get()) }
    }
}

/// A superblock (`struct super_block`), as the `sb_delete` hook passes it.
#[repr(transparent)]
pub struct SuperBlock(Opaque<bindings::super_block>);

impl SuperBlock {
    /// # Safety
    ///
    /// `p` must be a valid superblock for `'a`.
    unsafe fn from_raw<'a>(p: *const bindings::super_block) -> &'a Self {
        // SAFETY: `SuperBlock` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*p.cast() }
    }
}

/// A counted reference to an inode (`igrab`, released with `iput`): the inode, with its
/// security blobs, stays in memory (it is not evicted from the inode cache) as long as this
/// exists.
///
/// Dropping it may sleep (the last `iput` evicts the inode, which may write it back): drop it
/// only where sleeping is allowed, never under a spinlock or from an RCU callback. A
/// reference on an inode of a superblock that is being shut down must be dropped by the
/// LSM's [`Hooks::sb_delete`] at the latest.
///
/// # Invariants
///
/// The pointer is an inode on which this value owns a reference.
pub struct InodeRef(NonNull<bindings::inode>);

// SAFETY: an inode reference may be held and released from any thread.
unsafe impl Send for InodeRef {}
// SAFETY: `&InodeRef` only gives `&Inode`, whose methods are safe from any thread.
unsafe impl Sync for InodeRef {}

impl InodeRef {
    /// Takes a reference to `inode`; `None` if the inode is being freed (`I_FREEING`,
    /// `I_WILL_FREE`).
    pub fn new(inode: &Inode) -> Option<Self> {
        // SAFETY: `inode` is live for the call; `igrab` takes a reference under the inode's
        // lock unless the inode is being freed, then returns null.
        let p = unsafe { bindings::igrab(inode.0.get()) };
        // INVARIANT: a non-null result of `igrab` is the inode, with a reference we own.
        NonNull::new(p).map(Self)
    }
}

impl Deref for InodeRef {
    type Target = Inode;
    fn deref(&self) -> &Inode {
        // SAFETY: the reference we own keeps the inode live as long as `self`.
        unsafe { Inode::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for InodeRef {
    fn drop(&mut self) {
        // SAFETY: we own a reference (type invariant), given back here once.
        unsafe { bindings::iput(self.0.as_ptr()) };
    }
}

/// A directory entry (`struct dentry`).
#[repr(transparent)]
pub struct Dentry(Opaque<bindings::dentry>);

impl Dentry {
    /// # Safety
    ///
    /// `p` must be a valid dentry for `'a`.
    unsafe fn from_raw<'a>(p: *const bindings::dentry) -> &'a Self {
        // SAFETY: `Dentry` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*p.cast() }
    }

    /// The inode, `None` for a negative dentry.
    // Inlined, and `d_inode` read as `d_backing_inode()` reads it rather than through a C
    // helper: Landlock asks it for every directory of every path it walks.
    #[inline]
    pub fn inode(&self) -> Option<&Inode> {
        // SAFETY: the dentry is valid; its inode lives as long as the positive dentry.
        let i = unsafe { (*self.0.get()).d_inode };
        // SAFETY: a non-null inode of a live dentry is valid while the dentry is.
        (!i.is_null()).then(|| unsafe { Inode::from_raw(i) })
    }

    /// Whether the dentry's filesystem is not mountable by users (`SB_NOUSER`).
    #[inline]
    pub fn sb_nouser(&self) -> bool {
        // SAFETY: a live dentry has a superblock.
        unsafe { (*(*self.0.get()).d_sb).s_flags & (1 << 31) != 0 }
    }

    /// Whether `dir` is the parent of `self`.
    pub fn same_parent_dir(&self, dir: &Dentry) -> bool {
        // SAFETY: reading the parent pointer of a live dentry; it is only compared.
        unsafe { ptr::eq((*self.0.get()).d_parent, dir.0.get()) }
    }
}

/// A path (`struct path`): a mount and a dentry.
#[repr(transparent)]
pub struct Path(Opaque<bindings::path>);

/// How a [`Path::walk_up`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// The visitor stopped it.
    Stopped,
    /// It reached the root of the mount namespace.
    Root,
    /// It reached a disconnected root of an internal mount (e.g. nsfs).
    Internal,
}

impl Path {
    /// # Safety
    ///
    /// `p` must be a valid path for `'a`.
    unsafe fn from_raw<'a>(p: *const bindings::path) -> &'a Self {
        // SAFETY: `Path` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*p.cast() }
    }

    /// The dentry.
    #[inline]
    pub fn dentry(&self) -> &Dentry {
        // SAFETY: a valid path holds a valid dentry.
        unsafe { Dentry::from_raw((*self.0.get()).dentry) }
    }

    /// Whether the mount is an internal one (`MNT_INTERNAL`).
    #[inline]
    pub fn is_internal_mount(&self) -> bool {
        // SAFETY: a valid path holds a valid mount.
        unsafe {
            (*(*self.0.get()).mnt).mnt_flags & bindings::mount_flags_MNT_INTERNAL as c_int != 0
        }
    }

    /// Visits the inodes from this path up to the root of the task's view of the filesystem,
    /// crossing mount points (a mount point's own, hidden, dentry is skipped). `visit`
    /// returns `ControlFlow::Break(())` to stop early. From a directory moved out of the
    /// mount's reach (a bind mount of a subdirectory), the walk reaches the root of its
    /// filesystem, not the mount's root: it then goes on from the mount's root (Landlock's
    /// erratum 3), unless the mount is an internal one ([`WalkEnd::Internal`]).
    pub fn walk_up(&self, visit: impl FnMut(&Inode) -> ControlFlow<()>) -> WalkEnd {
        // SAFETY: copying a valid `struct path`.
        let mut p: bindings::path = unsafe { ptr::read(self.0.get()) };
        // SAFETY: `p` is valid; `walk` takes over the references.
        unsafe { bindings::path_get(&p) };
        // SAFETY: we own references on both parts of `p`.
        unsafe { walk(&mut p, visit) }
    }
}

impl Path {
    /// Visits the inodes from this path up to the root of its mount, included, or up to the
    /// root of its filesystem when the directory is disconnected from the mount's root (see
    /// [`Path::walk_up`]), without crossing into another mount. `visit` returns
    /// `ControlFlow::Break(())` to stop early.
    pub fn walk_in_mount(&self, mut visit: impl FnMut(&Inode) -> ControlFlow<()>) {
        // SAFETY: a valid path holds a valid mount and dentry; we take a reference on the
        // dentry, released below.
        let (root, mut d) = unsafe {
            let p = self.0.get();
            ((*(*p).mnt).mnt_root, bindings::dget((*p).dentry))
        };
        loop {
            // SAFETY: we hold a reference on `d`.
            let dentry = unsafe { Dentry::from_raw(d) };
            if dentry.inode().is_some_and(|inode| visit(inode).is_break()) {
                break;
            }
            // SAFETY: we hold a reference on `d`; its parent pointer is only compared.
            if d == root || unsafe { (*d).d_parent } == d {
                break;
            }
            // SAFETY: `d` is referenced; `dget_parent` returns its parent with a reference,
            // then we drop the one on `d`.
            unsafe {
                let parent = bindings::dget_parent(d);
                bindings::dput(d);
                d = parent;
            }
        }
        // SAFETY: releases the reference we hold.
        unsafe { bindings::dput(d) };
    }

    /// Calls `f` with the path of the root of this path's mount.
    pub fn with_mount_root<R>(&self, f: impl FnOnce(&Path) -> R) -> R {
        // SAFETY: copying a valid `struct path`; the mount's root dentry is pinned by the
        // mount, which `self` keeps referenced for the call.
        let p = unsafe {
            let mut p: bindings::path = ptr::read(self.0.get());
            p.dentry = (*p.mnt).mnt_root;
            p
        };
        // SAFETY: `p` is a valid path for the call.
        f(unsafe { Path::from_raw(&raw const p) })
    }

    /// Calls `f` with the path of the parent directory of `child` (a dentry on this path's
    /// mount), or of `child` itself if it is the mount's root.
    pub fn with_parent_of<R>(&self, child: &Dentry, f: impl FnOnce(&Path) -> R) -> R {
        // SAFETY: copying a valid `struct path`.
        let mut p: bindings::path = unsafe { ptr::read(self.0.get()) };
        let c = child.0.get();
        // SAFETY: `p.mnt` and `c` are valid; we take a reference on the dentry we point to,
        // and the mount stays referenced by `self` for the call.
        unsafe {
            p.dentry = if c == (*p.mnt).mnt_root {
                bindings::dget(c)
            } else {
                bindings::dget_parent(c)
            };
        }
        // SAFETY: `p` is a valid path for the call: a referenced dentry on a live mount.
        let r = f(unsafe { Path::from_raw(&raw const p) });
        // SAFETY: releases the reference taken above.
        unsafe { bindings::dput(p.dentry) };
        r
    }
}

/// The walk of [`Path::walk_up`]; releases `p`'s references.
///
/// # Safety
///
/// The caller owns a reference on `p.mnt` and on `p.dentry`.
unsafe fn walk(
    p: &mut bindings::path,
    mut visit: impl FnMut(&Inode) -> ControlFlow<()>,
) -> WalkEnd {
    let end = 'walk: loop {
        // SAFETY: we hold a reference on `p.dentry`.
        let dentry = unsafe { Dentry::from_raw(p.dentry) };
        if let Some(inode) = dentry.inode() {
            if visit(inode).is_break() {
                break WalkEnd::Stopped;
            }
        }
        // SAFETY: we hold references on the mount and the dentry of `p`.
        unsafe {
            while p.dentry == (*p.mnt).mnt_root {
                // `follow_up` moves `p` to the mount point, with references.
                if bindings::follow_up(p) == 0 {
                    break 'walk WalkEnd::Root;
                }
            }
            let next = if (*p.dentry).d_parent == p.dentry {
                // A root that is not the mount's: an internal filesystem's (nsfs), or the
                // root of a filesystem a directory was moved to, out of a bind mount. Go on
                // from the mount's root, which the mount pins (erratum 3).
                if (*p.mnt).mnt_flags & bindings::mount_flags_MNT_INTERNAL as c_int != 0 {
                    break WalkEnd::Internal;
                }
                bindings::dget((*p.mnt).mnt_root)
            } else {
                bindings::dget_parent(p.dentry)
            };
            bindings::dput(p.dentry);
            p.dentry = next;
        }
    };
    // SAFETY: releases the references we own (moved along by `follow_up`).
    unsafe { bindings::path_put(p) };
    end
}

/// An opened file (`struct file`).
#[repr(transparent)]
pub struct File(Opaque<bindings::file>);

impl File {
    /// # Safety
    ///
    /// `p` must be a valid file for `'a`.
    unsafe fn from_raw<'a>(p: *const bindings::file) -> &'a Self {
        // SAFETY: `File` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*p.cast() }
    }

    /// The path the file was opened with.
    #[inline]
    pub fn path(&self) -> &Path {
        // SAFETY: `f_path` is set for the file's whole life.
        unsafe { Path::from_raw(&raw const (*self.0.get()).__bindgen_anon_1.f_path) }
    }

    /// The `f_mode` bits.
    #[inline]
    pub fn mode(&self) -> u32 {
        // SAFETY: reading a field of a live file.
        unsafe { (*self.0.get()).f_mode }
    }

    /// The `f_flags` bits.
    #[inline]
    pub fn flags(&self) -> u32 {
        // SAFETY: reading a field of a live file.
        unsafe { (*self.0.get()).f_flags }
    }

    /// The credentials of the opener.
    pub fn cred<T: HasBlobSizes>(&self) -> CredRef<'_, T> {
        // SAFETY: `f_cred` is held by the file for its whole life.
        unsafe { CredRef::from_raw((*self.0.get()).f_cred) }
    }

    /// The owner slot of the LSM's blob of this file.
    fn owner_slot<T: HasBlobSizes>(&self) -> *mut FileOwner<T> {
        // SAFETY: the file is live, so is its blob, which has room for a `FileOwner` at
        // `file_owner_offset` (see `BlobSizes::new`).
        let base = unsafe { (*self.0.get()).f_security };
        blob_at::<u8>(base, T::blob_sizes().get().lbs_file)
            .wrapping_add(file_owner_offset::<T>())
            .cast()
    }

    /// The LSM's blob of this file.
    pub fn blob<T: HasBlobSizes>(&self) -> &T::File {
        // SAFETY: the file is live, so is its blob, which holds a `T::File` (zeroed by the
        // framework, valid when zero by `BlobData`).
        unsafe {
            let base = (*self.0.get()).f_security;
            &*blob_at::<T::File>(base, T::blob_sizes().get().lbs_file)
        }
    }
}

/// `FMODE_CAN_READ`: the file has a `read` operation.
pub const FMODE_CAN_READ: u32 = 1 << 17;
/// `FMODE_CAN_WRITE`: the file has a `write` operation.
pub const FMODE_CAN_WRITE: u32 = 1 << 18;
/// `FMODE_READ`.
pub const FMODE_READ: u32 = 1 << 0;
/// `FMODE_WRITE`.
pub const FMODE_WRITE: u32 = 1 << 1;
/// `FMODE_EXEC`.
pub const FMODE_EXEC: u32 = 1 << 5;

/// A socket (`struct socket`).
#[repr(transparent)]
pub struct Socket(Opaque<bindings::socket>);

impl Socket {
    /// The socket type (`SOCK_STREAM`, ...).
    pub fn sock_type(&self) -> i32 {
        // SAFETY: reading a field of a live socket.
        unsafe { i32::from((*self.0.get()).type_) }
    }

    /// The socket's `struct sock` (may be null).
    fn sk_ptr(&self) -> *const bindings::sock {
        // SAFETY: reading a field of a live socket.
        unsafe { (*self.0.get()).sk }
    }

    /// Whether the socket is a TCP one (`sk_is_tcp`).
    pub fn is_tcp(&self) -> bool {
        // SAFETY: a live socket's `sk` is null or valid.
        unsafe {
            let sk = (*self.0.get()).sk;
            !sk.is_null() && bindings::sk_is_tcp(sk)
        }
    }

    /// Whether the socket is a UDP one (`sk_is_udp`).
    pub fn is_udp(&self) -> bool {
        // SAFETY: a live socket's `sk` is null or valid.
        unsafe {
            let sk = (*self.0.get()).sk;
            !sk.is_null() && bindings::lsm_sk_is_udp(sk)
        }
    }

    /// Whether an inet socket has a local port (`inet_num`), read under the socket lock
    /// (which the caller must not hold: this may sleep). `false` without a `struct sock`.
    pub fn inet_is_bound(&self) -> bool {
        // SAFETY: a live socket's `sk` is null or valid; the helper takes the socket lock.
        unsafe {
            let sk = (*self.0.get()).sk;
            !sk.is_null() && bindings::lsm_inet_num_locked(sk) != 0
        }
    }

    /// The address family of the socket's `struct sock`, 0 without one.
    pub fn family(&self) -> u16 {
        // SAFETY: a live socket's `sk` is null or valid.
        unsafe {
            let sk = (*self.0.get()).sk;
            if sk.is_null() {
                0
            } else {
                bindings::lsm_sk_family(sk)
            }
        }
    }
}

/// A UNIX domain socket (`struct sock`) whose state lock the caller of the hook holds.
#[repr(transparent)]
pub struct UnixSock(Opaque<bindings::sock>);

impl UnixSock {
    /// # Safety
    ///
    /// `p` must be a valid `AF_UNIX` socket whose state lock is held for `'a`.
    unsafe fn from_raw<'a>(p: *const bindings::sock) -> &'a Self {
        // SAFETY: `UnixSock` is a transparent wrapper; the caller guarantees validity.
        unsafe { &*p.cast() }
    }

    /// Whether the socket is bound to an address of the abstract namespace.
    pub fn is_abstract(&self) -> bool {
        // SAFETY: a valid UNIX socket, its address stable under the state lock.
        unsafe { bindings::lsm_unix_is_abstract(self.0.get()) }
    }

    /// The credentials of the file the socket was created with, `None` for a kernel socket
    /// (no file).
    pub fn file_cred<T: HasBlobSizes>(&self) -> Option<CredRef<'_, T>> {
        // SAFETY: a valid UNIX socket; under its state lock the socket cannot be orphaned,
        // so the file and its credentials live at least as long as `self`.
        let cred = unsafe { bindings::lsm_unix_file_cred(self.0.get()) };
        if cred.is_null() {
            None
        } else {
            // SAFETY: see above.
            Some(unsafe { CredRef::from_raw(cred) })
        }
    }
}

/// A UNIX socket found by a path lookup (`unix_find`): referenced by the caller, not locked.
#[repr(transparent)]
pub struct FoundUnixSock(Opaque<bindings::sock>);

impl FoundUnixSock {
    /// Runs `f` on the socket with its state lock held, unless the socket is dead or has no
    /// file (the caller retries the lookup of a dead socket); then gives `None`. `f` must
    /// not sleep.
    pub fn with_locked<R>(&self, f: impl FnOnce(&UnixSock) -> R) -> Option<R> {
        let sk = self.0.get();
        // SAFETY: the caller of the hook holds a reference to the socket; the lock is
        // released below, `f` cannot keep the reference it gets beyond the call.
        unsafe { bindings::lsm_unix_state_lock(sk) };
        // SAFETY: the state lock is held, as `lsm_unix_live_with_file` needs.
        let live = unsafe { bindings::lsm_unix_live_with_file(sk) };
        let r = if live {
            // SAFETY: a valid UNIX socket whose state lock is held until after `f` returns.
            Some(f(unsafe { UnixSock::from_raw(sk) }))
        } else {
            None
        };
        // SAFETY: locked above.
        unsafe { bindings::lsm_unix_state_unlock(sk) };
        r
    }
}

/// Whether `task` is a thread of the current process.
pub fn same_process_as_current(task: &Task) -> bool {
    // SAFETY: `task` and the current task are valid.
    unsafe { bindings::lsm_same_thread_group_as_current(task.as_ptr()) }
}

/// A file referred to by a file descriptor, `O_PATH` ones included (`fget_raw`).
pub struct FdFile(*mut bindings::file);

impl FdFile {
    /// The file of `fd` in the current task, `EBADF` if there is none.
    pub fn get(fd: i32) -> Result<Self> {
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        // SAFETY: FFI call; returns a referenced file or null.
        let f = unsafe { bindings::fget_raw(fd) };
        if f.is_null() {
            Err(EBADF)
        } else {
            Ok(Self(f))
        }
    }

    /// The file.
    pub fn file(&self) -> &File {
        // SAFETY: we hold a reference.
        unsafe { File::from_raw(self.0) }
    }

    /// Whether this is one of the LSM object files made by [`new_object_fd`].
    pub fn is_object_file(&self) -> bool {
        // SAFETY: reading a field of a live file.
        unsafe { ptr::eq((*self.0).f_op, &OBJECT_FOPS.0) }
    }

    /// The object of an LSM object file, if it is one holding a `T`.
    pub fn object<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        if !self.is_object_file() {
            return None;
        }
        // SAFETY: object files' `private_data` is a `Holder` for their whole life.
        let holder = unsafe { &*(*self.0).private_data.cast::<Holder>() };
        if holder.type_id != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: the type matches, and the holder owns a reference from `Arc::into_raw`.
        let b = unsafe { ArcBorrow::<T>::from_raw(holder.ptr.cast()) };
        Some(b.into())
    }
}

impl Drop for FdFile {
    fn drop(&mut self) {
        // SAFETY: we own a reference from `fget_raw`.
        unsafe { bindings::fput(self.0) };
    }
}

/// What an object file's `private_data` points to.
struct Holder {
    type_id: TypeId,
    ptr: *const c_void,
    drop: unsafe fn(*const c_void),
}

/// # Safety
///
/// `p` must come from `Arc::<T>::into_raw`, and is consumed.
unsafe fn drop_arc<T: Send + Sync>(p: *const c_void) {
    // SAFETY: guaranteed by the caller.
    drop(unsafe { Arc::<T>::from_raw(p.cast()) });
}

#[repr(transparent)]
struct Fops(bindings::file_operations);
// SAFETY: the operations table is immutable.
unsafe impl Sync for Fops {}

static OBJECT_FOPS: Fops = Fops(bindings::file_operations {
    release: Some(object_release),
    read: Some(object_read),
    write: Some(object_write),
    // SAFETY: all-zero is a valid `file_operations` (no operation).
    ..unsafe { core::mem::zeroed() }
});

/// # Safety
///
/// Called by the VFS on the last `fput` of an object file.
unsafe extern "C" fn object_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `private_data` is the `Holder` from `new_object_fd`, released once.
    let holder = unsafe { KBox::from_raw((*file).private_data.cast::<Holder>()) };
    // SAFETY: the holder owns the reference.
    unsafe { (holder.drop)(holder.ptr) };
    0
}

/// Reading an object file is not supported (the operation exists to set `FMODE_CAN_READ`).
extern "C" fn object_read(
    _f: *mut bindings::file,
    _b: *mut c_char,
    _s: usize,
    _p: *mut bindings::loff_t,
) -> isize {
    EINVAL.to_errno() as isize
}

/// Writing an object file is not supported (the operation exists to set `FMODE_CAN_WRITE`).
extern "C" fn object_write(
    _f: *mut bindings::file,
    _b: *const c_char,
    _s: usize,
    _p: *mut bindings::loff_t,
) -> isize {
    EINVAL.to_errno() as isize
}

/// Makes an anonymous-inode file descriptor (read-write, close-on-exec) holding `obj`; see
/// [`FdFile::object`].
pub fn new_object_fd<T: Send + Sync + 'static>(name: &'static CStr, obj: Arc<T>) -> Result<i32> {
    let holder = KBox::new(
        Holder {
            type_id: TypeId::of::<T>(),
            ptr: Arc::into_raw(obj).cast(),
            drop: drop_arc::<T>,
        },
        GFP_KERNEL,
    );
    let holder = match holder {
        Ok(h) => KBox::into_raw(h),
        Err(e) => return Err(e.into()),
    };
    // SAFETY: `holder` is a valid `Holder`, owned by the file on success.
    let fd = unsafe {
        bindings::anon_inode_getfd(
            name.as_char_ptr(),
            &OBJECT_FOPS.0,
            holder.cast(),
            (bindings::O_RDWR | bindings::O_CLOEXEC) as c_int,
        )
    };
    if fd < 0 {
        // SAFETY: on failure, nothing took ownership of `holder`.
        let h = unsafe { KBox::from_raw(holder) };
        // SAFETY: the holder owns the reference.
        unsafe { (h.drop)(h.ptr) };
        return Err(Error::from_errno(fd));
    }
    Ok(fd)
}

/// Whether the current process has a single thread (`get_nr_threads(current) == 1`).
pub fn current_is_single_threaded() -> bool {
    // SAFETY: FFI call on the current task.
    unsafe { bindings::lsm_current_nr_threads() == 1 }
}

/// Whether the current task has `no_new_privs` set.
pub fn current_no_new_privs() -> bool {
    // SAFETY: the current task is valid.
    unsafe { bindings::task_no_new_privs(bindings::get_current()) }
}

/// Sets `no_new_privs` on the current task (it cannot be cleared).
pub fn current_set_no_new_privs() {
    // SAFETY: FFI call on the current task.
    unsafe { bindings::task_set_no_new_privs(bindings::get_current()) }
}

/// Whether the current task has `CAP_SYS_ADMIN` in its user namespace (not audited).
pub fn current_capable_sys_admin() -> bool {
    // SAFETY: FFI calls on the current task's user namespace.
    unsafe {
        bindings::ns_capable_noaudit(
            bindings::current_user_ns(),
            bindings::CAP_SYS_ADMIN as c_int,
        )
    }
}

/// Calls `f` with the current task.
pub fn with_current_task<R>(f: impl FnOnce(&Task) -> R) -> R {
    // SAFETY: the current task is valid for as long as this function runs on it; `Task` is a
    // transparent wrapper and the reference does not escape `f`.
    let me = unsafe { &*Task::current_raw().cast::<Task>() };
    f(me)
}

/// The current process's id (thread group id) in the initial PID namespace.
pub fn current_tgid_nr() -> i32 {
    // SAFETY: FFI call on the current task.
    unsafe { bindings::lsm_current_tgid_nr() }
}

/// The current task's real user id in the initial user namespace.
pub fn current_uid() -> u32 {
    // SAFETY: FFI call on the current task.
    unsafe { bindings::lsm_current_uid() }
}

/// The current task's name (`comm`), without its trailing NULs.
pub fn current_comm() -> ([u8; 16], usize) {
    let mut buf = [0u8; 16];
    // SAFETY: `buf` has room for `TASK_COMM_LEN` (16) bytes.
    unsafe { bindings::lsm_current_comm(buf.as_mut_ptr().cast()) };
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    (buf, len)
}

/// The path of the current process's executable (`None`: none, e.g. a kernel thread), as
/// `d_path` gives it, without a trailing NUL.
pub fn current_exe_path(flags: crate::alloc::Flags) -> Result<Option<crate::alloc::KVec<u8>>> {
    const BUF: usize = 4096;
    // SAFETY: FFI call on the current task; returns a referenced file or null.
    let file = unsafe { bindings::get_task_exe_file(bindings::get_current()) };
    if file.is_null() {
        return Ok(None);
    }
    let file = FdFile(file);
    let mut buf = crate::alloc::KVec::<u8>::with_capacity(BUF, flags)?;
    buf.resize(BUF, 0, flags)?;
    // SAFETY: `d_path` writes at most `BUF` bytes to `buf` and returns a pointer into it (at
    // the start of the NUL-terminated path) or an error pointer.
    let p = unsafe {
        bindings::d_path(
            &raw const (*file.0).__bindgen_anon_1.f_path,
            buf.as_mut_ptr().cast(),
            BUF as c_int,
        )
    };
    let start = (p as usize).wrapping_sub(buf.as_ptr() as usize);
    if start >= BUF {
        // An error (e.g. `ENAMETOOLONG`).
        return Err(ENAMETOOLONG);
    }
    let path = buf.get(start..).unwrap_or(&[]);
    let path = path.split(|b| *b == 0).next().unwrap_or(&[]);
    let mut out = crate::alloc::KVec::with_capacity(path.len(), flags)?;
    out.extend_from_slice(path, flags)?;
    Ok(Some(out))
}

/// A random `u32` (`get_random_u32`).
pub fn random_u32() -> u32 {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::get_random_u32() }
}

/// A random `u8` (`get_random_u8`).
pub fn random_u8() -> u8 {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::get_random_u8() }
}

/// Checks an `int` returned by C.
pub fn check(ret: c_int) -> Result {
    to_result(ret)
}

fn ret(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The trampolines [`define_lsm!`](crate::define_lsm) instantiates. Not for direct use.
#[doc(hidden)]
pub mod tramp {
    use super::*;

    /// # Safety
    ///
    /// Called by the LSM framework only, after blob offsets are set.
    pub unsafe fn init<T: HasBlobSizes>() -> c_int {
        ret(T::init())
    }

    /// # Safety
    ///
    /// LSM hook `cred_prepare`: `new` and `old` are valid credentials with blobs.
    pub unsafe fn cred_prepare<T: HasBlobSizes>(
        new: *mut bindings::cred,
        old: *const bindings::cred,
        _gfp: bindings::gfp_t,
    ) -> c_int {
        // SAFETY: the framework passes valid credentials; `new` is not shared yet.
        unsafe { cred_copy::<T>(new, old) };
        0
    }

    /// # Safety
    ///
    /// `new` (unshared) and `old` are valid credentials with blobs; `new`'s slot is empty.
    unsafe fn cred_copy<T: HasBlobSizes>(new: *mut bindings::cred, old: *const bindings::cred) {
        // SAFETY: valid credentials (caller).
        let old = unsafe { CredRef::<T>::from_raw(old) };
        let value = old.get().map(Arc::from);
        // SAFETY: valid credentials (caller).
        let slot = unsafe { CredRef::<T>::from_raw(new) }.slot();
        let copy = CredSlot::<T> {
            cred: value.map_or(ptr::null(), Arc::into_raw),
            word: old.word(),
        };
        // SAFETY: `new` is ours alone; its slot was zeroed by the framework.
        unsafe { ptr::write(slot, copy) };
    }

    /// # Safety
    ///
    /// LSM hook `cred_transfer`.
    pub unsafe fn cred_transfer<T: HasBlobSizes>(
        new: *mut bindings::cred,
        old: *const bindings::cred,
    ) {
        // SAFETY: the framework passes valid credentials; `new` is not shared yet.
        unsafe { cred_copy::<T>(new, old) };
    }

    /// # Safety
    ///
    /// LSM hook `cred_free`: `cred` is being freed.
    pub unsafe fn cred_free<T: HasBlobSizes>(cred: *mut bindings::cred) {
        // SAFETY: the framework passes valid credentials, no longer used by anybody else.
        let slot = unsafe { CredRef::<T>::from_raw(cred) }.slot();
        // SAFETY: as above; the slot owns a reference or is null.
        let p = unsafe { ptr::replace(&raw mut (*slot).cred, ptr::null()) };
        if p.is_null() {
            return;
        }
        // SAFETY: the pointer came from `Arc::into_raw`.
        let value = unsafe { Arc::<T::Cred>::from_raw(p) };
        // The last reference goes from a worker, as C Landlock frees its domains (this runs
        // from an RCU callback); if no work item can be allocated, from here.
        if let Some(last) = Arc::into_unique_or_drop(value) {
            let _ = crate::workqueue::system()
                .try_spawn(crate::alloc::flags::GFP_ATOMIC, move || drop(last));
        }
    }

    /// # Safety
    ///
    /// LSM hook `bprm_creds_for_exec`: `bprm->cred` are the new program's credentials, not
    /// yet shared.
    pub unsafe fn bprm_creds_for_exec<T: HasBlobSizes>(bprm: *mut bindings::linux_binprm) -> c_int {
        // SAFETY: the framework passes a valid `linux_binprm` whose prepared credentials are
        // the exec's alone.
        unsafe {
            let slot = CredRef::<T>::from_raw(bindings::lsm_bprm_cred(bprm)).slot();
            (*slot).word = T::exec_cred_word((*slot).word);
        }
        0
    }

    /// # Safety
    ///
    /// LSM hook `file_open`.
    pub unsafe fn file_open<T: HasBlobSizes>(file: *mut bindings::file) -> c_int {
        // SAFETY: the framework passes a valid file.
        ret(T::file_open(unsafe { File::from_raw(file) }))
    }

    /// # Safety
    ///
    /// LSM hook `file_truncate`.
    pub unsafe fn file_truncate<T: HasBlobSizes>(file: *mut bindings::file) -> c_int {
        // SAFETY: the framework passes a valid file.
        ret(T::file_truncate(unsafe { File::from_raw(file) }))
    }

    /// # Safety
    ///
    /// LSM hook `file_ioctl`.
    pub unsafe fn file_ioctl<T: HasBlobSizes>(
        file: *mut bindings::file,
        cmd: c_uint,
        _arg: c_ulong,
    ) -> c_int {
        // SAFETY: the framework passes a valid file.
        ret(T::file_ioctl(unsafe { File::from_raw(file) }, cmd, false))
    }

    /// # Safety
    ///
    /// LSM hook `file_ioctl_compat`.
    pub unsafe fn file_ioctl_compat<T: HasBlobSizes>(
        file: *mut bindings::file,
        cmd: c_uint,
        _arg: c_ulong,
    ) -> c_int {
        // SAFETY: the framework passes a valid file.
        ret(T::file_ioctl(unsafe { File::from_raw(file) }, cmd, true))
    }

    /// # Safety
    ///
    /// LSM hook `path_mkdir`.
    pub unsafe fn path_mkdir<T: HasBlobSizes>(
        dir: *const bindings::path,
        dentry: *mut bindings::dentry,
        mode: bindings::umode_t,
    ) -> c_int {
        let mode = mode | bindings::S_IFDIR as bindings::umode_t;
        // SAFETY: the framework passes a valid path and dentry.
        ret(unsafe { T::path_create(Path::from_raw(dir), Dentry::from_raw(dentry), mode, 0) })
    }

    /// # Safety
    ///
    /// LSM hook `path_mknod`.
    pub unsafe fn path_mknod<T: HasBlobSizes>(
        dir: *const bindings::path,
        dentry: *mut bindings::dentry,
        mode: bindings::umode_t,
        dev: c_uint,
    ) -> c_int {
        // SAFETY: the framework passes a valid path and dentry.
        ret(unsafe { T::path_create(Path::from_raw(dir), Dentry::from_raw(dentry), mode, dev) })
    }

    /// # Safety
    ///
    /// LSM hook `path_symlink`.
    pub unsafe fn path_symlink<T: HasBlobSizes>(
        dir: *const bindings::path,
        dentry: *mut bindings::dentry,
        _old_name: *const c_char,
    ) -> c_int {
        let mode = bindings::S_IFLNK as bindings::umode_t;
        // SAFETY: the framework passes a valid path and dentry.
        ret(unsafe { T::path_create(Path::from_raw(dir), Dentry::from_raw(dentry), mode, 0) })
    }

    /// # Safety
    ///
    /// LSM hook `path_unlink`.
    pub unsafe fn path_unlink<T: HasBlobSizes>(
        dir: *const bindings::path,
        dentry: *mut bindings::dentry,
    ) -> c_int {
        // SAFETY: the framework passes a valid path and dentry.
        ret(unsafe { T::path_remove(Path::from_raw(dir), Dentry::from_raw(dentry), false) })
    }

    /// # Safety
    ///
    /// LSM hook `path_rmdir`.
    pub unsafe fn path_rmdir<T: HasBlobSizes>(
        dir: *const bindings::path,
        dentry: *mut bindings::dentry,
    ) -> c_int {
        // SAFETY: the framework passes a valid path and dentry.
        ret(unsafe { T::path_remove(Path::from_raw(dir), Dentry::from_raw(dentry), true) })
    }

    /// # Safety
    ///
    /// LSM hook `path_link`.
    pub unsafe fn path_link<T: HasBlobSizes>(
        old: *mut bindings::dentry,
        new_dir: *const bindings::path,
        new: *mut bindings::dentry,
    ) -> c_int {
        // SAFETY: the framework passes valid dentries and path.
        ret(unsafe {
            T::path_link(
                Dentry::from_raw(old),
                Path::from_raw(new_dir),
                Dentry::from_raw(new),
            )
        })
    }

    /// # Safety
    ///
    /// LSM hook `path_rename`.
    pub unsafe fn path_rename<T: HasBlobSizes>(
        old_dir: *const bindings::path,
        old: *mut bindings::dentry,
        new_dir: *const bindings::path,
        new: *mut bindings::dentry,
        flags: c_uint,
    ) -> c_int {
        // SAFETY: the framework passes valid dentries and paths.
        ret(unsafe {
            T::path_rename(
                Path::from_raw(old_dir),
                Dentry::from_raw(old),
                Path::from_raw(new_dir),
                Dentry::from_raw(new),
                flags,
            )
        })
    }

    /// # Safety
    ///
    /// LSM hook `path_truncate`.
    pub unsafe fn path_truncate<T: HasBlobSizes>(path: *const bindings::path) -> c_int {
        // SAFETY: the framework passes a valid path.
        ret(T::path_truncate(unsafe { Path::from_raw(path) }))
    }

    /// # Safety
    ///
    /// LSM hook `sb_mount`.
    pub unsafe fn sb_mount<T: HasBlobSizes>(
        _dev: *const c_char,
        path: *const bindings::path,
        _type: *const c_char,
        _flags: c_ulong,
        _data: *mut c_void,
    ) -> c_int {
        // SAFETY: the framework passes a valid path.
        ret(T::mount_change(MountTarget::Path(unsafe {
            Path::from_raw(path)
        })))
    }

    /// # Safety
    ///
    /// LSM hook `move_mount`.
    pub unsafe fn move_mount<T: HasBlobSizes>(
        _from: *const bindings::path,
        to: *const bindings::path,
    ) -> c_int {
        // SAFETY: the framework passes a valid path.
        ret(T::mount_change(MountTarget::Path(unsafe {
            Path::from_raw(to)
        })))
    }

    /// # Safety
    ///
    /// LSM hook `sb_umount`.
    pub unsafe fn sb_umount<T: HasBlobSizes>(mnt: *mut bindings::vfsmount, _flags: c_int) -> c_int {
        // SAFETY: the framework passes a valid mount, whose root dentry lives as long.
        ret(T::mount_change(MountTarget::Dentry(unsafe {
            Dentry::from_raw((*mnt).mnt_root)
        })))
    }

    /// # Safety
    ///
    /// LSM hook `sb_remount`.
    pub unsafe fn sb_remount<T: HasBlobSizes>(
        sb: *mut bindings::super_block,
        _opts: *mut c_void,
    ) -> c_int {
        // SAFETY: the framework passes a valid, mounted, superblock with a root dentry.
        ret(T::mount_change(MountTarget::Dentry(unsafe {
            Dentry::from_raw((*sb).s_root)
        })))
    }

    /// # Safety
    ///
    /// LSM hook `sb_pivotroot`.
    pub unsafe fn sb_pivotroot<T: HasBlobSizes>(
        _old: *const bindings::path,
        new: *const bindings::path,
    ) -> c_int {
        // SAFETY: the framework passes a valid path.
        ret(T::mount_change(MountTarget::Path(unsafe {
            Path::from_raw(new)
        })))
    }

    /// # Safety
    ///
    /// LSM hook `sb_delete`: `sb` is the superblock being shut down (`generic_shutdown_super`,
    /// in process context, `s_umount` held).
    pub unsafe fn sb_delete<T: HasBlobSizes>(sb: *mut bindings::super_block) {
        // SAFETY: the VFS passes the superblock it is shutting down, valid for the call.
        T::sb_delete(unsafe { SuperBlock::from_raw(sb) })
    }

    /// # Safety
    ///
    /// LSM hook `ptrace_access_check`.
    pub unsafe fn ptrace_access_check<T: HasBlobSizes>(
        child: *mut bindings::task_struct,
        mode: c_uint,
    ) -> c_int {
        /// `PTRACE_MODE_NOAUDIT`.
        const NOAUDIT: c_uint = 0x04;
        // SAFETY: the framework passes a valid task, `Task` is a transparent wrapper.
        ret(T::ptrace(
            unsafe { &*child.cast::<Task>() },
            true,
            mode & NOAUDIT == 0,
        ))
    }

    /// # Safety
    ///
    /// LSM hook `ptrace_traceme`.
    pub unsafe fn ptrace_traceme<T: HasBlobSizes>(parent: *mut bindings::task_struct) -> c_int {
        // SAFETY: the framework passes a valid task, `Task` is a transparent wrapper.
        ret(T::ptrace(unsafe { &*parent.cast::<Task>() }, false, true))
    }

    /// # Safety
    ///
    /// LSM hooks `socket_bind` and `socket_connect`: `addr` holds `len` bytes.
    pub unsafe fn socket_addr<T: HasBlobSizes>(
        sock: *mut bindings::socket,
        addr: *mut bindings::sockaddr,
        len: c_int,
        connect: bool,
    ) -> c_int {
        let len = usize::try_from(len).unwrap_or(0);
        let bytes = if addr.is_null() || len == 0 {
            &[][..]
        } else {
            // SAFETY: the socket layer copied `len` bytes of address into kernel memory.
            unsafe { core::slice::from_raw_parts(addr.cast::<u8>(), len) }
        };
        // SAFETY: the framework passes a valid socket, `Socket` is a transparent wrapper.
        ret(T::socket_addr(
            unsafe { &*sock.cast::<Socket>() },
            bytes,
            connect,
        ))
    }

    /// # Safety
    ///
    /// LSM hook `socket_sendmsg`: `msg` is a valid message whose `msg_name`, if not null,
    /// points to `msg_namelen` bytes of kernel memory.
    pub unsafe fn socket_sendmsg<T: HasBlobSizes>(
        sock: *mut bindings::socket,
        msg: *mut bindings::msghdr,
        _size: c_int,
    ) -> c_int {
        // SAFETY: the socket layer passes a valid message.
        let (name, namelen, flags) =
            unsafe { ((*msg).msg_name, (*msg).msg_namelen, (*msg).msg_flags) };
        // `sendmsg(2)` and `sendto(2)` copy at most a `struct sockaddr_storage`.
        let len = usize::try_from(namelen)
            .unwrap_or(0)
            .min(core::mem::size_of::<bindings::__kernel_sockaddr_storage>());
        let addr = if name.is_null() {
            None
        } else if len == 0 {
            Some(&[][..])
        } else {
            // SAFETY: `msg_name` holds `msg_namelen` bytes of kernel memory (clamped to the
            // size the socket layer copies).
            Some(unsafe { core::slice::from_raw_parts(name.cast::<u8>(), len) })
        };
        // SAFETY: the framework passes a valid socket, `Socket` is a transparent wrapper.
        ret(T::socket_sendmsg(
            unsafe { &*sock.cast::<Socket>() },
            addr,
            flags,
        ))
    }

    /// # Safety
    ///
    /// LSM hook `unix_find`: `path` is valid and the caller holds a reference to `other`.
    pub unsafe fn unix_find<T: HasBlobSizes>(
        path: *const bindings::path,
        other: *mut bindings::sock,
        flags: c_int,
    ) -> c_int {
        // SAFETY: `lsm_sock_coredump_flag` only reads a constant.
        let coredump = flags & unsafe { bindings::lsm_sock_coredump_flag() } != 0;
        // SAFETY: a valid path for the call; `FoundUnixSock` is a transparent wrapper of a
        // socket the caller keeps referenced for the call.
        unsafe {
            ret(T::unix_find(
                Path::from_raw(path),
                &*other.cast::<FoundUnixSock>(),
                coredump,
            ))
        }
    }

    /// # Safety
    ///
    /// LSM hook `unix_stream_connect`: `other` is locked by the caller.
    pub unsafe fn unix_stream_connect<T: HasBlobSizes>(
        _sock: *mut bindings::sock,
        other: *mut bindings::sock,
        _newsk: *mut bindings::sock,
    ) -> c_int {
        // SAFETY: `unix_stream_connect()` holds the state lock of `other`, a live socket.
        ret(T::unix_stream_connect(unsafe { UnixSock::from_raw(other) }))
    }

    /// # Safety
    ///
    /// LSM hook `unix_may_send`: `other`'s socket is locked by the caller.
    pub unsafe fn unix_may_send<T: HasBlobSizes>(
        sock: *mut bindings::socket,
        other: *mut bindings::socket,
    ) -> c_int {
        // SAFETY: the callers (`unix_dgram_connect()`, `unix_dgram_sendmsg()`) pass live
        // sockets and hold the state lock of `other`'s sock (and `sock`'s when reading its
        // peer matters: a stale peer only means a full check).
        unsafe {
            let connected = bindings::lsm_unix_peer_is(sock, other);
            ret(T::unix_may_send(UnixSock::from_raw((*other).sk), connected))
        }
    }

    /// # Safety
    ///
    /// LSM hook `task_kill`: `cred` is null or valid credentials.
    pub unsafe fn task_kill<T: HasBlobSizes>(
        p: *mut bindings::task_struct,
        _info: *mut c_void,
        sig: c_int,
        cred: *const bindings::cred,
    ) -> c_int {
        // SAFETY: the framework passes a valid task (`Task` is a transparent wrapper) and
        // null or valid credentials, both live for the call.
        unsafe {
            let sender = if cred.is_null() {
                None
            } else {
                Some(Cred::from_raw(cred))
            };
            ret(T::task_kill(&*p.cast::<Task>(), sig, sender))
        }
    }

    /// Releases what a [`FileOwner`] holds.
    ///
    /// # Safety
    ///
    /// The pointers come from a `FileOwner` that no longer holds them.
    unsafe fn release_owner<T: HasBlobSizes>(cred: *const T::Cred, tgid: *mut bindings::pid) {
        if !cred.is_null() {
            // SAFETY: the pointer came from `Arc::into_raw` (caller).
            drop(unsafe { Arc::from_raw(cred) });
        }
        // Most files never had an owner: no call for them.
        if !tgid.is_null() {
            // SAFETY: a referenced pid (caller).
            unsafe { bindings::lsm_put_pid(tgid) };
        }
    }

    /// # Safety
    ///
    /// LSM hook `file_set_fowner`: called with the file's `f_owner->lock` held for writing.
    pub unsafe fn file_set_fowner<T: HasBlobSizes>(file: *mut bindings::file) {
        // SAFETY: the framework passes a live file whose owner is allocated and locked.
        let other = unsafe { bindings::lsm_fown_is_other_process(file) };
        let (cred, data, tgid) = match T::file_set_fowner(other) {
            Some((c, data)) => {
                // SAFETY: FFI call on the current task.
                let tgid = unsafe { bindings::lsm_get_current_tgid() };
                (Arc::into_raw(c), data, tgid)
            }
            None => (ptr::null(), 0, ptr::null_mut()),
        };
        // SAFETY: a live file (see above).
        let slot = unsafe { File::from_raw(file) }.owner_slot::<T>();
        // SAFETY: the owner lock, held for writing, serialises the slot's writers (here) and
        // readers (`file_send_sigiotask`); `file_free_security` runs when neither can.
        let old = unsafe { ptr::replace(slot, FileOwner { cred, data, tgid }) };
        // SAFETY: `old` was the slot's, now replaced.
        unsafe { release_owner::<T>(old.cred, old.tgid) };
    }

    /// # Safety
    ///
    /// LSM hook `file_send_sigiotask`: called with `fown->lock` held for reading.
    pub unsafe fn file_send_sigiotask<T: HasBlobSizes>(
        tsk: *mut bindings::task_struct,
        fown: *mut bindings::fown_struct,
        _sig: c_int,
    ) -> c_int {
        // SAFETY: `fown` is the owner of a live file (`fown->file`), locked for reading, so
        // the slot's writer cannot run; the task is valid for the call.
        unsafe {
            let file = File::from_raw(bindings::lsm_fown_file(fown));
            let owner = ptr::read(file.owner_slot::<T>());
            if owner.cred.is_null() {
                return 0;
            }
            let same = bindings::lsm_task_tgid(tsk) == owner.tgid;
            let cred = ArcBorrow::<T::Cred>::from_raw(owner.cred);
            ret(T::file_send_sigiotask(
                &*tsk.cast::<Task>(),
                &cred,
                owner.data,
                same,
            ))
        }
    }

    /// # Safety
    ///
    /// LSM hook `file_free_security`: the file is being freed.
    pub unsafe fn file_free_security<T: HasBlobSizes>(file: *mut bindings::file) {
        // SAFETY: the file is no longer used by anybody else.
        let slot = unsafe { File::from_raw(file) }.owner_slot::<T>();
        // SAFETY: as above.
        let old = unsafe {
            ptr::replace(
                slot,
                FileOwner {
                    cred: ptr::null(),
                    data: 0,
                    tgid: ptr::null_mut(),
                },
            )
        };
        // SAFETY: `old` was the slot's, now emptied.
        unsafe { release_owner::<T>(old.cred, old.tgid) };
    }

    /// # Safety
    ///
    /// LSM hook `socket_bind`.
    pub unsafe fn socket_bind<T: HasBlobSizes>(
        sock: *mut bindings::socket,
        addr: *mut bindings::sockaddr,
        len: c_int,
    ) -> c_int {
        // SAFETY: as for `socket_addr`.
        unsafe { socket_addr::<T>(sock, addr, len, false) }
    }

    /// # Safety
    ///
    /// LSM hook `socket_connect`.
    pub unsafe fn socket_connect<T: HasBlobSizes>(
        sock: *mut bindings::socket,
        addr: *mut bindings::sockaddr,
        len: c_int,
    ) -> c_int {
        // SAFETY: as for `socket_addr`.
        unsafe { socket_addr::<T>(sock, addr, len, true) }
    }
}

/// Defines a Rust LSM's C-callable symbols: its blob sizes (for `DEFINE_LSM`'s `.blobs`),
/// its init function, the hook functions its C hook list names (`symbol => hook`, `hook`
/// being a function of [`tramp`]), and other entry points (system calls) as plain
/// `extern "C"` functions calling safe Rust ones.
///
/// ```ignore
/// kernel::define_lsm! {
///     lsm: MyLsm,
///     blob_sizes: my_lsm_blob_sizes,
///     init: my_lsm_init,
///     hooks: { my_lsm_file_open => file_open(file: *mut bindings::file) -> c_int },
///     entries: { fn my_lsm_sys(a: usize) -> isize = crate::sys; },
/// }
/// ```
#[macro_export]
macro_rules! define_lsm {
    (
        lsm: $lsm:ty,
        blob_sizes: $blobs:ident,
        init: $init:ident,
        hooks: { $($sym:ident => $hook:ident($($arg:ident: $argty:ty),* $(,)?) $(-> $ret:ty)?),* $(,)? },
        entries: { $(fn $esym:ident($($earg:ident: $ety:ty),* $(,)?) -> $eret:ty = $target:path;)* } $(,)?
    ) => {
        /// The LSM's blob sizes (offsets after boot), for `DEFINE_LSM`.
        #[no_mangle]
        #[allow(non_upper_case_globals)]
        pub static $blobs: $crate::lsm::BlobSizes = $crate::lsm::BlobSizes::new::<$lsm>();

        impl $crate::lsm::HasBlobSizes for $lsm {
            fn blob_sizes() -> &'static $crate::lsm::BlobSizes {
                &$blobs
            }
        }

        /// The LSM's init, called by the C `DEFINE_LSM` init after the hooks are added.
        #[no_mangle]
        pub extern "C" fn $init() -> $crate::ffi::c_int {
            // SAFETY: called once by the LSM framework at boot, after the blob offsets are set.
            unsafe { $crate::lsm::tramp::init::<$lsm>() }
        }

        $(
            /// An LSM hook, named by the C hook list.
            #[no_mangle]
            pub unsafe extern "C" fn $sym($($arg: $argty),*) $(-> $ret)? {
                // SAFETY: called by the LSM framework with the hook's arguments.
                unsafe { $crate::lsm::tramp::$hook::<$lsm>($($arg),*) }
            }
        )*

        $(
            /// An entry point called from C.
            #[no_mangle]
            pub extern "C" fn $esym($($earg: $ety),*) -> $eret {
                $target($($earg),*)
            }
        )*
    };
}
