// SPDX-License-Identifier: GPL-2.0

//! The LSM hooks: what a Landlock domain denies.

use crate::engine::{self, Domain, Errno, FsCheck, NetOp};
use crate::Landlock;
use core::ops::ControlFlow;
use core::sync::atomic::Ordering;
use kernel::{
    lsm::{
        self, Cred, CredRef, CurrentCred, Dentry, File, FoundUnixSock, Path, Socket, UnixSock,
        WalkEnd,
    },
    prelude::*,
    sync::Arc,
    task::Task,
};

/// `__FMODE_EXEC` in `f_flags`: the file is opened for `execve(2)`.
const FMODE_EXEC_FLAG: u32 = 0x20;

fn to_err(e: Errno) -> Error {
    Error::from_errno(-e.0)
}

/// Feeds the inodes of a walk from `path` to `check` until everything is granted; returns the
/// rights still denied.
fn walk_check(mut check: FsCheck<'_>, path: &Path) -> u64 {
    let end = path.walk_up(|inode| {
        let id = inode.blob::<Landlock>().load(Ordering::Acquire);
        if id != 0 && check.visit(id) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    match end {
        WalkEnd::Stopped | WalkEnd::Internal => 0,
        WalkEnd::Root | WalkEnd::Disconnected => check.denied(),
    }
}

/// Whether `path` is exempt from filesystem checks: internal (private) inodes and
/// filesystems user space cannot mount are not restricted.
fn is_nouser_or_private(path: &Path) -> bool {
    let dentry = path.dentry();
    dentry.sb_nouser() || dentry.inode().is_some_and(|i| i.is_private())
}

/// The rights of `request` that `domain` denies on `path`.
fn denied_on_path(domain: &Domain, path: &Path, request: u64) -> u64 {
    if is_nouser_or_private(path) {
        return 0;
    }
    match domain.fs_check(request) {
        Some(check) => walk_check(check, path),
        None => 0,
    }
}

/// Checks `request` on `path` for the current task.
fn check_current_path(path: &Path, request: u64) -> Result {
    let cred = CurrentCred::<Landlock>::get();
    let c = cred.cred();
    let Some(domain) = c.get() else {
        return Ok(());
    };
    if domain.handled_fs() == 0 {
        return Ok(());
    }
    if denied_on_path(&domain, path, request) != 0 {
        Err(EACCES)
    } else {
        Ok(())
    }
}

fn mode_of(d: &Dentry) -> Option<u32> {
    d.inode().map(|i| u32::from(i.mode()))
}

/// The right needed to create (link, move) the existing file `d`: a whiteout is a character
/// device 0/0 and needs `MAKE_REG` (erratum 4).
fn make_access_of(d: &Dentry) -> Option<u64> {
    d.inode()
        .map(|i| engine::make_access(u32::from(i.mode()), i.rdev()))
}

/// A walk of every right from a rename's or link's source directory (`None`: from `dir`).
fn full_check<'a>(domain: &'a Domain, dir: &Path, child: Option<&Dentry>) -> Option<FsCheck<'a>> {
    let mut check = domain.fs_check(engine::FS_MASK)?;
    let visit = |inode: &lsm::Inode| {
        let id = inode.blob::<Landlock>().load(Ordering::Acquire);
        if id != 0 {
            check.visit(id);
        }
        ControlFlow::Continue(())
    };
    let end = match child {
        Some(c) => dir.walk_up_from_parent_of(c, visit),
        None => dir.walk_up(visit),
    };
    if end == WalkEnd::Internal {
        return None;
    }
    Some(check)
}

