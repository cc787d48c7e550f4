// SPDX-License-Identifier: GPL-2.0

//! The Landlock policy engine: access rights, rulesets, layered domains and access decisions,
//! in safe Rust and without kernel types, so that it is tested both as KUnit tests and on the
//! host (`cargo test -p landlock-engine`, which includes this file with `#[path]`).
//!
//! Objects are numbers here: a filesystem rule is keyed by the id the kernel side gives an
//! inode (never reused), a network rule by a TCP port. The kernel side walks paths and feeds
//! the ids it meets to a [`FsCheck`].

use super::shim::{AllocError, KVec, GFP};

/// A negative `errno`-style error code (positive number here, e.g. [`EINVAL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

/// `EPERM`.
pub const EPERM: Errno = Errno(1);
/// `ENOENT`.
pub const ENOENT: Errno = Errno(2);
/// `E2BIG`.
pub const E2BIG: Errno = Errno(7);
/// `EBADF`.
pub const EBADF: Errno = Errno(9);
/// `ENOMEM`.
pub const ENOMEM: Errno = Errno(12);
/// `EACCES`.
pub const EACCES: Errno = Errno(13);
/// `EFAULT`.
pub const EFAULT: Errno = Errno(14);
/// `EXDEV`.
pub const EXDEV: Errno = Errno(18);
/// `EINVAL`.
pub const EINVAL: Errno = Errno(22);
/// `ENOMSG`.
pub const ENOMSG: Errno = Errno(42);
/// `EBADFD`.
pub const EBADFD: Errno = Errno(77);
/// `EAFNOSUPPORT`.
pub const EAFNOSUPPORT: Errno = Errno(97);
/// `EOPNOTSUPP`.
pub const EOPNOTSUPP: Errno = Errno(95);

impl From<AllocError> for Errno {
    fn from(_: AllocError) -> Self {
        ENOMEM
    }
}

/// Result of the engine.
pub type Result<T = ()> = core::result::Result<T, Errno>;

// Filesystem access rights (`LANDLOCK_ACCESS_FS_*`).
/// Execute a file.
pub const FS_EXECUTE: u64 = 1 << 0;
/// Open a file with write access.
pub const FS_WRITE_FILE: u64 = 1 << 1;
/// Open a file with read access.
pub const FS_READ_FILE: u64 = 1 << 2;
/// Open a directory or list its content.
pub const FS_READ_DIR: u64 = 1 << 3;
/// Remove an empty directory or rename one.
pub const FS_REMOVE_DIR: u64 = 1 << 4;
/// Unlink (or rename) a file.
pub const FS_REMOVE_FILE: u64 = 1 << 5;
/// Create (or rename or link) a character device.
pub const FS_MAKE_CHAR: u64 = 1 << 6;
/// Create (or rename) a directory.
pub const FS_MAKE_DIR: u64 = 1 << 7;
/// Create (or rename or link) a regular file.
pub const FS_MAKE_REG: u64 = 1 << 8;
/// Create (or rename or link) a UNIX domain socket.
pub const FS_MAKE_SOCK: u64 = 1 << 9;
/// Create (or rename or link) a named pipe.
pub const FS_MAKE_FIFO: u64 = 1 << 10;
/// Create (or rename or link) a block device.
pub const FS_MAKE_BLOCK: u64 = 1 << 11;
/// Create (or rename or link) a symbolic link.
pub const FS_MAKE_SYM: u64 = 1 << 12;
/// Link or rename a file from or to a different directory.
pub const FS_REFER: u64 = 1 << 13;
/// Truncate a file.
pub const FS_TRUNCATE: u64 = 1 << 14;
/// Invoke `ioctl(2)` on an opened character or block device.
pub const FS_IOCTL_DEV: u64 = 1 << 15;
/// Connect or send to a named (pathname) UNIX socket created outside the domain (ABI 9).
pub const FS_RESOLVE_UNIX: u64 = 1 << 16;
/// Every filesystem access right of the uapi (ABI 11: up to `RESOLVE_UNIX`).
pub const FS_MASK_UAPI: u64 = (FS_RESOLVE_UNIX << 1) - 1;
/// The filesystem access rights this implementation enforces (ABI 9: all of them).
pub const FS_MASK: u64 = FS_MASK_UAPI;
/// Rights that make sense on a file (not a directory) rule.
pub const FS_FILE: u64 =
    FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV | FS_RESOLVE_UNIX;

/// Bind a TCP socket to a port.
pub const NET_BIND_TCP: u64 = 1 << 0;
/// Connect a TCP socket to a port.
pub const NET_CONNECT_TCP: u64 = 1 << 1;
/// Bind a UDP socket to a port (ABI 10).
pub const NET_BIND_UDP: u64 = 1 << 2;
/// Connect a UDP socket to, or send a datagram to an explicit, remote port (ABI 10).
pub const NET_CONNECT_SEND_UDP: u64 = 1 << 3;
/// The network access rights this implementation enforces (ABI 10: TCP and UDP).
pub const NET_MASK: u64 = NET_BIND_TCP | NET_CONNECT_TCP | NET_BIND_UDP | NET_CONNECT_SEND_UDP;

/// Scope: no connecting or sending to an abstract UNIX socket created outside the domain.
pub const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
/// Scope: no signal to a process outside the domain.
pub const SCOPE_SIGNAL: u64 = 1 << 1;
/// The scopes this implementation enforces (ABI 6).
pub const SCOPE_MASK: u64 = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL;

/// `LANDLOCK_CREATE_RULESET_VERSION`.
pub const CREATE_RULESET_VERSION: u32 = 1 << 0;
/// `LANDLOCK_CREATE_RULESET_ERRATA`.
pub const CREATE_RULESET_ERRATA: u32 = 1 << 1;
/// `LANDLOCK_RULE_PATH_BENEATH`.
pub const RULE_PATH_BENEATH: i32 = 1;
/// `LANDLOCK_RULE_NET_PORT`.
pub const RULE_NET_PORT: i32 = 2;
/// `LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF`: no log of denials by this domain for this
/// program (until it calls `execve(2)`).
pub const RESTRICT_SELF_LOG_SAME_EXEC_OFF: u32 = 1 << 0;
/// `LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON`: log denials by this domain for the programs run
/// after an `execve(2)`.
pub const RESTRICT_SELF_LOG_NEW_EXEC_ON: u32 = 1 << 1;
/// `LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF`: no log of denials by domains nested in the
/// current one (or in the new one); the only flag allowed with a ruleset fd of -1.
pub const RESTRICT_SELF_LOG_SUBDOMAINS_OFF: u32 = 1 << 2;
/// `LANDLOCK_RESTRICT_SELF_TSYNC` (ABI 8): every thread of the process gets the new domain.
pub const RESTRICT_SELF_TSYNC: u32 = 1 << 3;
/// `LANDLOCK_RESTRICT_SELF_NO_NEW_PRIVS`: sets `no_new_privs` instead of requiring it.
pub const RESTRICT_SELF_NO_NEW_PRIVS: u32 = 1 << 4;
/// The `restrict_self` flags this implementation accepts (all of ABI 11).
pub const RESTRICT_SELF_MASK: u32 = RESTRICT_SELF_LOG_SAME_EXEC_OFF
    | RESTRICT_SELF_LOG_NEW_EXEC_ON
    | RESTRICT_SELF_LOG_SUBDOMAINS_OFF
    | RESTRICT_SELF_TSYNC
    | RESTRICT_SELF_NO_NEW_PRIVS;
