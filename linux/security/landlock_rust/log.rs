// SPDX-License-Identifier: GPL-2.0

//! Logging of denials through audit (ABI 7), with the records of the C Landlock:
//!
//! - `AUDIT_LANDLOCK_ACCESS`: `domain=ID blockers=WHAT` and the object's LSM fields;
//! - `AUDIT_LANDLOCK_DOMAIN`: `domain=ID status=allocated mode=enforcing pid= uid= exe= comm=`
//!   before a domain's first logged denial, and `domain=ID status=deallocated denials=N`
//!   when a domain that was logged is freed.
//!
//! Each layer of a domain has a [`Hierarchy`]: its id, whether and how it logs, how many
//! requests it denied, and who created it. A nested domain shares its parent's.
//!
//! Every denial also emits the trace event of its kind (`landlock_deny_*`), logged or not,
//! and a freed domain `landlock_free_domain`.

use crate::engine::{self, Blocker, CredLog, LogStatus, RestrictFlags};
use crate::pins;
use core::ops::Deref;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use kernel::{
    alloc::KVec,
    lsm::{
        self,
        audit::{self, Data, Origin, Record},
        trace::{self, FsBlocker},
        UnixSock,
    },
    prelude::*,
    sync::Arc,
};

/// Who created a domain (for its allocation record).
struct Details {
    pid: i32,
    uid: u32,
    comm: [u8; 16],
    comm_len: usize,
    /// The executable's path, `None` without one.
    exe: Option<KVec<u8>>,
}

/// The logging state of one layer (C's `landlock_hierarchy`).
pub struct Hierarchy {
    parent: Option<Arc<Hierarchy>>,
    id: u64,
    status: AtomicU8,
    denials: AtomicU64,
    log_same_exec: bool,
    log_new_exec: bool,
    details: Details,
}

impl Hierarchy {
    fn status(&self) -> LogStatus {
        LogStatus::from_u8(self.status.load(Ordering::Relaxed))
    }

    /// Logs the domain's allocation, the first time one of its denials is logged.
    fn log_allocated(&self) {
        if self.status() == LogStatus::Recorded {
            return;
        }
        let Some(mut r) = Record::start(audit::AUDIT_LANDLOCK_DOMAIN, Origin::CurrentAtomic) else {
            return;
        };
        let d = &self.details;
        r.format(format_args!(
            "domain={:x} status=allocated mode=enforcing pid={} uid={} exe=",
            self.id, d.pid, d.uid
        ));
        match &d.exe {
            Some(exe) => r.untrusted(exe),
            None => r.untrusted(b"(null)"),
        }
        r.format(format_args!(" comm="));
        r.untrusted(d.comm.get(..d.comm_len).unwrap_or(&[]));
        drop(r);
        // Two threads may both log the domain: harmless, as in C.
        self.status
            .store(LogStatus::Recorded as u8, Ordering::Relaxed);
    }
}

impl Drop for Hierarchy {
    fn drop(&mut self) {
        // Every hierarchy belongs to a domain whose creation was traced (see `Domain::new`).
        trace::free_domain(self.id, self.denials.load(Ordering::Relaxed));
        // Only domains whose allocation was logged have their end logged. This runs from a
        // worker (see `kernel::lsm::Hooks::Cred`) or where a file owner is released: the
        // record is made without sleeping and belongs to no task.
        if self.status() != LogStatus::Recorded || !audit::enabled() {
            return;
        }
        if let Some(mut r) = Record::start(audit::AUDIT_LANDLOCK_DOMAIN, Origin::DetachedAtomic) {
            r.format(format_args!(
                "domain={:x} status=deallocated denials={}",
                self.id,
                self.denials.load(Ordering::Relaxed)
            ));
        }
    }
}

/// A domain as credentials hold it: the policy and the logging state of its layers.
pub struct Domain {
    policy: engine::Domain,
    hierarchy: Arc<Hierarchy>,
}

impl Deref for Domain {
    type Target = engine::Domain;
    fn deref(&self) -> &engine::Domain {
        &self.policy
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        // Does not sleep (a domain may be dropped under a file owner's lock, see
        // `kernel::lsm::Hooks::Cred`): the inodes left without holders are put by a work item.
        pins::release(self.policy.fs_keys());
    }
}