/// Link (`removable == false`) or rename of `old` into `new_dir` as `new`; `whiteout` when a
/// whiteout is left in place of `old` (`RENAME_WHITEOUT`).
fn check_refer(
    old: &Dentry,
    new_dir: &Path,
    new: &Dentry,
    removable: bool,
    exchange: bool,
    whiteout: bool,
) -> Result {
    let cred = CurrentCred::<Landlock>::get();
    let c = cred.cred();
    let Some(domain) = c.get() else {
        return Ok(());
    };
    if domain.handled_fs() == 0 {
        return Ok(());
    }
    let old_mode = mode_of(old).ok_or(ENOENT)?;
    let new_mode = mode_of(new);
    // Rights needed in the source directory and in the destination one.
    let mut src = 0;
    if exchange {
        src |= make_access_of(new).ok_or(ENOENT)?;
    }
    let mut dst = make_access_of(old).ok_or(ENOENT)?;
    if whiteout {
        // A whiteout (a character device 0/0) is created in the source directory.
        src |= engine::make_access(0o020000, 0);
    }
    if removable {
        src |= engine::remove_access(old_mode);
        if let Some(m) = new_mode {
            dst |= engine::remove_access(m);
        }
    }
    if old.same_parent_dir(new_dir.dentry()) {
        // No reparenting: `REFER` is not needed.
        return if denied_on_path(&domain, new_dir, src | dst) != 0 {
            Err(EACCES)
        } else {
            Ok(())
        };
    }
    let (Some(s), Some(d)) = (
        full_check(&domain, new_dir, Some(old)),
        full_check(&domain, new_dir, None),
    ) else {
        return Ok(());
    };
    let rights_of = |mode: u32| {
        if mode & 0o170000 == 0o040000 {
            engine::FS_MASK
        } else {
            engine::FS_FILE
        }
    };
    engine::reparent_decision(
        &s,
        src | engine::FS_REFER,
        &d,
        dst | engine::FS_REFER,
        rights_of(old_mode),
    )
    .map_err(to_err)?;
    if exchange {
        if let Some(m) = new_mode {
            engine::reparent_decision(
                &d,
                dst | engine::FS_REFER,
                &s,
                src | engine::FS_REFER,
                rights_of(m),
            )
            .map_err(to_err)?;
        }
    }
    Ok(())
}

/// Whether the abstract UNIX socket scope denies the current task to reach `other`: only
/// abstract sockets are scoped, and kernel sockets (without a file) are not.
fn unix_scope_check(other: &UnixSock) -> Result {
    let cred = CurrentCred::<Landlock>::get();
    let c = cred.cred();
    let Some(domain) = c.get() else {
        return Ok(());
    };
    if !domain.handles_scope(engine::SCOPE_ABSTRACT_UNIX_SOCKET) || !other.is_abstract() {
        return Ok(());
    }
    let Some(peer) = other.file_cred::<Landlock>() else {
        return Ok(());
    };
    let peer_domain = peer.get();
    if domain.scope_denies(peer_domain.as_deref(), engine::SCOPE_ABSTRACT_UNIX_SOCKET) {
        Err(EPERM)
    } else {
        Ok(())
    }
}

/// `unix_find`: may the current task reach the named UNIX socket `other` found at `path`?
/// `FS_RESOLVE_UNIX` is granted by the layers the socket's creator shares with the task
/// (like a scope), then by the rules on the way up from `path`.
fn unix_find_check(path: &Path, other: &FoundUnixSock) -> Result {
    let cred = CurrentCred::<Landlock>::get();
    let c = cred.cred();
    let Some(domain) = c.get() else {
        return Ok(());
    };
    if domain.handled_fs() & engine::FS_RESOLVE_UNIX == 0 {
        return Ok(());
    }
    let Some(mut check) = domain.fs_check(engine::FS_RESOLVE_UNIX) else {
        return Ok(());
    };
    let peer_known = other.with_locked(|sk| {
        if let Some(peer) = sk.file_cred::<Landlock>() {
            check.unmask_scoped(peer.get().as_deref());
        }
    });
    // A dead socket: the caller retries the lookup, which must not fail here.
    if peer_known.is_none() || check.done() || is_nouser_or_private(path) {
        return Ok(());
    }
    if walk_check(check, path) != 0 {
        Err(EACCES)
    } else {
        Ok(())
    }
}

/// Checks the access `request` (one `NET_*` right) of `op` to `addr` on `sock`.
fn check_socket(domain: &Domain, sock: &Socket, addr: &[u8], request: u64, op: NetOp) -> Result {
    if domain.handled_net() & request == 0 {
        return Ok(());
    }
    match engine::inet_port_of(addr, sock.family(), op).map_err(to_err)? {
        None => Ok(()),
        Some(port) => domain.net_check(request, port).map_err(to_err),
    }
}

/// A UDP socket without a local port gets an ephemeral one when it connects or sends: that
/// needs `NET_BIND_UDP` on port 0, as an explicit `bind(2)` to port 0 would.
fn check_udp_autobind(domain: &Domain, sock: &Socket) -> Result {
    if domain.handled_net() & engine::NET_BIND_UDP == 0 || sock.inet_is_bound() {
        return Ok(());
    }
    domain.net_check(engine::NET_BIND_UDP, 0).map_err(to_err)
}