/// `LANDLOCK_ADD_RULE_QUIET`: denials covered by this rule (and the ruleset's quiet masks)
/// are not logged.
pub const ADD_RULE_QUIET: u32 = 1 << 0;
/// The `add_rule` flags this implementation accepts.
pub const ADD_RULE_MASK: u32 = ADD_RULE_QUIET;

/// The ABI version: every feature up to ABI 11 is there (filesystem rights up to
/// `RESOLVE_UNIX`, TCP and UDP ports, abstract UNIX socket and signal scoping, audit logging
/// of denials with the `LOG_*` flags and the quiet masks, `TSYNC`, `NO_NEW_PRIVS`). The
/// Landlock trace events are not (they are not part of the ABI).
pub const ABI_VERSION: i32 = 11;
/// Errata fixed, as a bit field (bit N-1 for erratum N), all those of ABI <= 6, as C:
/// erratum 1 (only TCP sockets are subject to TCP rights), erratum 2 (signals between the
/// threads of a process are never scoped), erratum 3 (the walk from a disconnected directory
/// goes on from the root of its mount) and erratum 4 (whiteouts need `MAKE_REG`).
pub const ERRATA: i32 = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3);

/// Maximum number of stacked domains.
pub const MAX_LAYERS: usize = 16;
/// Maximum number of rules in a ruleset (as C: `U32_MAX`).
pub const MAX_RULES: usize = u32::MAX as usize;

/// The size of `struct landlock_ruleset_attr` in ABI 11.
pub const RULESET_ATTR_SIZE: usize = 48;
/// The minimal size user space may pass (`handled_access_fs` only).
pub const RULESET_ATTR_MIN: usize = 8;
/// `PAGE_SIZE`: the largest attribute size accepted.
pub const PAGE_SIZE: usize = 4096;

/// The handled masks of one layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handled {
    /// Filesystem rights.
    pub fs: u64,
    /// Network rights.
    pub net: u64,
    /// Scopes.
    pub scope: u64,
}

/// `struct landlock_ruleset_attr`, decoded from its little-endian bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RulesetAttr {
    /// `handled_access_fs`.
    pub handled_access_fs: u64,
    /// `handled_access_net`.
    pub handled_access_net: u64,
    /// `scoped`.
    pub scoped: u64,
    /// `quiet_access_fs`.
    pub quiet_access_fs: u64,
    /// `quiet_access_net`.
    pub quiet_access_net: u64,
    /// `quiet_scoped`.
    pub quiet_scoped: u64,
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

impl RulesetAttr {
    /// Decodes the attribute from (zero-extended) user bytes.
    pub fn from_bytes(b: &[u8; RULESET_ATTR_SIZE]) -> Self {
        Self {
            handled_access_fs: le_u64(b, 0),
            handled_access_net: le_u64(b, 8),
            scoped: le_u64(b, 16),
            quiet_access_fs: le_u64(b, 24),
            quiet_access_net: le_u64(b, 32),
            quiet_scoped: le_u64(b, 40),
        }
    }

    /// Checks the attribute as `landlock_create_ruleset(2)` does and gives the handled masks.
    pub fn validate(&self) -> Result<Handled> {
        if self.handled_access_fs & !FS_MASK != 0
            || self.handled_access_net & !NET_MASK != 0
            || self.scoped & !SCOPE_MASK != 0
        {
            return Err(EINVAL);
        }
        if self.quiet_access_fs & !self.handled_access_fs != 0
            || self.quiet_access_net & !self.handled_access_net != 0
            || self.quiet_scoped & !self.scoped != 0
        {
            return Err(EINVAL);
        }
        if self.handled_access_fs | self.handled_access_net | self.scoped == 0 {
            return Err(ENOMSG);
        }
        Ok(Handled {
            fs: self.handled_access_fs,
            net: self.handled_access_net,
            scope: self.scoped,
        })
    }

    /// The quiet masks: denials of these rights (by rules flagged `LANDLOCK_ADD_RULE_QUIET`)
    /// and scopes are not logged.
    pub fn quiet(&self) -> Handled {
        Handled {
            fs: self.quiet_access_fs,
            net: self.quiet_access_net,
            scope: self.quiet_scoped,
        }
    }
}

/// The checks of `landlock_create_ruleset(2)` done before the attribute is read: flags, and
/// the pointer and size. `Ok(Some(n))` is a value to return right away (version, errata).
pub fn create_ruleset_prelude(attr_is_null: bool, size: usize, flags: u32) -> Result<Option<i32>> {
    if flags != 0 {
        if !attr_is_null || size != 0 {
            return Err(EINVAL);
        }
        return match flags {
            CREATE_RULESET_VERSION => Ok(Some(ABI_VERSION)),
            CREATE_RULESET_ERRATA => Ok(Some(ERRATA)),
            _ => Err(EINVAL),
        };
    }
    if attr_is_null {
        return Err(EFAULT);
    }
    if size < RULESET_ATTR_MIN {
        return Err(EINVAL);
    }
    if size > PAGE_SIZE {
        return Err(E2BIG);
    }
    Ok(None)
}

/// A rule of a ruleset: an object and the rights granted beneath it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RulesetRule {
    key: u64,
    access: u64,
    /// Flagged `LANDLOCK_ADD_RULE_QUIET`.
    quiet: bool,
}

/// Inserts or merges (`OR`) a rule in a list sorted by key.
fn insert_rule(rules: &mut KVec<RulesetRule>, key: u64, access: u64, quiet: bool) -> Result {
    match rules.binary_search_by(|r| r.key.cmp(&key)) {
        Ok(i) => {
            if let Some(r) = rules.get_mut(i) {
                r.access |= access;
                r.quiet |= quiet;
            }
            Ok(())
        }
        Err(i) => {
            if rules.len() >= MAX_RULES {
                return Err(E2BIG);
            }
            rules.push(RulesetRule { key, access, quiet }, GFP)?;
            if let Some(tail) = rules.get_mut(i..) {
                tail.rotate_right(1);
            }
            Ok(())
        }
    }
}

