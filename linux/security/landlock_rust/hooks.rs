// SPDX-License-Identifier: GPL-2.0

//! The LSM hooks: what a Landlock domain denies.

use crate::engine::{self, Blocker, CredLog, Errno, FsCheck, NetOp};
use crate::log::{self, Domain, TraceInfo};
use crate::Landlock;
use core::ops::ControlFlow;
use core::sync::atomic::Ordering;
use kernel::{
    lsm::{
        self,
        audit::{Data, Net, NetAddr},
        trace, Cred, CredRef, CurrentCred, Dentry, File, FoundUnixSock, Inode, MountTarget, Path,
        Socket, SuperBlock, UnixSock, WalkEnd,
    },
    prelude::*,
    sync::Arc,
    task::Task,
};

/// The logging state of credentials.
fn cred_log(c: &CredRef<'_, Landlock>) -> CredLog {
    CredLog::from_word(c.word())
}

/// `__FMODE_EXEC` in `f_flags`: the file is opened for `execve(2)`.
const FMODE_EXEC_FLAG: u32 = 0x20;

fn to_err(e: Errno) -> Error {
    Error::from_errno(-e.0)
}

/// Emits `landlock_check_rule_inode` if the checked domain has a rule on `inode` (whose id is
/// `id`), as C does for each rule its walks meet.
fn trace_rule(check: &FsCheck<'_>, id: u64, inode: &Inode) {
    let domain = check.domain();
    if let Some(grants) = check.rule_grants(id) {
        let grants = grants.get(..domain.num_layers()).unwrap_or(&[]);
        trace::check_rule_inode(domain.id(), check.request(), inode, grants);
    }
}

/// What a walk does with each inode: the rule on it (if any) goes to `check` (and to the
/// `check_rule_inode` trace event when it is on); the walk stops once everything is granted.
fn visitor<'c, 'a>(
    check: &'c mut FsCheck<'a>,
) -> impl FnMut(&Inode) -> ControlFlow<()> + use<'c, 'a> {
    let tracing = trace::check_rule_inode_enabled();
    move |inode| {
        let id = inode.blob::<Landlock>().load(Ordering::Acquire);
        if id != 0 && tracing {
            trace_rule(check, id, inode);
        }
        if id != 0 && check.visit(id) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Feeds the inodes of a walk from `path` to `check` until everything is granted. The check
/// is updated in place: it is too large to move cheaply on every open.
fn walk_check(check: &mut FsCheck<'_>, path: &Path) {
    let end = path.walk_up(visitor(check));
    if end == WalkEnd::Internal {
        check.grant_all();
    }
}

/// Whether `path` is exempt from filesystem checks: internal (private) inodes and
/// filesystems user space cannot mount are not restricted.
fn is_nouser_or_private(path: &Path) -> bool {
    let dentry = path.dentry();
    dentry.sb_nouser() || dentry.inode().is_some_and(|i| i.is_private())
}

/// The check of `request` by `domain` on `path` once walked: nothing of it is denied when
/// [`FsCheck::denied`] is empty. Internal (private) inodes and filesystems user space cannot
/// mount are not restricted. Always inlined, and no `Option` around the check: it then stays
/// where the caller has it, not copied on every open (it is 150 bytes).
#[inline(always)]
fn check_path<'a>(domain: &'a Domain, path: &Path, request: u64) -> FsCheck<'a> {
    let mut check = FsCheck::new(domain, request);
    if !check.done() {
        if is_nouser_or_private(path) {
            check.grant_all();
        } else {
            walk_check(&mut check, path);
        }
    }
    check
}

/// Logs the denial of `request` on `path` by a finished check.
fn log_fs_denial(domain: &Domain, log: CredLog, check: &FsCheck<'_>, request: u64, data: Data<'_>) {
    let (layer, missing) = check.denied_layer(request);
    log::denial(
        domain,
        log,
        layer,
        Blocker::Fs(missing),
        check.quiet_layer(layer),
        data,
        TraceInfo::None,
    );
}