/// Whether the signal scope of `sender` denies a signal to `target`.
fn signal_scope_check(sender: &CredRef<'_, Landlock>, target: &Task) -> Result {
    let Some(domain) = sender.get() else {
        return Ok(());
    };
    if !domain.handles_scope(engine::SCOPE_SIGNAL) {
        return Ok(());
    }
    signal_scope_of(&domain, target)
}

/// Whether `domain` (which handles the signal scope) may signal `target`.
fn signal_scope_of(domain: &Domain, target: &Task) -> Result {
    let theirs = lsm::task_cred::<Landlock>(target);
    let t = theirs.cred();
    let target_domain = t.get();
    if domain.scope_denies(target_domain.as_deref(), engine::SCOPE_SIGNAL) {
        Err(EPERM)
    } else {
        Ok(())
    }
}

/// `MSG_FASTOPEN`: `sendmsg(2)` connects a TCP socket (TCP Fast Open).
const MSG_FASTOPEN: u32 = 0x2000_0000;

/// `RENAME_EXCHANGE`.
const RENAME_EXCHANGE: u32 = 1 << 1;
/// `RENAME_WHITEOUT`.
const RENAME_WHITEOUT: u32 = 1 << 2;

impl lsm::Hooks for Landlock {
    type Cred = Domain;
    type Inode = core::sync::atomic::AtomicU64;
    type File = core::sync::atomic::AtomicU64;

    fn init() -> Result {
        crate::INITIALIZED.store(true, Ordering::Release);
        pr_info!(
            "Up and running (Rust implementation, ABI {}).\n",
            engine::ABI_VERSION
        );
        Ok(())
    }

    fn file_open(file: &File) -> Result {
        let cred = file.cred::<Landlock>();
        let Some(domain) = cred.get() else {
            return Ok(());
        };
        if domain.handled_fs() == 0 {
            return Ok(());
        }
        let path = file.path();
        let Some(inode) = path.dentry().inode() else {
            return Ok(());
        };
        let mode = file.mode();
        let open = engine::open_access(
            mode & lsm::FMODE_READ != 0,
            mode & lsm::FMODE_WRITE != 0,
            file.flags() & FMODE_EXEC_FLAG != 0,
            inode.is_dir(),
        );
        // Rights checked later on the opened file: looked up now.
        let mut optional = engine::FS_TRUNCATE;
        if inode.is_device() {
            optional |= engine::FS_IOCTL_DEV;
        }
        let denied = denied_on_path(&domain, path, open | optional);
        file.blob::<Landlock>()
            .store(denied & optional, Ordering::Release);
        if denied & open != 0 {
            Err(EACCES)
        } else {
            Ok(())
        }
    }

    fn file_truncate(file: &File) -> Result {
        if file.blob::<Landlock>().load(Ordering::Acquire) & engine::FS_TRUNCATE != 0 {
            Err(EACCES)
        } else {
            Ok(())
        }
    }

    fn file_ioctl(file: &File, cmd: u32, compat: bool) -> Result {
        if file.blob::<Landlock>().load(Ordering::Acquire) & engine::FS_IOCTL_DEV == 0 {
            return Ok(());
        }
        if engine::ioctl_always_allowed(cmd, compat) {
            return Ok(());
        }
        Err(EACCES)
    }

    fn path_create(dir: &Path, _dentry: &Dentry, mode: u16, dev: u32) -> Result {
        check_current_path(dir, engine::make_access(u32::from(mode), dev))
    }

    fn path_remove(dir: &Path, _dentry: &Dentry, is_dir: bool) -> Result {
        let access = if is_dir {
            engine::FS_REMOVE_DIR
        } else {
            engine::FS_REMOVE_FILE
        };
        check_current_path(dir, access)
    }

    fn path_link(old: &Dentry, new_dir: &Path, new_dentry: &Dentry) -> Result {
        check_refer(old, new_dir, new_dentry, false, false, false)
    }

    fn path_rename(
        _old_dir: &Path,
        old_dentry: &Dentry,
        new_dir: &Path,
        new_dentry: &Dentry,
        flags: u32,
    ) -> Result {
        check_refer(
            old_dentry,
            new_dir,
            new_dentry,
            true,
            flags & RENAME_EXCHANGE != 0,
            flags & RENAME_WHITEOUT != 0,
        )
    }

    fn path_truncate(path: &Path) -> Result {
        check_current_path(path, engine::FS_TRUNCATE)
    }

    fn mount_change() -> Result {
        let cred = CurrentCred::<Landlock>::get();
        let c = cred.cred();
        match c.get() {
            Some(d) if d.handled_fs() != 0 => Err(EPERM),
            _ => Ok(()),
        }
    }