/// A ruleset being built by `landlock_add_rule(2)`.
pub struct Ruleset {
    handled: Handled,
    quiet: Handled,
    fs: KVec<RulesetRule>,
    net: KVec<RulesetRule>,
}

impl Ruleset {
    /// An empty ruleset handling `handled`.
    pub fn new(handled: Handled) -> Self {
        Self {
            handled,
            quiet: Handled::default(),
            fs: KVec::new(),
            net: KVec::new(),
        }
    }

    /// Sets the quiet masks (a subset of the handled ones, see [`RulesetAttr::quiet`]).
    pub fn set_quiet(&mut self, quiet: Handled) {
        self.quiet = quiet;
    }

    /// The handled masks.
    pub fn handled(&self) -> Handled {
        self.handled
    }

    /// Number of rules.
    pub fn num_rules(&self) -> usize {
        self.fs.len() + self.net.len()
    }

    /// Whether the ruleset has a filesystem rule on the object `key`.
    pub fn has_fs_rule(&self, key: u64) -> bool {
        self.fs.binary_search_by(|r| r.key.cmp(&key)).is_ok()
    }

    /// The objects of the filesystem rules, each once, in order.
    pub fn fs_keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.fs.iter().map(|r| r.key)
    }

    /// Checks a `LANDLOCK_RULE_PATH_BENEATH` rule's access and `landlock_add_rule(2)` flags
    /// before its file descriptor is looked at. A rule without rights is useless
    /// (`ENOMSG`) unless it holds the quiet flag, which needs quiet filesystem rights.
    pub fn check_fs_access(&self, allowed: u64, flags: u32) -> Result {
        if flags == 0 && allowed == 0 {
            return Err(ENOMSG);
        }
        if allowed & !self.handled.fs != 0 {
            return Err(EINVAL);
        }
        if flags & ADD_RULE_QUIET != 0 && self.quiet.fs == 0 {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Adds a filesystem rule on the object `key` (a directory if `is_dir`).
    pub fn add_fs_rule(&mut self, key: u64, is_dir: bool, allowed: u64) -> Result {
        self.add_fs_rule_flags(key, is_dir, allowed, 0)
    }

    /// Adds a filesystem rule with `landlock_add_rule(2)` flags.
    pub fn add_fs_rule_flags(
        &mut self,
        key: u64,
        is_dir: bool,
        allowed: u64,
        flags: u32,
    ) -> Result {
        self.check_fs_rule(is_dir, allowed, flags)?;
        insert_rule(&mut self.fs, key, allowed, flags & ADD_RULE_QUIET != 0)
    }

    /// The checks of [`Ruleset::add_fs_rule_flags`] without adding: after them, adding fails
    /// only for want of memory.
    pub fn check_fs_rule(&self, is_dir: bool, allowed: u64, flags: u32) -> Result {
        self.check_fs_access(allowed, flags)?;
        if !is_dir && allowed & !FS_FILE != 0 {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Adds a `LANDLOCK_RULE_NET_PORT` rule.
    pub fn add_net_rule(&mut self, port: u64, allowed: u64) -> Result {
        self.add_net_rule_flags(port, allowed, 0)
    }

    /// Adds a `LANDLOCK_RULE_NET_PORT` rule with `landlock_add_rule(2)` flags.
    pub fn add_net_rule_flags(&mut self, port: u64, allowed: u64, flags: u32) -> Result {
        if flags == 0 && allowed == 0 {
            return Err(ENOMSG);
        }
        if allowed & !self.handled.net != 0 {
            return Err(EINVAL);
        }
        if flags & ADD_RULE_QUIET != 0 && self.quiet.net == 0 {
            return Err(EINVAL);
        }
        if port > u64::from(u16::MAX) {
            return Err(EINVAL);
        }
        insert_rule(&mut self.net, port, allowed, flags & ADD_RULE_QUIET != 0)
    }
}

/// A rule of a domain: an object, the layer that granted it (0-based) and the rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DomainRule {
    key: u64,
    level: u8,
    access: u64,
    quiet: bool,
}

/// An enforced, immutable, stack of up to [`MAX_LAYERS`] rulesets.
pub struct Domain {
    /// `lineage[i]` is the id of the domain that added layer `i + 1` (the last is this one).
    lineage: [u64; MAX_LAYERS],
    layers: [Handled; MAX_LAYERS],
    /// The quiet masks of each layer.
    quiet: [Handled; MAX_LAYERS],
    num_layers: usize,
    /// The unions of the layers' handled masks, asked on every hook.
    any_fs: u64,
    any_net: u64,
    fs: KVec<DomainRule>,
    net: KVec<DomainRule>,
}

/// Merges the rules of a parent domain (sorted by key then level) with a ruleset's (sorted
/// by key), the latter at `level`, which is above every parent level.
fn merge_rules(
    parent: Option<&KVec<DomainRule>>,
    new: &KVec<RulesetRule>,
    level: u8,
    handled: u64,
    all: u64,
) -> Result<KVec<DomainRule>> {
    let parent: &[DomainRule] = parent.map_or(&[], |p| p);
    let mut out = KVec::with_capacity(parent.len() + new.len(), GFP)?;
    let mut p = parent.iter().peekable();
    for r in new.iter() {
        while let Some(pr) = p.next_if(|pr| pr.key <= r.key) {
            out.push(*pr, GFP)?;
        }
        // Rights a layer does not handle are granted by its rules (they are never checked,
        // but it keeps a rule's rights absolute).
        let access = r.access | (all & !handled);
        out.push(
            DomainRule {
                key: r.key,
                level,
                access,
                quiet: r.quiet,
            },
            GFP,
        )?;
    }
    for pr in p {
        out.push(*pr, GFP)?;
    }
    Ok(out)
}

/// The rules of `key` in a domain's sorted list (one pass: they are adjacent).
fn rules_of(rules: &[DomainRule], key: u64) -> impl Iterator<Item = &DomainRule> {
    let start = rules.partition_point(|r| r.key < key);
    rules
        .get(start..)
        .unwrap_or(&[])
        .iter()
        .take_while(move |r| r.key == key)
}

/// What the rules of `key` grant of `request`, per layer (the oldest first): `None` if the
/// domain has no rule on `key` (for the trace events of rules met during a check).
fn layer_grants(rules: &[DomainRule], key: u64, request: u64) -> Option<[u64; MAX_LAYERS]> {
    let mut grants = [0; MAX_LAYERS];
    let mut any = false;
    for r in rules_of(rules, key) {
        if let Some(g) = grants.get_mut(usize::from(r.level)) {
            *g = r.access & request;
            any = true;
        }
    }
    any.then_some(grants)
}

impl Domain {
    /// What each layer's rule on `port` grants of `request`, `None` without a rule on it.
    pub fn net_rule_grants(&self, port: u16, request: u64) -> Option<[u64; MAX_LAYERS]> {
        layer_grants(&self.net, u64::from(port), request)
    }

    /// Stacks `ruleset` on `parent` (the current domain, if any) as a new domain `id`.
    pub fn merge(parent: Option<&Domain>, ruleset: &Ruleset, id: u64) -> Result<Self> {
        let (mut lineage, mut layers, mut quiet, n) = match parent {
            Some(p) => (p.lineage, p.layers, p.quiet, p.num_layers),
            None => (
                [0; MAX_LAYERS],
                [Handled::default(); MAX_LAYERS],
                [Handled::default(); MAX_LAYERS],
                0,
            ),
        };
        if n >= MAX_LAYERS {
            return Err(E2BIG);
        }
        let level = u8::try_from(n).map_err(|_| E2BIG)?;
        let slot = layers.get_mut(n).ok_or(E2BIG)?;
        *slot = ruleset.handled;
        if let Some(q) = quiet.get_mut(n) {
            *q = ruleset.quiet;
        }
        if let Some(l) = lineage.get_mut(n) {
            *l = id;
        }
        let fs = merge_rules(
            parent.map(|p| &p.fs),
            &ruleset.fs,
            level,
            ruleset.handled.fs | FS_REFER,
            FS_MASK_UAPI,
        )?;
        let net = merge_rules(
            parent.map(|p| &p.net),
            &ruleset.net,
            level,
            ruleset.handled.net,
            NET_MASK,
        )?;
        let stacked = layers.get(..=n).unwrap_or(&[]);
        Ok(Self {
            lineage,
            layers,
            quiet,
            num_layers: n + 1,
            any_fs: stacked.iter().fold(0, |a, l| a | l.fs),
            any_net: stacked.iter().fold(0, |a, l| a | l.net),
            fs,
            net,
        })
    }

    /// The objects of the filesystem rules, each once (one rule per layer: they are
    /// adjacent), in order.
    pub fn fs_keys(&self) -> impl Iterator<Item = u64> + '_ {
        let mut last = None;
        self.fs.iter().filter_map(move |r| {
            if last == Some(r.key) {
                None
            } else {
                last = Some(r.key);
                Some(r.key)
            }
        })
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.num_layers
    }

    /// The quiet masks of layer `layer`.
    pub fn quiet_of(&self, layer: usize) -> Handled {
        self.quiet.get(layer).copied().unwrap_or_default()
    }

    /// As [`Domain::net_denied_layer`], with whether a rule of that layer on `port` is
    /// flagged quiet.
    pub fn net_denied_quiet(&self, request: u64, port: u16) -> Option<(usize, bool)> {
        let layer = self.net_denied_layer(request, port)?;
        let quiet =
            rules_of(&self.net, u64::from(port)).any(|r| usize::from(r.level) == layer && r.quiet);
        Some((layer, quiet))
    }

    /// This domain's id.
    pub fn id(&self) -> u64 {
        self.lineage
            .get(self.num_layers.wrapping_sub(1))
            .copied()
            .unwrap_or(0)
    }

    fn layers(&self) -> &[Handled] {
        self.layers.get(..self.num_layers).unwrap_or(&[])
    }

    /// The union of the filesystem rights the layers handle (as given by user space).
    pub fn handled_fs(&self) -> u64 {
        self.any_fs
    }

    /// The union of the network rights the layers handle.
    pub fn handled_net(&self) -> u64 {
        self.any_net
    }

    /// Whether `self` is `other` or one of its ancestors: a task in `other` may then be
    /// ptraced by a task in `self` (no domain is the ancestor of all).
    pub fn is_ancestor_of(&self, other: &Domain) -> bool {
        self.num_layers <= other.num_layers
            && self
                .num_layers
                .checked_sub(1)
                .and_then(|i| other.lineage.get(i))
                == Some(&self.id())
    }

    /// Whether a layer handles one of the scopes of `scope` (else the domain has no say).
    pub fn handles_scope(&self, scope: u64) -> bool {
        self.layers().iter().any(|l| l.scope & scope != 0)
    }

    /// Whether `scope` forbids a task in this domain (the client) to reach an object (a
    /// socket, a task) of the domain `server` (`None`: no domain). A layer of the client that
    /// scopes the request allows it only if that layer is also one of the server's: the server
    /// lives in the same domain or in one nested in it.
    pub fn scope_denies(&self, server: Option<&Domain>, scope: u64) -> bool {
        let server_layers = server.map_or(0, |s| s.num_layers);
        for (level, layer) in self.layers().iter().enumerate() {
            if layer.scope & scope == 0 {
                continue;
            }
            // Layer `level` of both domains is the same one iff their domains at that depth
            // have the same id (ids are never reused, and a domain fixes its ancestors).
            if level >= server_layers {
                return true;
            }
            let theirs = server.and_then(|s| s.lineage.get(level));
            if theirs != self.lineage.get(level) {
                return true;
            }
        }
        false
    }

    /// Starts a filesystem access check for `request`; `None` when no layer handles any of
    /// it (allowed).
    #[inline]
    pub fn fs_check(&self, request: u64) -> Option<FsCheck<'_>> {
        let check = FsCheck::new(self, request);
        (!check.done()).then_some(check)
    }

    /// Checks a network access (one `NET_*` right) to `port`.
    pub fn net_check(&self, request: u64, port: u16) -> Result {
        match self.net_denied_layer(request, port) {
            None => Ok(()),
            Some(_) => Err(EACCES),
        }
    }

    /// The youngest layer that handles one of `scope`, if any (the layer a scope denial is
    /// logged for).
    pub fn youngest_scope_layer(&self, scope: u64) -> Option<usize> {
        self.layers().iter().rposition(|l| l.scope & scope != 0)
    }

    /// The youngest layer that handles one of the filesystem rights `fs`, if any.
    pub fn youngest_fs_layer(&self, fs: u64) -> Option<usize> {
        self.layers().iter().rposition(|l| l.fs & fs != 0)
    }

    /// The youngest layer that handles one of the network rights `net`, if any.
    pub fn youngest_net_layer(&self, net: u64) -> Option<usize> {
        self.layers().iter().rposition(|l| l.net & net != 0)
    }

    /// As [`Domain::net_check`], giving the youngest layer that denies the access.
    pub fn net_denied_layer(&self, request: u64, port: u16) -> Option<usize> {
        let mut needed = 0u16;
        for (level, layer) in self.layers().iter().enumerate() {
            if layer.net & request != 0 {
                needed |= 1 << level;
            }
        }
        for r in rules_of(&self.net, u64::from(port)) {
            if r.access & request == request {
                needed &= !(1u16 << r.level);
            }
        }
        (needed != 0).then(|| 15 - needed.leading_zeros() as usize)
    }
}

