// SPDX-License-Identifier: GPL-2.0

//! The three Landlock system calls, with the checks (and errnos) of the C implementation.

use crate::engine::{self, CredLog, Errno, Ruleset, RulesetAttr};
use crate::log::{self, Domain};
use crate::{pins, Landlock, INITIALIZED};
use core::{
    ops::{Deref, DerefMut},
    sync::atomic::{AtomicU64, Ordering},
};
use kernel::{
    c_str,
    lsm::{self, trace, FdFile, NewCred},
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    uaccess::{UserPtr, UserSlice},
};

/// A ruleset as its file descriptor holds it.
pub(crate) type SharedRuleset = Mutex<TracedRuleset>;

/// A ruleset with what its trace events show: an id (from the domains' ids) and a version,
/// the number of rules added so far. Its end is traced (`landlock_free_ruleset`).
pub(crate) struct TracedRuleset {
    rules: Ruleset,
    id: u64,
    version: u64,
}

impl TracedRuleset {
    /// Wraps a new ruleset and traces its creation (`landlock_create_ruleset`).
    fn new(rules: Ruleset) -> Self {
        let id = log::new_id();
        let h = rules.handled();
        trace::create_ruleset(id, 0, h.fs, h.net, h.scope);
        Self {
            rules,
            id,
            version: 0,
        }
    }
}

impl Deref for TracedRuleset {
    type Target = Ruleset;
    fn deref(&self) -> &Ruleset {
        &self.rules
    }
}

impl DerefMut for TracedRuleset {
    fn deref_mut(&mut self) -> &mut Ruleset {
        &mut self.rules
    }
}

impl Drop for TracedRuleset {
    fn drop(&mut self) {
        trace::free_ruleset(self.id, self.version);
        // The ruleset's pins, one for each inode it has rules on (see `add_rule_inner`).
        pins::release(self.rules.fs_keys());
    }
}

/// `FMODE_PATH`: an `O_PATH` file.
const FMODE_PATH: u32 = 1 << 14;

fn err(e: Errno) -> isize {
    -(e.0 as isize)
}

fn kerr(e: Error) -> isize {
    e.to_errno() as isize
}

/// Reads a struct of `N` bytes that user space says is `usize` bytes long (as
/// `copy_struct_from_user`): a shorter one is zero-extended, a longer one must be zero beyond
/// `N` (`E2BIG`).
fn copy_struct_from_user<const N: usize>(addr: usize, usize_: usize) -> Result<[u8; N], Errno> {
    let mut buf = [0u8; N];
    let mut reader = UserSlice::new(UserPtr::from_addr(addr), usize_).reader();
    let n = usize_.min(N);
    let head = buf.get_mut(..n).ok_or(engine::EFAULT)?;
    reader.read_slice(head).map_err(|_| engine::EFAULT)?;
    let mut rest = usize_.saturating_sub(N);
    let mut chunk = [0u8; 64];
    while rest > 0 {
        let k = rest.min(chunk.len());
        let c = chunk.get_mut(..k).ok_or(engine::EFAULT)?;
        reader.read_slice(c).map_err(|_| engine::EFAULT)?;
        if c.iter().any(|b| *b != 0) {
            return Err(engine::E2BIG);
        }
        rest -= k;
    }
    Ok(buf)
}

/// Reads exactly `N` bytes (`copy_from_user`).
fn copy_from_user<const N: usize>(addr: usize) -> Result<[u8; N], Errno> {
    let mut buf = [0u8; N];
    UserSlice::new(UserPtr::from_addr(addr), N)
        .reader()
        .read_slice(&mut buf)
        .map_err(|_| engine::EFAULT)?;
    Ok(buf)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

fn le_i32(b: &[u8], at: usize) -> i32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        v.copy_from_slice(s);
    }
    i32::from_le_bytes(v)
}