/// Checks `request` on `path` for `domain`: `EACCES`, logged, if some of it is denied.
fn deny_on_path(domain: &Domain, log: CredLog, path: &Path, request: u64) -> Result {
    let check = check_path(domain, path, request);
    if check.denied() == 0 {
        return Ok(());
    }
    log_fs_denial(domain, log, &check, request, Data::Path(path));
    Err(EACCES)
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
    deny_on_path(&domain, cred_log(&c), path, request)
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

/// The object id of the inode of `d`, 0 for none (no rule, or a negative dentry).
fn object_id(d: &Dentry) -> u64 {
    d.inode()
        .map_or(0, |i| i.blob::<Landlock>().load(Ordering::Acquire))
}

/// A check of every handled right from `dir` up to the root of its mount (C's
/// `collect_domain_accesses`); everything is granted on objects Landlock does not restrict.
fn mount_check<'a>(domain: &'a Domain, dir: &Path) -> Option<FsCheck<'a>> {
    let mut check = domain.fs_check(engine::FS_MASK)?;
    if is_nouser_or_private(dir) {
        check.grant_all();
        return Some(check);
    }
    dir.walk_in_mount(visitor(&mut check));
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
        return deny_on_path(&domain, cred_log(&c), new_dir, src | dst);
    }
    // Both parents, up to the root of their common mount.
    let (Some(s), Some(d)) = (
        new_dir.with_parent_of(old, |p| mount_check(&domain, p)),
        mount_check(&domain, new_dir),
    ) else {
        return Ok(());
    };
    if s.done() && d.done() {
        return Ok(());
    }
    let is_dir = |mode: u32| mode & 0o170000 == 0o040000;
    let mut refer = engine::Refer::new(
        s,
        d,
        (object_id(old), is_dir(old_mode)),
        exchange.then(|| (object_id(new), new_mode.is_some_and(is_dir))),
        src | engine::FS_REFER,
        dst | engine::FS_REFER,
    );
    // Then, for both, from the mount's root up.
    new_dir.with_mount_root(|root| {
        if is_nouser_or_private(root) {
            refer.grant_all();
            return;
        }
        let end = root.walk_up(|inode| {
            let id = inode.blob::<Landlock>().load(Ordering::Acquire);
            if refer.visit(id) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        if end == WalkEnd::Internal {
            refer.grant_all();
        }
    });
    let r = refer.result();
    if r.is_err() {
        // Each side that did not grant everything is logged, at its directory, with the
        // rights it was asked, or every handled right if the walk never found the move
        // harmless (C's records).
        let log = cred_log(&c);
        if let Some((check, request)) = refer.denial(false) {
            new_dir.with_parent_of(old, |p| {
                log_fs_denial(&domain, log, check, request, Data::Path(p))
            });
        }
        if let Some((check, request)) = refer.denial(true) {
            log_fs_denial(&domain, log, check, request, Data::Path(new_dir));
        }
    }
    r.map_err(to_err)
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
    let scope = engine::SCOPE_ABSTRACT_UNIX_SOCKET;
    if domain.scope_denies(peer_domain.as_deref().map(Domain::policy), scope) {
        let layer = domain.youngest_scope_layer(scope).unwrap_or(0);
        log::denial(
            &domain,
            cred_log(&c),
            layer,
            Blocker::ScopeAbstractUnix,
            false,
            Data::Net(Net::unix(other)),
            TraceInfo::Peer(log::id_of(peer_domain.as_deref()), other),
        );
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
            check.unmask_scoped(peer.get().as_deref().map(Domain::policy));
        }
    });
    // A dead socket: the caller retries the lookup, which must not fail here.
    if peer_known.is_none() || check.done() || is_nouser_or_private(path) {
        return Ok(());
    }
    walk_check(&mut check, path);
    if check.denied() == 0 {
        return Ok(());
    }
    let request = engine::FS_RESOLVE_UNIX;
    log_fs_denial(&domain, cred_log(&c), &check, request, Data::Path(path));
    Err(EACCES)
}

/// Logs a network denial: the socket, and the address as given (network byte order) as
/// the source (`bind`) or the destination (`connect`, `sendmsg`), as C logs it.
#[allow(clippy::too_many_arguments)]
fn log_net_denial(
    domain: &Domain,
    log: CredLog,
    sock: &Socket,
    (addr, port): (Option<&[u8]>, u16),
    request: u64,
    layer: usize,
    quiet: bool,
    op: NetOp,
) {
    let addr = addr.unwrap_or(&[]);
    let family = addr
        .get(0..2)
        .map_or(sock.family(), |f| u16::from_ne_bytes([f[0], f[1]]));
    let port_be = addr
        .get(2..4)
        .map_or(0, |p| u16::from_ne_bytes([p[0], p[1]]));
    let ip = match family {
        engine::AF_INET6 => addr
            .get(8..24)
            .and_then(|a| <[u8; 16]>::try_from(a).ok())
            .map_or(NetAddr::None, NetAddr::V6),
        _ => addr
            .get(4..8)
            .and_then(|a| <[u8; 4]>::try_from(a).ok())
            .map_or(NetAddr::None, NetAddr::V4),
    };
    let net = Net::socket(sock, family);
    let net = match op {
        NetOp::Bind => net.source(port_be, ip),
        _ => net.dest(port_be, ip),
    };
    log::denial(
        domain,
        log,
        layer,
        Blocker::Net(request),
        quiet,
        Data::Net(net),
        TraceInfo::Port(Some(port)),
    );
}