/// A filesystem access check in progress: for each layer, the requested rights it has not
/// granted yet. One mask per layer (rather than one layer set per right) makes a rule's
/// visit a single `AND NOT` per layer and the "all granted" test a single comparison.
#[derive(Clone)]
pub struct FsCheck<'a> {
    domain: &'a Domain,
    /// The requested rights some layer handles (`REFER` counting as handled).
    request: u64,
    /// `needed[l]`: the requested rights layer `l` handles and no rule met has granted.
    needed: [u64; MAX_LAYERS],
    /// The layers whose `needed` is not empty.
    pending: u16,
    /// The layers a rule flagged quiet was met for.
    quiet: u16,
}

impl<'a> FsCheck<'a> {
    /// The check of `request` by `domain`, [`FsCheck::done`] already when no layer handles
    /// any of it. Not inlined (a dozen callers); the check is built where the caller wants it,
    /// not copied there.
    #[inline(never)]
    pub fn new(domain: &'a Domain, request: u64) -> Self {
        let request = request & FS_MASK_UAPI;
        let mut check = FsCheck {
            domain,
            request: 0,
            needed: [0; MAX_LAYERS],
            pending: 0,
            quiet: 0,
        };
        // A plain loop over the layers in use (it runs on every checked open). `level` <
        // `MAX_LAYERS`, so the index is in bounds and the shift does not overflow.
        for level in 0..domain.num_layers.min(MAX_LAYERS) {
            // `REFER` is denied by every layer unless a rule grants it.
            let n = (domain.layers[level].fs | FS_REFER) & request;
            check.needed[level] = n;
            check.request |= n;
            check.pending |= u16::from(n != 0) << level;
        }
        check
    }
}