    fn ptrace(other: &Task, tracer_is_current: bool) -> Result {
        let cur = CurrentCred::<Landlock>::get();
        let oth = lsm::task_cred::<Landlock>(other);
        let (cur, oth) = (cur.cred(), oth.cred());
        let (tracer, tracee) = if tracer_is_current {
            (cur.get(), oth.get())
        } else {
            (oth.get(), cur.get())
        };
        match (tracer, tracee) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(EPERM),
            (Some(t), Some(e)) if t.is_ancestor_of(&e) => Ok(()),
            _ => Err(EPERM),
        }
    }

    fn unix_stream_connect(other: &UnixSock) -> Result {
        unix_scope_check(other)
    }

    fn unix_may_send(other: &UnixSock, connected_to_it: bool) -> Result {
        // A datagram socket already connected to `other` was checked when connecting.
        if connected_to_it {
            return Ok(());
        }
        unix_scope_check(other)
    }

    fn task_kill(target: &Task, _sig: i32, sender: Option<&Cred>) -> Result {
        match sender {
            Some(cred) => signal_scope_check(&cred.lsm::<Landlock>(), target),
            None => {
                // Threads of a process may always signal each other (erratum 2).
                if lsm::same_process_as_current(target) {
                    return Ok(());
                }
                let cred = CurrentCred::<Landlock>::get();
                signal_scope_check(&cred.cred(), target)
            }
        }
    }

    fn file_set_fowner(owner_is_other_process: bool) -> Option<Arc<Domain>> {
        // An owner in the current process needs no check when it gets SIGIO (erratum 2).
        if !owner_is_other_process {
            return None;
        }
        let cred = CurrentCred::<Landlock>::get();
        let c = cred.cred();
        let domain = c.get()?;
        if domain.handles_scope(engine::SCOPE_SIGNAL) {
            Some(Arc::from(domain))
        } else {
            None
        }
    }

    fn file_send_sigiotask(target: &Task, owner: &Domain, owner_process: bool) -> Result {
        // The process that set itself as the owner, even through a process group.
        if owner_process {
            return Ok(());
        }
        signal_scope_of(owner, target)
    }

    fn socket_addr(sock: &Socket, addr: &[u8], connect: bool) -> Result {
        let (request, op) = match (sock.is_tcp(), connect) {
            (true, false) => (engine::NET_BIND_TCP, NetOp::Bind),
            (true, true) => (engine::NET_CONNECT_TCP, NetOp::Connect),
            (false, false) if sock.is_udp() => (engine::NET_BIND_UDP, NetOp::Bind),
            (false, true) if sock.is_udp() => (engine::NET_CONNECT_SEND_UDP, NetOp::Connect),
            _ => return Ok(()),
        };
        let cred = CurrentCred::<Landlock>::get();
        let c = cred.cred();
        let Some(domain) = c.get() else {
            return Ok(());
        };
        if domain.handled_net() == 0 {
            return Ok(());
        }
        check_socket(&domain, sock, addr, request, op)?;
        // Connecting a UDP socket may bind it, but not with `AF_UNSPEC` (disconnection).
        let unspec = addr.get(0..2).is_none_or(|f| f == [0, 0]);
        if request == engine::NET_CONNECT_SEND_UDP && !unspec {
            check_udp_autobind(&domain, sock)?;
        }
        Ok(())
    }

    fn socket_sendmsg(sock: &Socket, addr: Option<&[u8]>, flags: u32) -> Result {
        let cred = CurrentCred::<Landlock>::get();
        let c = cred.cred();
        let Some(domain) = c.get() else {
            return Ok(());
        };
        if domain.handled_net() == 0 {
            return Ok(());
        }
        if sock.is_tcp() {
            // TCP Fast Open connects to the address given with the data.
            if let (Some(a), true) = (addr, flags & MSG_FASTOPEN != 0) {
                check_socket(&domain, sock, a, engine::NET_CONNECT_TCP, NetOp::Connect)?;
            }
            return Ok(());
        }
        if !sock.is_udp() {
            return Ok(());
        }
        if let Some(a) = addr {
            check_socket(&domain, sock, a, engine::NET_CONNECT_SEND_UDP, NetOp::Send)?;
        }
        check_udp_autobind(&domain, sock)
    }

    fn unix_find(path: &Path, other: &FoundUnixSock, coredump: bool) -> Result {
        // The kernel's own lookup to save a core dump is not the task's.
        if coredump {
            return Ok(());
        }
        unix_find_check(path, other)
    }
}