/// `landlock_create_ruleset(attr, size, flags)`.
pub(crate) fn create_ruleset(attr: usize, size: usize, flags: u32) -> isize {
    if !INITIALIZED.load(Ordering::Acquire) {
        return err(engine::EOPNOTSUPP);
    }
    match engine::create_ruleset_prelude(attr == 0, size, flags) {
        Err(e) => return err(e),
        Ok(Some(v)) => return v as isize,
        Ok(None) => {}
    }
    let bytes = match copy_struct_from_user::<{ engine::RULESET_ATTR_SIZE }>(attr, size) {
        Ok(b) => b,
        Err(e) => return err(e),
    };
    let attr = RulesetAttr::from_bytes(&bytes);
    let handled = match attr.validate() {
        Ok(h) => h,
        Err(e) => return err(e),
    };
    let mut rs = Ruleset::new(handled);
    rs.set_quiet(attr.quiet());
    // Traced before the file descriptor exists; if it cannot be made, the ruleset's end is
    // traced as well.
    let rs = TracedRuleset::new(rs);
    let ruleset = match Arc::pin_init(new_mutex!(rs), GFP_KERNEL) {
        Ok(r) => r,
        Err(e) => return kerr(e),
    };
    match lsm::new_object_fd(c_str!("[landlock-ruleset]"), ruleset) {
        Ok(fd) => fd as isize,
        Err(e) => kerr(e),
    }
}

/// The ruleset of a ruleset file descriptor opened with `mode` (`FMODE_CAN_*`).
fn ruleset_of_fd(fd: i32, mode: u32) -> Result<Arc<SharedRuleset>, Errno> {
    let f = FdFile::get(fd).map_err(|_| engine::EBADF)?;
    if f.file().mode() & FMODE_PATH != 0 {
        return Err(engine::EBADF);
    }
    let rs = f.object::<SharedRuleset>().ok_or(engine::EBADFD)?;
    if f.file().mode() & mode == 0 {
        return Err(engine::EPERM);
    }
    Ok(rs)
}

/// Ids of inodes with rules, never reused (0: none yet).
static NEXT_INODE_ID: AtomicU64 = AtomicU64::new(1);

/// The id of an inode, given on first use.
pub(crate) fn inode_id_or_new(inode: &lsm::Inode) -> u64 {
    let slot = inode.blob::<Landlock>();
    let id = slot.load(Ordering::Acquire);
    if id != 0 {
        return id;
    }
    let new = NEXT_INODE_ID.fetch_add(1, Ordering::Relaxed);
    match slot.compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => new,
        Err(existing) => existing,
    }
}

fn add_rule_inner(fd: i32, rule_type: i32, attr: usize, flags: u32) -> Result<(), Errno> {
    if flags & !engine::ADD_RULE_MASK != 0 {
        return Err(engine::EINVAL);
    }
    let ruleset = ruleset_of_fd(fd, lsm::FMODE_CAN_WRITE)?;
    match rule_type {
        engine::RULE_PATH_BENEATH => {
            let b = copy_from_user::<12>(attr)?;
            let allowed = le_u64(&b, 0);
            let parent_fd = le_i32(&b, 8);
            ruleset.lock().check_fs_access(allowed, flags)?;
            let pf = FdFile::get(parent_fd).map_err(|_| engine::EBADF)?;
            let path = pf.file().path();
            let dentry = path.dentry();
            if pf.is_object_file() || path.is_internal_mount() || dentry.sb_nouser() {
                return Err(engine::EBADFD);
            }
            let inode = dentry.inode().ok_or(engine::EBADFD)?;
            if inode.is_private() {
                return Err(engine::EBADFD);
            }
            let key = inode_id_or_new(inode);
            let is_dir = inode.is_dir();
            let mut rs = ruleset.lock();
            // Refused rules first (`EINVAL` for directory rights on a file, as C, before any
            // allocation); then the ruleset's first rule on the inode pins it until the ruleset
            // is freed (see `pins`): `ENOMEM` if that cannot be recorded.
            rs.check_fs_rule(is_dir, allowed, flags)?;
            let first = !rs.has_fs_rule(key);
            if first {
                pins::pin(key, inode)?;
            }
            if let Err(e) = rs.add_fs_rule_flags(key, is_dir, allowed, flags) {
                if first {
                    pins::release(core::iter::once(key));
                }
                return Err(e);
            }
            rs.version += 1;
            // The rule's rights as stored: with the rights the ruleset does not handle
            // (`REFER` excepted, which is never granted implicitly).
            let stored = allowed | (engine::FS_MASK_UAPI & !(rs.handled().fs | engine::FS_REFER));
            trace::add_rule_path_beneath(rs.id, rs.version, stored, path);
            Ok(())
        }
        engine::RULE_NET_PORT => {
            let b = copy_from_user::<16>(attr)?;
            let (port, allowed) = (le_u64(&b, 8), le_u64(&b, 0));
            let mut rs = ruleset.lock();
            rs.add_net_rule_flags(port, allowed, flags)?;
            rs.version += 1;
            let stored = allowed | (engine::NET_MASK & !rs.handled().net);
            trace::add_rule_net_port(rs.id, rs.version, stored, port);
            Ok(())
        }
        _ => Err(engine::EINVAL),
    }
}