impl FsCheck<'_> {
    /// The requested rights some layer handles.
    pub fn request(&self) -> u64 {
        self.request
    }

    /// What each layer's rule on the object `key` grants of [`FsCheck::request`], `None` if
    /// the domain has no rule on it.
    pub fn rule_grants(&self, key: u64) -> Option<[u64; MAX_LAYERS]> {
        layer_grants(&self.domain.fs, key, self.request)
    }

    /// The checked domain.
    pub fn domain(&self) -> &Domain {
        self.domain
    }
    /// Accounts for the rules on the object `key` met on the way up; returns `true` when
    /// everything requested is granted (the walk can stop).
    pub fn visit(&mut self, key: u64) -> bool {
        for r in rules_of(&self.domain.fs, key) {
            if r.quiet {
                self.quiet |= 1u16 << r.level;
            }
            if let Some(n) = self.needed.get_mut(usize::from(r.level)) {
                *n &= !r.access;
                if *n == 0 {
                    self.pending &= !(1u16 << r.level);
                }
            }
        }
        self.done()
    }

    /// Grants the requested rights in every layer that the domain `server` (the one of the
    /// creator of the object, `None`: no domain) shares with the checked domain: an object
    /// created in the same domain, or in one nested in it, is always reachable (the
    /// `FS_RESOLVE_UNIX` semantics, like a scope's).
    pub fn unmask_scoped(&mut self, server: Option<&Domain>) {
        let Some(server) = server else {
            return;
        };
        let shared = self.domain.num_layers.min(server.num_layers);
        for level in 0..shared {
            // Ids are never reused and a domain fixes its ancestors: the same id at a depth
            // means the same layer.
            if self.domain.lineage.get(level) != server.lineage.get(level) {
                continue;
            }
            if let Some(n) = self.needed.get_mut(level) {
                *n = 0;
                self.pending &= !(1u16 << level);
            }
        }
    }

    /// Whether everything requested is granted.
    pub fn done(&self) -> bool {
        self.pending == 0
    }

    /// The requested rights still denied by at least one layer.
    pub fn denied(&self) -> u64 {
        self.needed.iter().fold(0, |a, n| a | n)
    }

    /// Grants everything (the walk met an object Landlock does not restrict).
    pub fn grant_all(&mut self) {
        self.needed = [0; MAX_LAYERS];
        self.pending = 0;
    }

    /// Keeps, of what each layer still denies, only `request` (C's `scope_to_request`).
    fn restrict(&mut self, request: u64) {
        for (level, n) in self.needed.iter_mut().enumerate() {
            *n &= request;
            if *n == 0 {
                self.pending &= !(1u16 << level);
            }
        }
    }

    /// The youngest layer denying some of `request` and the rights of `request` it denies
    /// (see [`youngest_denied_layer`]).
    pub fn denied_layer(&self, request: u64) -> (usize, u64) {
        youngest_denied_layer(&self.needed, request, self.domain.num_layers)
    }

    /// Whether a rule of layer `layer` flagged quiet was met.
    pub fn quiet_layer(&self, layer: usize) -> bool {
        1u16.checked_shl(layer as u32)
            .is_some_and(|b| self.quiet & b != 0)
    }
}

/// The right needed to create a file of type `mode` (`S_IFMT` bits) with device `dev`.
pub fn make_access(mode: u32, dev: u32) -> u64 {
    match mode & 0o170000 {
        0o120000 => FS_MAKE_SYM,
        0o040000 => FS_MAKE_DIR,
        // A whiteout is a character device 0/0 (erratum 4).
        0o020000 if dev == 0 => FS_MAKE_REG,
        0o020000 => FS_MAKE_CHAR,
        0o060000 => FS_MAKE_BLOCK,
        0o010000 => FS_MAKE_FIFO,
        0o140000 => FS_MAKE_SOCK,
        _ => FS_MAKE_REG,
    }
}

/// The right needed to remove a file of type `mode`.
pub fn remove_access(mode: u32) -> u64 {
    if mode & 0o170000 == 0o040000 {
        FS_REMOVE_DIR
    } else {
        FS_REMOVE_FILE
    }
}

/// The rights `open(2)` needs for the `f_mode` bits read/write, `f_flags` exec bit and
/// whether the file is a directory.
pub fn open_access(read: bool, write: bool, exec: bool, is_dir: bool) -> u64 {
    let mut a = 0;
    if read {
        if is_dir {
            return FS_READ_DIR;
        }
        a |= FS_READ_FILE;
    }
    if write {
        a |= FS_WRITE_FILE;
    }
    if exec {
        a |= FS_EXECUTE;
    }
    a
}

