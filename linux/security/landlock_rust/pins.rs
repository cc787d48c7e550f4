// SPDX-License-Identifier: GPL-2.0

//! Inodes with rules are pinned in memory, as the C Landlock's objects pin theirs.
//!
//! A filesystem rule names its inode by an id kept in the inode's security blob
//! (`syscalls::inode_id_or_new`); an inode evicted from the inode cache and read back would
//! come with a fresh blob, and the rule would no longer match. So, as long as a ruleset or a
//! domain has a rule on an inode, the inode is referenced ([`lsm::InodeRef`]): the registry
//! here maps each id to its inode and counts its holders, every ruleset (one count for each
//! inode it has a rule on, taken by `landlock_add_rule(2)`) and every domain (one count for
//! each inode of its merged rules, taken when it is created). A ruleset or domain gives its
//! counts back when it is freed.
//!
//! - A pin without holders is not put at once: rulesets and domains may be freed where
//!   sleeping is not allowed (a file owner's domain under its lock, a domain from an RCU
//!   callback when no work item could be allocated), and `iput` may sleep. It moves to the
//!   released pins, which a work item on `system_wq` puts. Counted again before that (a new
//!   rule on the inode), it is simply taken back.
//! - When a superblock is shut down (unmount), `sb_delete` removes and puts every pin of its
//!   inodes, held or not, after waiting for a work item that may be putting some of them, so
//!   that no inode stays referenced (else "Busy inodes after unmount"). The rules stay: their
//!   ids are never reused, so they match nothing any more, as C's objects whose inode is
//!   gone; their holders' counts are then given back to nothing (no-ops).
//!
//! The path walk of a check does not look at the registry: it reads the ids in the blobs.
//! Locks: the registry's tables are behind an interrupt-safe spinlock (a domain may be freed
//! from softirq context), never held while an inode is put or memory allocated; putting is
//! serialised by a mutex, taken by the work item and by `sb_delete` (with `s_umount` held),
//! under which nothing but `iput` runs. Landlock has no inode hook that could run during an
//! eviction, so putting an inode never calls back into the registry.

use crate::engine::{self, Errno};
use core::mem;
use kernel::{
    lsm::{Inode, InodeRef, SuperBlock},
    new_mutex, new_spinlock_irq,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{Arc, Mutex, SetOnce, SpinLockIrq},
    workqueue,
};

/// A pinned inode and the number of rulesets and domains that have a rule on it.
struct Pinned {
    inode: InodeRef,
    holders: usize,
}

/// The pins, by inode id. An id is in at most one of the two trees.
struct Tables {
    /// Pins with holders.
    held: RBTree<u64, Pinned>,
    /// Pins whose last holder is gone, to be put by the work item.
    released: RBTree<u64, Pinned>,
    /// A work item to put the released pins is queued.
    queued: bool,
}

impl Tables {
    /// Counts one more holder of the pin of `id`, if it is still pinned.
    fn hold(&mut self, id: u64) -> bool {
        if let Some(p) = self.held.get_mut(&id) {
            p.holders = p.holders.saturating_add(1);
            return true;
        }
        // Released by its last holder but not put yet: held again.
        let Some(node) = self.released.remove_node(&id) else {
            return false;
        };
        // Not in `held` (checked above): nothing is replaced.
        let _none = self.held.insert(node);
        if let Some(p) = self.held.get_mut(&id) {
            p.holders = 1;
        }
        true
    }

    /// Counts one holder less of the pin of `id` (nothing if it is not pinned any more).
    fn unhold(&mut self, id: u64) {
        let last = match self.held.get_mut(&id) {
            Some(p) => {
                p.holders = p.holders.saturating_sub(1);
                p.holders == 0
            }
            None => return,
        };
        if last {
            if let Some(node) = self.held.remove_node(&id) {
                // Not in `released` (an id is in one tree): nothing is replaced.
                let _none = self.released.insert(node);
            }
        }
    }
}

/// How many pins are looked at under one hold of the spinlock (interrupts are off meanwhile):
/// a domain may have thousands of rules.
const BATCH: usize = 256;

/// Moves the pins of inodes on `sb` from `from` to `to` (which has none of `from`'s ids),
/// looking at the pins from id `start` on, [`BATCH`] at most. Returns the id to go on from,
/// `None` when every pin was looked at.
fn move_pins_of(
    from: &mut RBTree<u64, Pinned>,
    to: &mut RBTree<u64, Pinned>,
    sb: &SuperBlock,
    start: u64,
) -> Option<u64> {
    let mut cursor = from.cursor_lower_bound_mut(&start);
    let mut left = BATCH;
    while let Some(c) = cursor {
        let (&id, pinned) = c.current();
        if left == 0 {
            return Some(id);
        }
        left -= 1;
        if pinned.inode.is_on(sb) {
            let (next, node) = c.remove_current();
            let _none = to.insert(node);
            // The next pin, or the previous one (already looked at) after the last.
            cursor = next;
        } else {
            cursor = c.move_next();
        }
    }
    None
}