/// `landlock_add_rule(ruleset_fd, rule_type, rule_attr, flags)`.
pub(crate) fn add_rule(fd: i32, rule_type: i32, attr: usize, flags: u32) -> isize {
    if !INITIALIZED.load(Ordering::Acquire) {
        return err(engine::EOPNOTSUPP);
    }
    match add_rule_inner(fd, rule_type, attr, flags) {
        Ok(()) => 0,
        Err(e) => err(e),
    }
}

/// Traces the enforcement of a new domain on another thread (`LANDLOCK_RESTRICT_SELF_TSYNC`),
/// in its context.
fn enforced_by_sibling(domain: &Domain, no_new_privs: bool) {
    trace::enforce_domain(domain.id(), false, true, no_new_privs);
}

fn restrict_self_inner(fd: i32, flags: u32) -> Result<(), Errno> {
    let f = engine::restrict_self_flags(fd, flags)?;
    if !f.no_new_privs && !lsm::current_no_new_privs() && !lsm::current_capable_sys_admin() {
        return Err(engine::EPERM);
    }
    let ruleset = if f.with_ruleset {
        Some(ruleset_of_fd(fd, lsm::FMODE_CAN_READ)?)
    } else {
        None
    };
    let mut new = NewCred::<Landlock>::prepare().map_err(|_| engine::ENOMEM)?;
    let log = CredLog::from_word(new.word());
    // The new domain's id, if any.
    let mut created = None;
    match ruleset {
        Some(ruleset) => {
            let id = log::new_id();
            let domain = {
                let parent = new.get();
                let (policy, ruleset_id, version) = {
                    let rs = ruleset.lock();
                    let policy =
                        engine::Domain::merge(parent.as_deref().map(Domain::policy), &rs, id)?;
                    (policy, rs.id, rs.version)
                };
                let (next, prev_log_subdomains) = log.restrict(&f, Some(policy.num_layers()));
                let d = Domain::new(policy, id, parent.as_deref(), &f, prev_log_subdomains)
                    .map_err(|_| engine::ENOMEM)?;
                // From here on the domain's end is traced too (`landlock_free_domain`), even if
                // it is never enforced.
                trace::create_domain(id, log::id_of(parent.as_deref()), ruleset_id, version);
                (d, next)
            };
            let (domain, next) = domain;
            let domain = Arc::new(domain, GFP_KERNEL_ACCOUNT).map_err(|_| engine::ENOMEM)?;
            new.set(Some(domain));
            new.set_word(next.to_word());
            created = Some(id);
        }
        None => {
            let (next, _) = log.restrict(&f, None);
            new.set_word(next.to_word());
        }
    }
    let new = if f.tsync {
        // The other threads must end up as this one: with no_new_privs if it has it.
        let siblings_no_new_privs = f.no_new_privs || lsm::current_no_new_privs();
        // Each other thread traces its enforcement of a new domain.
        let enforced = created.map(|_| enforced_by_sibling as fn(&Domain, bool));
        new.apply_to_other_threads(siblings_no_new_privs, enforced)
            .map_err(|e| Errno(-e.to_errno()))?
    } else {
        new.ready()
    };
    // Past the last point of failure.
    if f.no_new_privs {
        lsm::current_set_no_new_privs();
    }
    let process_wide = f.tsync || lsm::current_is_single_threaded();
    new.commit();
    // The caller's enforcement concludes the operation.
    if let Some(id) = created {
        trace::enforce_domain(id, true, process_wide, lsm::current_no_new_privs());
    }
    Ok(())
}

/// `landlock_restrict_self(ruleset_fd, flags)`.
pub(crate) fn restrict_self(fd: i32, flags: u32) -> isize {
    if !INITIALIZED.load(Ordering::Acquire) {
        return err(engine::EOPNOTSUPP);
    }
    match restrict_self_inner(fd, flags) {
        Ok(()) => 0,
        Err(e) => err(e),
    }
}