/// Whether a device `ioctl` command is always allowed (as `is_masked_device_ioctl` in C):
/// file descriptor and filesystem commands that do not reach the device driver. The 32-bit
/// compat variants that differ are not in the list either, so `compat` changes nothing.
pub fn ioctl_always_allowed(cmd: u32, _compat: bool) -> bool {
    const FIOCLEX: u32 = 0x5451;
    const FIONCLEX: u32 = 0x5450;
    const FIONBIO: u32 = 0x5421;
    const FIOASYNC: u32 = 0x5452;
    const FIOQSIZE: u32 = 0x5460;
    const FIFREEZE: u32 = 0xc004_5877;
    const FITHAW: u32 = 0xc004_5878;
    const FS_IOC_FIEMAP: u32 = 0xc020_660b;
    const FIGETBSZ: u32 = 0x0000_0002;
    const FICLONE: u32 = 0x4004_9409;
    const FICLONERANGE: u32 = 0x4020_940d;
    const FIDEDUPERANGE: u32 = 0xc018_9436;
    const FS_IOC_GETFSUUID: u32 = 0x8011_1500;
    const FS_IOC_GETFSSYSFSPATH: u32 = 0x8081_1501;
    matches!(
        cmd,
        FIOCLEX
            | FIONCLEX
            | FIONBIO
            | FIOASYNC
            | FIOQSIZE
            | FIFREEZE
            | FITHAW
            | FS_IOC_FIEMAP
            | FIGETBSZ
            | FICLONE
            | FICLONERANGE
            | FIDEDUPERANGE
            | FS_IOC_GETFSUUID
            | FS_IOC_GETFSSYSFSPATH
    )
}

/// A link or rename that changes the parent directory (reparenting), as C decides it
/// (`current_check_refer_path`): `src` and `dst` are the checks of every handled right
/// (`Domain::fs_check(FS_MASK)`) of the source's and the destination's parent directories,
/// each walked up to the root of their common mount (or to the root of a disconnected
/// directory). The walk then goes on from the mount's root, through [`Refer::visit`], for both
/// at once: while the rights the moved file would have under the destination exceed, in some
/// layer, those it has under the source (its own rules counted: [`Refer::new`]), every
/// handled right must be granted on both sides; once they do not, only the requests.
pub struct Refer<'a> {
    src: FsCheck<'a>,
    dst: FsCheck<'a>,
    /// What each layer denies the moved file by its own rules (every handled right but
    /// those its rules grant), and whether it is a directory.
    moved: ([u64; MAX_LAYERS], bool),
    /// The same for the file it is exchanged with (`RENAME_EXCHANGE`).
    exchanged: Option<([u64; MAX_LAYERS], bool)>,
    src_request: u64,
    dst_request: u64,
    /// The rights of both sides are still compared as wholes (every handled right).
    comparing: bool,
}

/// Whether a file denied `child` (by its own rules) under a parent denying `parent` would
/// not gain a right under a parent denying `new_parent`, in every layer. For a file (not a
/// directory) only the rights of files count.
fn may_refer(
    parent: &[u64; MAX_LAYERS],
    child: &[u64; MAX_LAYERS],
    new_parent: &[u64; MAX_LAYERS],
    child_is_dir: bool,
) -> bool {
    let kind = if child_is_dir { u64::MAX } else { FS_FILE };
    parent
        .iter()
        .zip(child.iter())
        .zip(new_parent.iter())
        .all(|((p, c), n)| p & c & kind & !(n & kind) == 0)
}

impl<'a> Refer<'a> {
    /// Starts the decision once `src` and `dst` have been walked up to the mount's root (see
    /// [`Refer`]). `moved` is the object id of the moved file (0: none) and whether it is a
    /// directory, `exchanged` the same for the destination in a `RENAME_EXCHANGE`;
    /// `src_request` and `dst_request` the rights needed in each parent (`REFER` included).
    pub fn new(
        src: FsCheck<'a>,
        dst: FsCheck<'a>,
        moved: (u64, bool),
        exchanged: Option<(u64, bool)>,
        src_request: u64,
        dst_request: u64,
    ) -> Self {
        let domain = src.domain;
        let own = |key: u64| match domain.fs_check(FS_MASK) {
            Some(mut c) => {
                if key != 0 {
                    c.visit(key);
                }
                c.needed
            }
            None => [0; MAX_LAYERS],
        };
        Refer {
            moved: (own(moved.0), moved.1),
            exchanged: exchanged.map(|(key, dir)| (own(key), dir)),
            src,
            dst,
            src_request,
            dst_request,
            comparing: true,
        }
    }

    /// Whether both parents grant what they must.
    pub fn allowed(&self) -> bool {
        self.src.done() && self.dst.done()
    }

    /// Whether the move (and the exchange) gains no right.
    fn no_more_access(&self) -> bool {
        let (s, d) = (&self.src.needed, &self.dst.needed);
        may_refer(s, &self.moved.0, d, self.moved.1)
            && self
                .exchanged
                .as_ref()
                .is_none_or(|(e, dir)| may_refer(d, e, s, *dir))
    }

    /// One directory of the walk above the mount's root (the root first), with its object id
    /// (0: none); returns `true` when everything is granted (the walk can stop).
    pub fn visit(&mut self, key: u64) -> bool {
        if self.comparing && self.no_more_access() {
            // From here on only the requests matter.
            self.comparing = false;
            self.src.restrict(self.src_request);
            self.dst.restrict(self.dst_request);
            if self.allowed() {
                return true;
            }
        }
        if key != 0 {
            if !self.src.done() {
                self.src.visit(key);
            }
            if !self.dst.done() {
                self.dst.visit(key);
            }
        }
        self.allowed()
    }

    /// Grants everything (the walk met an object Landlock does not restrict).
    pub fn grant_all(&mut self) {
        self.src.grant_all();
        self.dst.grant_all();
    }

    /// The decision once the walk is over: `EACCES` when a parent denies a requested right
    /// other than `REFER`, before `EXDEV` (the move would gain rights, or `REFER` is denied).
    pub fn result(&self) -> Result {
        if self.allowed() {
            return Ok(());
        }
        let not_refer = !FS_REFER;
        if self.src.denied() & self.src_request & not_refer != 0
            || self.dst.denied() & self.dst_request & not_refer != 0
        {
            return Err(EACCES);
        }
        Err(EXDEV)
    }