/// Emits `landlock_check_rule_net_port` if `domain` has a rule on `port` (checked for
/// `request`).
fn trace_net_rule(domain: &Domain, request: u64, port: u16) {
    if !trace::check_rule_net_port_enabled() {
        return;
    }
    if let Some(grants) = domain.net_rule_grants(port, request) {
        let grants = grants.get(..domain.num_layers()).unwrap_or(&[]);
        trace::check_rule_net_port(domain.id(), request, u64::from(port), grants);
    }
}

/// Checks the access `request` (one `NET_*` right) of `op` to `addr` on `sock`.
fn check_socket(
    domain: &Domain,
    log: CredLog,
    sock: &Socket,
    addr: &[u8],
    request: u64,
    op: NetOp,
) -> Result {
    if domain.handled_net() & request == 0 {
        return Ok(());
    }
    let port = match engine::inet_port_of(addr, sock.family(), op) {
        Ok(Some(port)) => port,
        Ok(None) => return Ok(()),
        Err(e) if e == engine::EACCES => {
            // A datagram to `AF_UNSPEC` on an IPv6 socket: denied without a port, and logged
            // for the youngest layer handling the right, with no address (as C).
            if let Some(layer) = domain.youngest_net_layer(request) {
                let net = Net::socket(sock, engine::AF_UNSPEC).dest(0, NetAddr::None);
                log::denial(
                    domain,
                    log,
                    layer,
                    Blocker::Net(request),
                    false,
                    Data::Net(net),
                    TraceInfo::Port(None),
                );
            }
            return Err(EACCES);
        }
        Err(e) => return Err(to_err(e)),
    };
    trace_net_rule(domain, request, port);
    let Some((layer, quiet)) = domain.net_denied_quiet(request, port) else {
        return Ok(());
    };
    log_net_denial(
        domain,
        log,
        sock,
        (Some(addr), port),
        request,
        layer,
        quiet,
        op,
    );
    Err(EACCES)
}

/// A UDP socket without a local port gets an ephemeral one when it connects or sends: that
/// needs `NET_BIND_UDP` on port 0, as an explicit `bind(2)` to port 0 would.
fn check_udp_autobind(domain: &Domain, log: CredLog, sock: &Socket) -> Result {
    if domain.handled_net() & engine::NET_BIND_UDP == 0 || sock.inet_is_bound() {
        return Ok(());
    }
    trace_net_rule(domain, engine::NET_BIND_UDP, 0);
    let Some((layer, quiet)) = domain.net_denied_quiet(engine::NET_BIND_UDP, 0) else {
        return Ok(());
    };
    log_net_denial(
        domain,
        log,
        sock,
        (None, 0),
        engine::NET_BIND_UDP,
        layer,
        quiet,
        NetOp::Bind,
    );
    Err(EACCES)
}

/// Whether the signal scope of `sender` denies a signal to `target`.
fn signal_scope_check(sender: &CredRef<'_, Landlock>, target: &Task) -> Result {
    let Some(domain) = sender.get() else {
        return Ok(());
    };
    let Some(layer) = domain.youngest_scope_layer(engine::SCOPE_SIGNAL) else {
        return Ok(());
    };
    signal_scope_of(&domain, cred_log(sender), layer, target)
}

/// Whether `domain` (which handles the signal scope, the youngest layer doing so being
/// `layer`) may signal `target`.
fn signal_scope_of(domain: &Domain, log: CredLog, layer: usize, target: &Task) -> Result {
    let theirs = lsm::task_cred::<Landlock>(target);
    let t = theirs.cred();
    let target_domain = t.get();
    if domain.scope_denies(
        target_domain.as_deref().map(Domain::policy),
        engine::SCOPE_SIGNAL,
    ) {
        log::denial(
            domain,
            log,
            layer,
            Blocker::ScopeSignal,
            false,
            Data::Task(target),
            TraceInfo::Domain(log::id_of(target_domain.as_deref())),
        );
        Err(EPERM)
    } else {
        Ok(())
    }
}