/// The next domain id (0: not initialised yet).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Sets the first domain id, at boot.
pub(crate) fn init_ids() {
    let _ = NEXT_ID.compare_exchange(
        0,
        engine::first_domain_id(lsm::random_u32()),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
}

/// A new, never used, domain id.
pub(crate) fn new_id() -> u64 {
    NEXT_ID.fetch_add(engine::domain_id_step(lsm::random_u8()), Ordering::Relaxed)
}

impl Domain {
    /// The policy.
    pub(crate) fn policy(&self) -> &engine::Domain {
        &self.policy
    }

    /// The id of this domain (its youngest layer).
    pub(crate) fn id(&self) -> u64 {
        self.hierarchy.id
    }

    /// Stacks `policy` (already merged, with id `id`) on `parent` as a domain created by the
    /// current task with `flags`; `parent_log_subdomains` as given by [`CredLog::restrict`].
    pub(crate) fn new(
        policy: engine::Domain,
        id: u64,
        parent: Option<&Domain>,
        flags: &RestrictFlags,
        parent_log_subdomains: bool,
    ) -> Result<Self> {
        let (comm, comm_len) = lsm::current_comm();
        let details = Details {
            pid: lsm::current_tgid_nr(),
            uid: lsm::current_uid(),
            comm,
            comm_len,
            exe: lsm::current_exe_path(GFP_KERNEL_ACCOUNT)?,
        };
        let status = engine::new_log_status(flags, parent_log_subdomains);
        let hierarchy = Arc::new(
            Hierarchy {
                parent: parent.map(|p| p.hierarchy.clone()),
                id,
                status: AtomicU8::new(status as u8),
                denials: AtomicU64::new(0),
                log_same_exec: flags.log_same_exec,
                log_new_exec: flags.log_new_exec,
                details,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        // Past the last point of failure: the domain holds the pins of the inodes of its rules
        // (the ruleset's and the parent's hold them meanwhile) until it is dropped.
        pins::hold(policy.fs_keys());
        Ok(Self { policy, hierarchy })
    }

    /// The logging state of layer `layer` (0: the oldest).
    fn hierarchy_at(&self, layer: usize) -> &Hierarchy {
        let mut h: &Hierarchy = &self.hierarchy;
        let mut up = self
            .policy
            .num_layers()
            .saturating_sub(1)
            .saturating_sub(layer);
        while up > 0 {
            match &h.parent {
                Some(p) => h = p,
                None => break,
            }
            up -= 1;
        }
        h
    }
}

/// What the trace event of a denial needs besides the audit data.
pub(crate) enum TraceInfo<'a> {
    /// Nothing more (filesystem denials: the object is the audit data's).
    None,
    /// The port checked by a network denial (host byte order; `None`: none).
    Port(Option<u16>),
    /// The domain of the other task of a ptrace or signal denial (0: none); the task is the
    /// audit data's.
    Domain(u64),
    /// The domain of the creator of the peer socket of an abstract UNIX socket denial (0:
    /// none) and the socket.
    Peer(u64, &'a UnixSock),
}

/// The id of `domain`, 0 for none (the trace events' convention).
pub(crate) fn id_of(domain: Option<&Domain>) -> u64 {
    domain.map_or(0, Domain::id)
}

/// Emits the trace event of a denial of `blocker` by the domain `id`.
fn trace_denial(
    id: u64,
    same_exec: bool,
    logged: bool,
    blocker: Blocker,
    data: &Data<'_>,
    info: TraceInfo<'_>,
) {
    match (blocker, info, data) {
        (Blocker::Fs(access), _, _) => {
            trace::deny_access_fs(id, same_exec, logged, FsBlocker::Access(access), data)
        }
        (Blocker::ChangeTopology, _, _) => {
            trace::deny_access_fs(id, same_exec, logged, FsBlocker::ChangeTopology, data)
        }
        (Blocker::Net(access), TraceInfo::Port(port), _) => {
            trace::deny_access_net(id, same_exec, logged, access, port)
        }
        (Blocker::Ptrace, TraceInfo::Domain(other), Data::Task(task)) => {
            trace::deny_ptrace(id, same_exec, logged, other, task)
        }
        (Blocker::ScopeSignal, TraceInfo::Domain(other), Data::Task(task)) => {
            trace::deny_scope_signal(id, same_exec, logged, other, task)
        }
        (Blocker::ScopeAbstractUnix, TraceInfo::Peer(other, sk), _) => {
            trace::deny_scope_abstract_unix_socket(id, same_exec, logged, other, sk)
        }
        _ => {}
    }
}

/// Accounts for a denial by layer `layer` of `domain`, whose credentials carry `log`, traces
/// it (with `info`) and logs it if that layer's domain asks for it and no quiet rule
/// (`object_quiet`: one of that layer was met for the object) or quiet mask silences it
/// (C's `landlock_log_denial`).
pub(crate) fn denial(
    domain: &Domain,
    log: CredLog,
    layer: usize,
    blocker: Blocker,
    object_quiet: bool,
    data: Data<'_>,
    info: TraceInfo<'_>,
) {
    let h = domain.hierarchy_at(layer);
    let quieted = engine::denial_quieted(blocker, domain.quiet_of(layer), object_quiet);
    let same_exec = log.same_exec(layer);
    let logged = engine::denial_logged(
        h.status(),
        same_exec,
        h.log_same_exec,
        h.log_new_exec,
        quieted,
    );
    // Counted even when not logged.
    h.denials.fetch_add(1, Ordering::Relaxed);
    trace_denial(h.id, same_exec, logged, blocker, &data, info);
    if !logged || !audit::enabled() {
        return;
    }
    let Some(mut r) = Record::start(audit::AUDIT_LANDLOCK_ACCESS, Origin::CurrentAtomic) else {
        return;
    };
    r.format(format_args!("domain={:x} blockers={}", h.id, blocker));
    r.lsm_data(&data);
    drop(r);
    h.log_allocated();
}