    /// What to log for the source (`dst == false`) or the destination parent after a denial:
    /// nothing when it granted everything, else its check and the rights asked of it, every
    /// handled one if the walk never found the move harmless.
    pub fn denial(&self, dst: bool) -> Option<(&FsCheck<'a>, u64)> {
        let (check, request) = if dst {
            (&self.dst, self.dst_request)
        } else {
            (&self.src, self.src_request)
        };
        if check.done() {
            return None;
        }
        let request = if self.comparing {
            check.domain.handled_fs()
        } else {
            request
        };
        Some((check, request))
    }
}

/// `AF_UNSPEC`.
pub const AF_UNSPEC: u16 = 0;
/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// The operation of a network access check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetOp {
    /// `bind(2)` (`NET_BIND_TCP`, `NET_BIND_UDP`).
    Bind,
    /// `connect(2)` (`NET_CONNECT_TCP`, `NET_CONNECT_SEND_UDP`).
    Connect,
    /// `sendmsg(2)` on a UDP socket with an explicit address (`NET_CONNECT_SEND_UDP`).
    Send,
}

/// What a TCP `bind(2)`/`connect(2)` address means for Landlock: [`inet_port_of`] for TCP.
pub fn tcp_port_of(addr: &[u8], sock_family: u16, connect: bool) -> Result<Option<u16>> {
    let op = if connect { NetOp::Connect } else { NetOp::Bind };
    inet_port_of(addr, sock_family, op)
}

/// What an address given to `bind(2)`, `connect(2)` or `sendmsg(2)` on a TCP or UDP socket
/// of family `sock_family` means for Landlock (as C's `current_check_access_socket`):
/// `Ok(None)` when no port check applies, `Ok(Some(port))` for the port (host order) to
/// check, or the error to return right away (`EACCES` for a datagram sent to an `AF_UNSPEC`
/// address from an IPv6 socket, whose family may change under our feet).
pub fn inet_port_of(addr: &[u8], sock_family: u16, op: NetOp) -> Result<Option<u16>> {
    let family = match addr.get(0..2) {
        Some(f) => u16::from_ne_bytes([f[0], f[1]]),
        None => return Err(EINVAL),
    };
    let port_at =
        |b: &[u8]| -> Option<u16> { b.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]])) };
    const SIN_LEN: usize = 16;
    const SIN6_LEN_RFC2133: usize = 24;
    let port = match family {
        AF_UNSPEC => {
            match op {
                // Dissolving an association is always allowed.
                NetOp::Connect => return Ok(None),
                NetOp::Send => {
                    if sock_family == AF_INET6 {
                        return Err(EACCES);
                    }
                }
                NetOp::Bind => {
                    if sock_family == AF_INET {
                        if addr.len() < SIN_LEN {
                            return Err(EINVAL);
                        }
                        if addr.get(4..8) != Some(&[0, 0, 0, 0][..]) {
                            return Err(EAFNOSUPPORT);
                        }
                    } else if addr.len() < SIN6_LEN_RFC2133 {
                        return Err(EINVAL);
                    } else {
                        return Err(EAFNOSUPPORT);
                    }
                }
            }
            // Otherwise `AF_UNSPEC` is read as `AF_INET`.
            if addr.len() < SIN_LEN {
                return Err(EINVAL);
            }
            port_at(addr)
        }
        AF_INET => {
            if addr.len() < SIN_LEN {
                return Err(EINVAL);
            }
            port_at(addr)
        }
        AF_INET6 => {
            if addr.len() < SIN6_LEN_RFC2133 {
                return Err(EINVAL);
            }
            port_at(addr)
        }
        _ => return Ok(None),
    };
    if family != sock_family && family != AF_UNSPEC {
        return Err(EINVAL);
    }
    port.map(Some).ok_or(EINVAL)
}

// Logging of denials (ABI 7): which layer denied, whether its domain logs it, and how the
// record names what was denied. The records themselves are written by the kernel side.

/// What `landlock_restrict_self(2)` was asked, from its file descriptor and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestrictFlags {
    /// Whether a ruleset is to be enforced (else only `LOG_SUBDOMAINS_OFF`, with fd -1).
    pub with_ruleset: bool,
    /// Log the new domain's denials in the current program.
    pub log_same_exec: bool,
    /// Log the new domain's denials after an `execve(2)`.
    pub log_new_exec: bool,
    /// Log denials of domains nested in this one.
    pub log_subdomains: bool,
    /// Set `no_new_privs` (and do not require it).
    pub no_new_privs: bool,
    /// Give every thread of the process the new domain (`TSYNC`).
    pub tsync: bool,
}

/// Decodes `landlock_restrict_self(fd, flags)` as C does, before the file descriptor is
/// looked at: unknown flags are `EINVAL`; fd -1 with only `LOG_SUBDOMAINS_OFF` (and maybe
/// `TSYNC`) asks for no ruleset.
pub fn restrict_self_flags(fd: i32, flags: u32) -> Result<RestrictFlags> {
    if flags & !RESTRICT_SELF_MASK != 0 {
        return Err(EINVAL);
    }
    Ok(RestrictFlags {
        with_ruleset: !(fd == -1
            && flags & !RESTRICT_SELF_TSYNC == RESTRICT_SELF_LOG_SUBDOMAINS_OFF),
        tsync: flags & RESTRICT_SELF_TSYNC != 0,
        log_same_exec: flags & RESTRICT_SELF_LOG_SAME_EXEC_OFF == 0,
        log_new_exec: flags & RESTRICT_SELF_LOG_NEW_EXEC_ON != 0,
        log_subdomains: flags & RESTRICT_SELF_LOG_SUBDOMAINS_OFF == 0,
        no_new_privs: flags & RESTRICT_SELF_NO_NEW_PRIVS != 0,
    })
}

/// Whether a domain's denials may be logged, and whether it was logged already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LogStatus {
    /// Not logged yet: the first logged denial also logs the domain.
    Pending = 0,
    /// The domain's allocation was logged: its deallocation will be too.
    Recorded = 1,
    /// Never logged (both `LOG_*_EXEC` flags off, or a parent asked `LOG_SUBDOMAINS_OFF`).
    Disabled = 2,
}

impl LogStatus {
    /// From its `repr(u8)` value (anything else is `Disabled`).
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Pending,
            1 => Self::Recorded,
            _ => Self::Disabled,
        }
    }
}

/// The log status of a new domain; `parent_log_subdomains` is false when the credentials
/// carried `LOG_SUBDOMAINS_OFF` before this call.
pub fn new_log_status(f: &RestrictFlags, parent_log_subdomains: bool) -> LogStatus {
    if (!f.log_same_exec && !f.log_new_exec) || !parent_log_subdomains {
        LogStatus::Disabled
    } else {
        LogStatus::Pending
    }
}