/// The word `file_set_fowner` records: the owner's logging state and the layer a denial is
/// logged for.
fn fown_data(log: CredLog, layer: usize) -> u64 {
    u64::from(log.to_word()) | ((layer as u64) << 32)
}

/// The inverse of [`fown_data`].
fn fown_data_decode(data: u64) -> (CredLog, usize) {
    (
        CredLog::from_word(data as u32),
        ((data >> 32) & 0xf) as usize,
    )
}

/// The file blob: the optional rights denied at open (`TRUNCATE`, `IOCTL_DEV`) in the low
/// bits, and the layer that denied each (for logs) at `TRUNCATE_LAYER`/`IOCTL_LAYER`.
const TRUNCATE_LAYER: u32 = 32;
const IOCTL_LAYER: u32 = 36;
/// Whether a quiet rule of the layer denying `TRUNCATE` / `IOCTL_DEV` was met at open.
const TRUNCATE_QUIET: u64 = 1 << 40;
const IOCTL_QUIET: u64 = 1 << 41;

fn file_blob_layer(blob: u64, at: u32) -> usize {
    ((blob >> at) & 0xf) as usize
}

/// Logs the denial of `right` (`TRUNCATE` or `IOCTL_DEV`), decided when `file` was opened,
/// for the opener's domain: `blob` is the file's, `(layer_at, quiet)` where it recorded the
/// denying layer and whether a quiet rule of that layer was met.
fn log_open_time_denial(
    file: &File,
    blob: u64,
    right: u64,
    (layer_at, quiet): (u32, u64),
    data: Data<'_>,
) {
    let cred = file.cred::<Landlock>();
    if let Some(domain) = cred.get() {
        log::denial(
            &domain,
            cred_log(&cred),
            file_blob_layer(blob, layer_at),
            Blocker::Fs(right),
            blob & quiet != 0,
            data,
            TraceInfo::None,
        );
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
        log::init_ids();
        crate::pins::init()?;
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
        let check = check_path(&domain, path, open | optional);
        let denied = check.denied();
        if denied == 0 {
            file.blob::<Landlock>().store(0, Ordering::Release);
            return Ok(());
        }
        let (t_layer, _) = check.denied_layer(engine::FS_TRUNCATE);
        let (i_layer, _) = check.denied_layer(engine::FS_IOCTL_DEV);
        let mut blob = (denied & optional)
            | ((t_layer as u64) << TRUNCATE_LAYER)
            | ((i_layer as u64) << IOCTL_LAYER);
        if check.quiet_layer(t_layer) {
            blob |= TRUNCATE_QUIET;
        }
        if check.quiet_layer(i_layer) {
            blob |= IOCTL_QUIET;
        }
        file.blob::<Landlock>().store(blob, Ordering::Release);
        if denied & open != 0 {
            log_fs_denial(&domain, cred_log(&cred), &check, open, Data::Path(path));
            Err(EACCES)
        } else {
            Ok(())
        }
    }

    fn file_truncate(file: &File) -> Result {
        let blob = file.blob::<Landlock>().load(Ordering::Acquire);
        if blob & engine::FS_TRUNCATE == 0 {
            return Ok(());
        }
        log_open_time_denial(
            file,
            blob,
            engine::FS_TRUNCATE,
            (TRUNCATE_LAYER, TRUNCATE_QUIET),
            Data::File(file),
        );
        Err(EACCES)
    }

    fn file_ioctl(file: &File, cmd: u32, compat: bool) -> Result {
        let blob = file.blob::<Landlock>().load(Ordering::Acquire);
        if blob & engine::FS_IOCTL_DEV == 0 {
            return Ok(());
        }
        if engine::ioctl_always_allowed(cmd, compat) {
            return Ok(());
        }
        log_open_time_denial(
            file,
            blob,
            engine::FS_IOCTL_DEV,
            (IOCTL_LAYER, IOCTL_QUIET),
            Data::Ioctl(file, cmd as u16),
        );
        Err(EACCES)
    }

    fn exec_cred_word(word: u32) -> u32 {
        CredLog::from_word(word).on_exec().to_word()
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

    fn mount_change(target: MountTarget<'_>) -> Result {
        let cred = CurrentCred::<Landlock>::get();
        let c = cred.cred();
        let Some(d) = c.get() else {
            return Ok(());
        };
        let Some(layer) = d.youngest_fs_layer(engine::FS_MASK_UAPI) else {
            return Ok(());
        };
        let data = match target {
            MountTarget::Path(p) => Data::Path(p),
            MountTarget::Dentry(de) => Data::Dentry(de),
        };
        log::denial(
            &d,
            cred_log(&c),
            layer,
            Blocker::ChangeTopology,
            false,
            data,
            TraceInfo::None,
        );
        Err(EPERM)
    }

    fn sb_delete(sb: &SuperBlock) {
        crate::pins::sb_delete(sb);
    }

    fn ptrace(other: &Task, tracer_is_current: bool, audit: bool) -> Result {
        let cur = CurrentCred::<Landlock>::get();
        let oth = lsm::task_cred::<Landlock>(other);
        let (cur, oth) = (cur.cred(), oth.cred());
        let (tracer_cred, tracer, tracee) = if tracer_is_current {
            (&cur, cur.get(), oth.get())
        } else {
            (&oth, oth.get(), cur.get())
        };
        let Some(t) = tracer else {
            return Ok(());
        };
        let tracee_id = log::id_of(tracee.as_deref());
        if let Some(e) = tracee {
            if t.is_ancestor_of(e.policy()) {
                return Ok(());
            }
        }
        if audit {
            // The tracer's domain is the cause: logged with the other task, or the current
            // one for `PTRACE_TRACEME`.
            let layer = t.num_layers().saturating_sub(1);
            let log = cred_log(tracer_cred);
            let deny = |task: &Task| {
                log::denial(
                    &t,
                    log,
                    layer,
                    Blocker::Ptrace,
                    false,
                    Data::Task(task),
                    TraceInfo::Domain(tracee_id),
                )
            };
            if tracer_is_current {
                deny(other);
            } else {
                lsm::with_current_task(deny);
            }
        }
        Err(EPERM)
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

    fn file_set_fowner(owner_is_other_process: bool) -> Option<(Arc<Domain>, u64)> {
        // An owner in the current process needs no check when it gets SIGIO (erratum 2).
        if !owner_is_other_process {
            return None;
        }
        let cred = CurrentCred::<Landlock>::get();
        let c = cred.cred();
        let domain = c.get()?;
        let layer = domain.youngest_scope_layer(engine::SCOPE_SIGNAL)?;
        let data = fown_data(cred_log(&c), layer);
        Some((Arc::from(domain), data))
    }

    fn file_send_sigiotask(
        target: &Task,
        owner: &Domain,
        data: u64,
        owner_process: bool,
    ) -> Result {
        // The process that set itself as the owner, even through a process group.
        if owner_process {
            return Ok(());
        }
        let (log, layer) = fown_data_decode(data);
        signal_scope_of(owner, log, layer, target)
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
        check_socket(&domain, cred_log(&c), sock, addr, request, op)?;
        // Connecting a UDP socket may bind it, but not with `AF_UNSPEC` (disconnection).
        let unspec = addr.get(0..2).is_none_or(|f| f == [0, 0]);
        if request == engine::NET_CONNECT_SEND_UDP && !unspec {
            check_udp_autobind(&domain, cred_log(&c), sock)?;
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
        let log = cred_log(&c);
        if sock.is_tcp() {
            // TCP Fast Open connects to the address given with the data.
            if let (Some(a), true) = (addr, flags & MSG_FASTOPEN != 0) {
                check_socket(
                    &domain,
                    log,
                    sock,
                    a,
                    engine::NET_CONNECT_TCP,
                    NetOp::Connect,
                )?;
            }
            return Ok(());
        }
        if !sock.is_udp() {
            return Ok(());
        }
        if let Some(a) = addr {
            check_socket(
                &domain,
                log,
                sock,
                a,
                engine::NET_CONNECT_SEND_UDP,
                NetOp::Send,
            )?;
        }
        check_udp_autobind(&domain, log, sock)
    }

    fn unix_find(path: &Path, other: &FoundUnixSock, coredump: bool) -> Result {
        // The kernel's own lookup to save a core dump is not the task's.
        if coredump {
            return Ok(());
        }
        unix_find_check(path, other)
    }
}