#[pin_data]
struct Registry {
    #[pin]
    tables: SpinLockIrq<Tables>,
    /// Held while released pins are put (work item, `sb_delete`).
    #[pin]
    putting: Mutex<()>,
}

static REGISTRY: SetOnce<Arc<Registry>> = SetOnce::new();

fn registry() -> Option<&'static Registry> {
    REGISTRY.as_ref().map(|r| &**r)
}

/// Sets the registry up, at boot.
pub(crate) fn init() -> Result {
    let r = Arc::pin_init(
        pin_init!(Registry {
            tables <- new_spinlock_irq!(
                Tables {
                    held: RBTree::new(),
                    released: RBTree::new(),
                    queued: false,
                },
                "landlock_pins"
            ),
            putting <- new_mutex!((), "landlock_pins_put"),
        }),
        GFP_KERNEL,
    )?;
    REGISTRY.populate(r);
    Ok(())
}

/// Pins `inode`, whose id is `id`, for one more holder: a ruleset's first rule on it.
/// `ENOMEM` if the pin cannot be recorded.
pub(crate) fn pin(id: u64, inode: &Inode) -> Result<(), Errno> {
    let reg = registry().ok_or(engine::ENOMEM)?;
    // Taken before the lock (`igrab` takes the inode's lock); the caller holds the inode
    // through a file, so it is not being freed.
    let iref = InodeRef::new(inode).ok_or(engine::EBADFD)?;
    let mut reservation = Some(
        RBTreeNodeReservation::<u64, Pinned>::new(GFP_KERNEL_ACCOUNT)
            .map_err(|_| engine::ENOMEM)?,
    );
    let mut spare = Some(iref);
    {
        let mut t = reg.tables.lock();
        if !t.hold(id) {
            if let (Some(r), Some(iref)) = (reservation.take(), spare.take()) {
                let pinned = Pinned {
                    inode: iref,
                    holders: 1,
                };
                // Not in either tree (`hold` failed): nothing is replaced.
                let _none = t.held.insert(r.into_node(id, pinned));
            }
        }
    }
    // Outside the lock: the unused reservation, and the spare reference (never the inode's
    // last: the pin and the caller's file hold it).
    drop(reservation);
    drop(spare);
    Ok(())
}

/// Counts one more holder for each pinned inode of `ids` (a new domain's rules; an id whose
/// pin was removed by `sb_delete` is left out). Does not sleep.
pub(crate) fn hold(ids: impl Iterator<Item = u64>) {
    let Some(reg) = registry() else {
        return;
    };
    let mut ids = ids.peekable();
    while ids.peek().is_some() {
        let mut t = reg.tables.lock();
        for id in ids.by_ref().take(BATCH) {
            t.hold(id);
        }
    }
}

/// Gives back one holder's count for each of `ids` (a ruleset or domain being freed, or a
/// rule that could not be added). Does not sleep: pins left without holders are put by a
/// work item.
pub(crate) fn release(ids: impl Iterator<Item = u64>) {
    let Some(reg) = registry() else {
        return;
    };
    let mut ids = ids.peekable();
    let mut queue = false;
    while ids.peek().is_some() {
        let mut t = reg.tables.lock();
        for id in ids.by_ref().take(BATCH) {
            t.unhold(id);
        }
        if !t.released.is_empty() && !t.queued {
            t.queued = true;
            queue = true;
        }
    }
    // `GFP_ATOMIC`: this may run where sleeping is not allowed. Without memory, the pins wait
    // for the next release's work item or their superblock's shutdown.
    if queue
        && workqueue::system()
            .try_spawn(GFP_ATOMIC, put_released)
            .is_err()
    {
        reg.tables.lock().queued = false;
    }
}

/// The work item: puts the released pins.
fn put_released() {
    let Some(reg) = registry() else {
        return;
    };
    let _putting = reg.putting.lock();
    let released = {
        let mut t = reg.tables.lock();
        t.queued = false;
        mem::take(&mut t.released)
    };
    // `iput`s, outside the spinlock.
    drop(released);
}

/// `sb_delete`: puts every pin of an inode of `sb`, which is being shut down.
pub(crate) fn sb_delete(sb: &SuperBlock) {
    let Some(reg) = registry() else {
        return;
    };
    // A work item may be putting released pins, some perhaps on `sb`: they are put when the
    // lock is ours.
    let _putting = reg.putting.lock();
    let mut gone = RBTree::new();
    for released in [false, true] {
        let mut next = Some(0);
        while let Some(start) = next {
            let mut t = reg.tables.lock();
            let t = &mut *t;
            let from = if released {
                &mut t.released
            } else {
                &mut t.held
            };
            next = move_pins_of(from, &mut gone, sb, start);
        }
    }
    // `iput`s, outside the spinlock.
    drop(gone);
}