/// The logging state credentials carry besides their domain (C's `domain_exec` and
/// `log_subdomains_off`), packed in one word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CredLog {
    /// Bit `l`: layer `l` was enforced by the running program (no `execve(2)` since).
    pub domain_exec: u16,
    /// Domains nested from now on are never logged.
    pub log_subdomains_off: bool,
}

impl CredLog {
    /// Unpacks the word.
    pub fn from_word(w: u32) -> Self {
        Self {
            domain_exec: (w & 0xffff) as u16,
            log_subdomains_off: w & (1 << 16) != 0,
        }
    }

    /// Packs the word.
    pub fn to_word(self) -> u32 {
        u32::from(self.domain_exec) | (u32::from(self.log_subdomains_off) << 16)
    }

    /// The state for a new program: no layer is its own.
    pub fn on_exec(self) -> Self {
        Self {
            domain_exec: 0,
            ..self
        }
    }

    /// Applies `landlock_restrict_self(2)` with `f`; `new_layers` is the number of layers of
    /// the new domain when a ruleset is enforced. Returns the new state and whether nested
    /// domains were logged before (for [`new_log_status`]).
    pub fn restrict(self, f: &RestrictFlags, new_layers: Option<usize>) -> (Self, bool) {
        let prev_log_subdomains = !self.log_subdomains_off;
        let mut next = Self {
            domain_exec: self.domain_exec,
            log_subdomains_off: !prev_log_subdomains || !f.log_subdomains,
        };
        if let Some(n) = new_layers {
            if let Some(bit) = n.checked_sub(1).and_then(|l| 1u16.checked_shl(l as u32)) {
                next.domain_exec |= bit;
            }
        }
        (next, prev_log_subdomains)
    }

    /// Whether layer `layer` was enforced by the running program.
    pub fn same_exec(self, layer: usize) -> bool {
        1u16.checked_shl(layer as u32)
            .is_some_and(|b| self.domain_exec & b != 0)
    }
}

/// Whether quiet masks and rules silence a denial by a layer with quiet masks `quiet`
/// (C's `is_denial_quieted`): a filesystem or network denial when a rule of that layer met
/// for the object is flagged quiet (`object_quiet`) and the masks cover all that is denied; a
/// scope denial when the layer's `quiet_scoped` has the scope. ptrace and mount denials are
/// never quiet.
pub fn denial_quieted(blocker: Blocker, quiet: Handled, object_quiet: bool) -> bool {
    match blocker {
        Blocker::Fs(missing) => object_quiet && quiet.fs & missing == missing,
        Blocker::Net(missing) => object_quiet && quiet.net & missing == missing,
        Blocker::ScopeSignal => quiet.scope & SCOPE_SIGNAL != 0,
        Blocker::ScopeAbstractUnix => quiet.scope & SCOPE_ABSTRACT_UNIX_SOCKET != 0,
        Blocker::Ptrace | Blocker::ChangeTopology => false,
    }
}

/// Whether a denial by a domain is logged (C's `is_denial_logged`; `quieted` from
/// [`denial_quieted`]).
pub fn denial_logged(
    status: LogStatus,
    same_exec: bool,
    log_same_exec: bool,
    log_new_exec: bool,
    quieted: bool,
) -> bool {
    if status == LogStatus::Disabled {
        return false;
    }
    let wanted = if same_exec {
        log_same_exec
    } else {
        log_new_exec
    };
    wanted && !quieted
}

/// The youngest layer denying some of `request`, given what each layer still denies
/// (`needed[l]`), and the rights of `request` it denies (C's `get_denied_layer`). Without
/// such a layer: the youngest of `num_layers`, and no right.
pub fn youngest_denied_layer(needed: &[u64], request: u64, num_layers: usize) -> (usize, u64) {
    for (l, n) in needed.iter().enumerate().rev() {
        if n & request != 0 {
            return (l, n & request);
        }
    }
    (num_layers.saturating_sub(1), 0)
}

/// What a record names as the cause of a denial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// `ptrace`.
    Ptrace,
    /// `fs.change_topology` (mount changes).
    ChangeTopology,
    /// Filesystem rights (`fs.*`).
    Fs(u64),
    /// Network rights (`net.*`).
    Net(u64),
    /// `scope.abstract_unix_socket`.
    ScopeAbstractUnix,
    /// `scope.signal`.
    ScopeSignal,
}

/// The names of the filesystem rights, by bit.
pub const FS_NAMES: [&str; 17] = [
    "execute",
    "write_file",
    "read_file",
    "read_dir",
    "remove_dir",
    "remove_file",
    "make_char",
    "make_dir",
    "make_reg",
    "make_sock",
    "make_fifo",
    "make_block",
    "make_sym",
    "refer",
    "truncate",
    "ioctl_dev",
    "resolve_unix",
];

/// The names of the network rights, by bit.
pub const NET_NAMES: [&str; 4] = ["bind_tcp", "connect_tcp", "bind_udp", "connect_send_udp"];

/// Writes `prefix` and the names of the bits of `access` (comma separated).
fn write_names(
    f: &mut core::fmt::Formatter<'_>,
    prefix: &str,
    names: &[&str],
    access: u64,
) -> core::fmt::Result {
    let mut first = true;
    for (bit, name) in names.iter().enumerate() {
        if access & (1u64 << bit) != 0 {
            if !first {
                f.write_str(",")?;
            }
            f.write_str(prefix)?;
            f.write_str(name)?;
            first = false;
        }
    }
    Ok(())
}

impl core::fmt::Display for Blocker {
    /// The `blockers=` value of an `AUDIT_LANDLOCK_ACCESS` record.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Ptrace => f.write_str("ptrace"),
            Self::ChangeTopology => f.write_str("fs.change_topology"),
            Self::Fs(a) => write_names(f, "fs.", &FS_NAMES, a),
            Self::Net(a) => write_names(f, "net.", &NET_NAMES, a),
            Self::ScopeAbstractUnix => f.write_str("scope.abstract_unix_socket"),
            Self::ScopeSignal => f.write_str("scope.signal"),
        }
    }
}

/// The first domain id (C's `init_id`): above 2^32, so user space has to use 64-bit values,
/// with 32 random bits.
pub fn first_domain_id(random_32bits: u32) -> u64 {
    (1u64 << 32) + u64::from(random_32bits)
}

/// How far the next domain id is (C's `get_id_range` for one id): 1 and up to 15 more, so
/// that ids do not tell how many domains were made.
pub fn domain_id_step(random_4bits: u8) -> u64 {
    1 + u64::from(random_4bits & 0xf)
}
