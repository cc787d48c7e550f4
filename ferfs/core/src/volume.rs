//! The volume: superblocks, checksummed copy-on-write B-trees with DUP
//! metadata, block allocation and transaction commit.

use crate::format::*;
use crate::host::{BlockDevice, Error, Host, Result};
use crate::node::{self, corrupt, LeafBuilder, NodeBuilder};
use crate::space::Space;
use core::cell::Cell;
use zerocopy::{FromBytes, IntoBytes};

/// Header magic of superblocks (first 4 bytes of `SUPER_MAGIC`).
const SUPER_HDR_MAGIC: [u8; 4] = [b'F', b'e', b'R', b'f'];

/// Root of one tree.
#[derive(Clone, Copy, Debug)]
pub struct TreeRoot {
    pub ptr: BlockPtr,
    pub level: u8,
    pub owner: u64,
}

/// Parameters chosen at mkfs.
#[derive(Clone, Copy, Debug)]
pub struct MkfsOptions {
    pub fsid: [u8; 16],
    pub csum: CsumType,
    pub dup_metadata: bool,
    pub compression: Compression,
    pub label: [u8; 64],
    /// Use only this many blocks of the device (0: all of it).
    pub total_blocks: u64,
}

/// Mount-time options.
#[derive(Clone, Copy, Debug)]
pub struct MountOptions {
    pub read_only: bool,
    /// Rewrite a bad metadata copy from the good one when reading.
    pub repair: bool,
    /// Compression for new data; `None` uses the superblock default.
    pub compression: Option<Compression>,
}

impl MountOptions {
    /// Look without touching: no writes, and no repair of bad metadata copies.
    pub const fn inspect() -> Self {
        MountOptions {
            read_only: true,
            repair: false,
            compression: None,
        }
    }
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            read_only: false,
            repair: true,
            compression: None,
        }
    }
}

/// Facts from the superblock.
#[derive(Clone, Copy, Debug)]
pub struct SuperInfo {
    pub fsid: [u8; 16],
    pub csum: CsumType,
    pub dup: bool,
    pub compression: Compression,
    pub total_blocks: u64,
    pub reserve_blocks: u64,
    pub generation: u64,
    pub mkfs_time: i64,
    pub label: [u8; 64],
    /// Read-only-compatible feature bits found in the superblock.
    pub ro_compat: u64,
}

/// Counters of what reads found and fixed.
#[derive(Default)]
pub struct Stats {
    /// Metadata copies that failed verification.
    pub meta_bad_copies: Cell<u64>,
    /// Bad metadata copies rewritten from the good copy.
    pub meta_repaired: Cell<u64>,
    /// Data extents that failed their checksum.
    pub data_bad: Cell<u64>,
    /// Superblock copies that were missing or corrupt.
    pub super_bad: Cell<u64>,
    /// Valid superblock copies older than the newest (an interrupted commit).
    pub super_stale: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get().saturating_add(1));
}

/// Result of modifying a subtree.
enum Outcome {
    /// The subtree became empty (its node was freed).
    Empty,
    /// New first key and pointer of the subtree, and whether its root
    /// node is under a third full (a candidate for merging).
    One(Key, BlockPtr, bool),
    /// The node split in two.
    Two(Key, BlockPtr, Key, BlockPtr),
}

/// What to do at a key.
#[derive(Clone, Copy)]
pub enum Op<'a> {
    /// Add; fails with `Exists` if the key is present.
    Insert(&'a [u8]),
    /// Change the data; fails with `NotFound` if absent.
    Replace(&'a [u8]),
    /// Insert or replace.
    Upsert(&'a [u8]),
    /// Remove; fails with `NotFound` if absent.
    Delete,
}

/// Receives everything a full tree walk sees.
pub trait Visitor {
    /// A node (already verified) at `level` with its pointer.
    fn node(&mut self, owner: u64, ptr: &BlockPtr, level: u8) -> Result<()>;
    /// A leaf item.
    fn item(&mut self, owner: u64, key: Key, data: &[u8]) -> Result<()>;
}

pub struct Volume<D: BlockDevice, H: Host> {
    pub(crate) dev: D,
    pub(crate) host: H,
    pub(crate) info: SuperInfo,
    /// Generation of the open transaction (last committed + 1).
    pub(crate) generation: u64,
    pub(crate) root_tree: TreeRoot,
    pub(crate) fs_tree: TreeRoot,
    pub(crate) next_ino: u64,
    pub(crate) inode_count: u64,
    pub(crate) space: Space<H::Buf>,
    pub(crate) dirty: bool,
    /// Set when an operation failed half way; nothing more is committed.
    pub(crate) broken: bool,
    pub(crate) opts: MountOptions,
    pub stats: Stats,
    /// Leaf block of the item most recently returned by a search or walk,
    /// so item-level corruption errors can name their block.
    pub(crate) last_leaf: Cell<u64>,
}

/// A reference to a sub-range of a host buffer.
pub fn sub(buf: &[u8], start: usize, len: usize) -> Result<&[u8]> {
    node::bytes(buf, start, len, 0)
}

impl<D: BlockDevice, H: Host> Volume<D, H> {
    // ----- small helpers -------------------------------------------------

    pub fn info(&self) -> &SuperInfo {
        &self.info
    }
    pub fn device(&self) -> &D {
        &self.dev
    }
    pub fn host(&self) -> &H {
        &self.host
    }
    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn fs_tree(&self) -> TreeRoot {
        self.fs_tree
    }
    pub fn root_tree(&self) -> TreeRoot {
        self.root_tree
    }
    pub fn space(&self) -> &Space<H::Buf> {
        &self.space
    }
    pub fn next_ino(&self) -> u64 {
        self.next_ino
    }
    pub fn inode_count(&self) -> u64 {
        self.inode_count
    }
    /// Block of the leaf that held the last item read (for error reports).
    pub(crate) fn leaf(&self) -> u64 {
        self.last_leaf.get()
    }

    pub fn is_read_only(&self) -> bool {
        self.opts.read_only || self.broken
    }

    pub(crate) fn block_buf(&self) -> Result<H::Buf> {
        let b = self.host.alloc(BLOCK_SIZE)?;
        if b.as_ref().len() != BLOCK_SIZE {
            return Err(Error::NoMem);
        }
        Ok(b)
    }

    fn csum_of(&self, data: &[u8]) -> Result<[u8; 32]> {
        let mut c = self.host.checksum(self.info.csum, data)?;
        // Only the algorithm's bytes are significant; keep the rest zero.
        if let Some(rest) = c.get_mut(self.info.csum.sig_len()..) {
            rest.fill(0);
        }
        Ok(c)
    }

    /// Checksum of a metadata block: everything after the csum field.
    fn block_csum(&self, buf: &[u8]) -> Result<[u8; 32]> {
        self.csum_of(node::bytes(buf, 32, BLOCK_SIZE - 32, 0)?)
    }

    /// Checksum for data of any length (data extents).
    pub(crate) fn data_csum(&self, data: &[u8]) -> Result<[u8; 32]> {
        self.csum_of(data)
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.is_read_only() {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// Fail with ENOSPC unless `data_blocks` plus worst-case metadata for
    /// `tree_ops` modifications can be allocated without touching the
    /// reserve. Commits first if that frees pinned blocks.
    pub(crate) fn ensure_space(&mut self, data_blocks: u64, tree_ops: u64) -> Result<()> {
        self.ensure(data_blocks, tree_ops, self.info.reserve_blocks, true)
    }

    /// Like `ensure_space` for operations that free space (unlink,
    /// truncate, punch hole): they may dip into the reserve, so a full
    /// filesystem can always be emptied.
    pub(crate) fn ensure_space_freeing(&mut self, data_blocks: u64, tree_ops: u64) -> Result<()> {
        self.ensure(data_blocks, tree_ops, 0, true)
    }

    /// Space check in the middle of an operation: never commits, because
    /// the half-done operation is not a consistent state to commit.
    pub(crate) fn ensure_space_in_op(
        &mut self,
        data_blocks: u64,
        tree_ops: u64,
        freeing: bool,
    ) -> Result<()> {
        let keep = if freeing { 0 } else { self.info.reserve_blocks };
        self.ensure(data_blocks, tree_ops, keep, false)
    }

    /// Metadata blocks `tree_ops` changes of the fs tree plus the commit's
    /// root tree update may need at worst: each change copies its path and
    /// may split every node on it and add a root (2 blocks per level + 2),
    /// times the number of copies.
    fn meta_need(&self, tree_ops: u64) -> u64 {
        let copies: u64 = if self.info.dup { 2 } else { 1 };
        let per_fs = (u64::from(self.fs_tree.level) + 2)
            .saturating_mul(2)
            .saturating_mul(copies);
        let per_root = (u64::from(self.root_tree.level) + 2)
            .saturating_mul(2)
            .saturating_mul(copies);
        per_fs.saturating_mul(tree_ops).saturating_add(per_root)
    }

    /// Only call with `may_commit` before an operation changed anything.
    fn ensure(
        &mut self,
        data_blocks: u64,
        tree_ops: u64,
        keep: u64,
        may_commit: bool,
    ) -> Result<()> {
        let need = data_blocks
            .saturating_add(self.meta_need(tree_ops))
            .saturating_add(keep);
        if self.space.available() >= need {
            return Ok(());
        }
        if may_commit && self.space.free_after_commit() >= need && self.dirty {
            self.commit()?;
            if self.space.available() >= need {
                return Ok(());
            }
        }
        Err(Error::NoSpace)
    }

    /// An operation that already changed trees cannot finish: stop
    /// committing so its partial state never becomes durable.
    pub(crate) fn abort_op(&mut self, e: Error) -> Error {
        self.broken = true;
        e
    }

    // ----- metadata block I/O -----------------------------------------

    /// Verify a metadata block read from `at` against its pointer.
    #[allow(clippy::too_many_arguments)]
    fn verify_node(
        &self,
        buf: &[u8],
        at: u64,
        ptr: &BlockPtr,
        owner: u64,
        level: u8,
        lo: Option<Key>,
        hi: Option<Key>,
    ) -> Result<()> {
        let h = node::header(buf, at)?;
        let csum = self.block_csum(buf)?;
        if csum != h.csum {
            return Err(corrupt(at, "checksum mismatch"));
        }
        if h.csum != ptr.csum {
            return Err(corrupt(
                at,
                "checksum differs from parent's record (lost or misdirected write)",
            ));
        }
        if h.fsid != self.info.fsid {
            return Err(corrupt(at, "block belongs to another filesystem"));
        }
        if h.addr != ptr.addr || h.mirror != ptr.mirror {
            return Err(corrupt(at, "block address mismatch (misdirected write)"));
        }
        if h.generation != ptr.generation {
            return Err(corrupt(at, "generation differs from parent's record"));
        }
        if h.owner.get() != owner {
            return Err(corrupt(at, "block owned by another tree"));
        }
        node::validate(buf, at, level, lo, hi)
    }

    fn check_ptr(&self, ptr: &BlockPtr, from: u64) -> Result<()> {
        let ok = |a: u64| a >= FIRST_USABLE_BLOCK && a < self.info.total_blocks;
        let a = ptr.addr.get();
        let m = ptr.mirror.get();
        if !ok(a) || (m != 0 && (!ok(m) || m == a)) || (self.info.dup && m == 0) {
            return Err(corrupt(from, "child pointer outside the device"));
        }
        if ptr.generation.get() > self.generation {
            return Err(corrupt(from, "child pointer from the future"));
        }
        Ok(())
    }

    /// Read and verify a metadata block, falling back to the DUP copy and
    /// rewriting the bad copy when repair is enabled.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn read_node(
        &self,
        ptr: &BlockPtr,
        owner: u64,
        level: u8,
        lo: Option<Key>,
        hi: Option<Key>,
        buf: &mut [u8],
        from: u64,
    ) -> Result<()> {
        self.check_ptr(ptr, from)?;
        let primary = ptr.addr.get();
        let Err(first_err) = self.read_copy(primary, ptr, owner, level, lo, hi, buf) else {
            return Ok(());
        };
        bump(&self.stats.meta_bad_copies);
        let mirror = ptr.mirror.get();
        if mirror == 0 {
            return Err(first_err);
        }
        if self
            .read_copy(mirror, ptr, owner, level, lo, hi, buf)
            .is_err()
        {
            bump(&self.stats.meta_bad_copies);
            return Err(first_err);
        }
        self.rewrite_bad_copy(primary, buf)
    }

    /// Read one copy (`at`: the primary or the mirror) of the block `ptr`
    /// names, and verify it.
    #[allow(clippy::too_many_arguments)]
    fn read_copy(
        &self,
        at: u64,
        ptr: &BlockPtr,
        owner: u64,
        level: u8,
        lo: Option<Key>,
        hi: Option<Key>,
        buf: &mut [u8],
    ) -> Result<()> {
        self.dev.read(at, buf)?;
        self.verify_node(buf, at, ptr, owner, level, lo, hi)
    }

    /// Overwrite a copy that failed verification with a good one, when the
    /// mount allows repairs.
    fn rewrite_bad_copy(&self, at: u64, good: &[u8]) -> Result<()> {
        if self.opts.repair && !self.opts.read_only {
            self.dev.write(at, good)?;
            bump(&self.stats.meta_repaired);
        }
        Ok(())
    }

    /// Check both copies of a metadata block (scrub); returns how many
    /// were bad and repairs them if allowed. `buf` ends holding a good copy.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn scrub_node(
        &self,
        ptr: &BlockPtr,
        owner: u64,
        level: u8,
        lo: Option<Key>,
        hi: Option<Key>,
        buf: &mut [u8],
        from: u64,
    ) -> Result<()> {
        self.read_node(ptr, owner, level, lo, hi, buf, from)?;
        let mirror = ptr.mirror.get();
        if mirror == 0 {
            return Ok(());
        }
        let mut other = self.block_buf()?;
        if self
            .read_copy(mirror, ptr, owner, level, lo, hi, other.as_mut())
            .is_err()
        {
            bump(&self.stats.meta_bad_copies);
            self.rewrite_bad_copy(mirror, buf)?;
        }
        Ok(())
    }

    /// Allocate blocks for a metadata node: (primary, mirror or 0).
    fn alloc_meta(&mut self) -> Result<(u64, u64)> {
        let a = self.space.alloc(1)?;
        if !self.info.dup {
            return Ok((a, 0));
        }
        match self.space.alloc(1) {
            Ok(m) => Ok((a, m)),
            Err(e) => {
                self.space.free(a, 1)?;
                Err(e)
            }
        }
    }

    pub(crate) fn free_meta(&mut self, ptr: &BlockPtr) -> Result<()> {
        self.space.free(ptr.addr.get(), 1)?;
        if ptr.mirror.get() != 0 {
            self.space.free(ptr.mirror.get(), 1)?;
        }
        Ok(())
    }

    /// Write a node built in `buf`, copy-on-write: a block already written
    /// in this transaction is rewritten in place, anything older gets new
    /// blocks and the old ones are freed.
    fn write_node(
        &mut self,
        buf: &mut [u8],
        old: Option<&BlockPtr>,
        owner: u64,
    ) -> Result<BlockPtr> {
        let (addr, mirror) = match old {
            Some(p) if p.generation.get() == self.generation => (p.addr.get(), p.mirror.get()),
            _ => {
                let fresh = self.alloc_meta()?;
                if let Some(p) = old {
                    self.free_meta(p)?;
                }
                fresh
            }
        };
        let mut h = node::header(buf, addr)?;
        h.fsid = self.info.fsid;
        h.addr = addr.into();
        h.mirror = mirror.into();
        h.generation = self.generation.into();
        h.owner = owner.into();
        node::write_at(buf, 0, &h)?;
        let csum = self.block_csum(buf)?;
        h.csum = csum;
        node::write_at(buf, 0, &h)?;
        self.dev.write(addr, buf)?;
        if mirror != 0 {
            self.dev.write(mirror, buf)?;
        }
        self.dirty = true;
        Ok(BlockPtr {
            addr: addr.into(),
            mirror: mirror.into(),
            generation: self.generation.into(),
            csum,
        })
    }

    // ----- tree reads -------------------------------------------------

    /// Find the first item with key >= `key`. On success `buf` holds the
    /// leaf and the result is (key, item index in that leaf).
    pub fn search_ge(
        &self,
        tree: &TreeRoot,
        key: Key,
        buf: &mut [u8],
    ) -> Result<Option<(Key, usize)>> {
        let mut target = key;
        // Each restart moves `target` to a strictly larger separator key,
        // so the loop ends; the bound is a belt-and-braces guard.
        for _ in 0..u32::MAX {
            let mut ptr = tree.ptr;
            let mut level = tree.level;
            let mut lo: Option<Key> = None;
            let mut hi: Option<Key> = None;
            let mut from = 0u64;
            loop {
                self.read_node(&ptr, tree.owner, level, lo, hi, buf, from)?;
                from = ptr.addr.get();
                if level == 0 {
                    break;
                }
                let slot = node::child_slot(buf, &target, from)?;
                let n = node::nritems(buf, from)?;
                let (k, p) = node::node_entry(buf, slot, from)?;
                if let Some(next) = slot.checked_add(1).filter(|s| *s < n) {
                    hi = Some(node::node_entry(buf, next, from)?.0);
                }
                lo = Some(k);
                ptr = p;
                level = level
                    .checked_sub(1)
                    .ok_or(corrupt(from, "level underflow"))?;
            }
            self.last_leaf.set(from);
            let pos = node::search(buf, 0, &target, from)?;
            if pos.index < node::nritems(buf, from)? {
                let k = node::key_at(buf, 0, pos.index, from)?;
                return Ok(Some((k, pos.index)));
            }
            match hi {
                Some(h) if h > target => target = h,
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Copy the data of the item at exactly `key` into `out`; returns its
    /// length, or `None` if absent. `out` must be large enough.
    pub fn lookup(&self, tree: &TreeRoot, key: Key, out: &mut [u8]) -> Result<Option<usize>> {
        let mut leaf = self.block_buf()?;
        let lb = leaf.as_mut();
        match self.search_ge(tree, key, lb)? {
            Some((k, idx)) if k == key => {
                let (_, data) = node::leaf_item(lb, idx, 0)?;
                let dst = out.get_mut(..data.len()).ok_or(Error::Invalid)?;
                dst.copy_from_slice(data);
                Ok(Some(data.len()))
            }
            _ => Ok(None),
        }
    }

    /// Look up a fixed-size item.
    pub fn lookup_struct<T: FromBytes + zerocopy::KnownLayout + zerocopy::Immutable + Copy>(
        &self,
        tree: &TreeRoot,
        key: Key,
    ) -> Result<Option<T>> {
        let mut leaf = self.block_buf()?;
        let lb = leaf.as_mut();
        match self.search_ge(tree, key, lb)? {
            Some((k, idx)) if k == key => {
                let (_, data) = node::leaf_item(lb, idx, 0)?;
                let v = T::read_from_bytes(data)
                    .map_err(|_| corrupt(self.leaf(), "item has the wrong size"))?;
                Ok(Some(v))
            }
            _ => Ok(None),
        }
    }

    /// Walk every node and item of a tree depth-first, in key order.
    pub fn walk(&self, tree: &TreeRoot, v: &mut dyn Visitor, scrub: bool) -> Result<()> {
        self.walk_rec(&tree.ptr, tree.owner, tree.level, None, None, 0, v, scrub)
    }

    #[allow(clippy::too_many_arguments)]
    fn walk_rec(
        &self,
        ptr: &BlockPtr,
        owner: u64,
        level: u8,
        lo: Option<Key>,
        hi: Option<Key>,
        from: u64,
        v: &mut dyn Visitor,
        scrub: bool,
    ) -> Result<()> {
        let mut b = self.block_buf()?;
        let buf = b.as_mut();
        if scrub {
            self.scrub_node(ptr, owner, level, lo, hi, buf, from)?;
        } else {
            self.read_node(ptr, owner, level, lo, hi, buf, from)?;
        }
        v.node(owner, ptr, level)?;
        let at = ptr.addr.get();
        let n = node::nritems(buf, at)?;
        for i in 0..n {
            if level == 0 {
                let (k, data) = node::leaf_item(buf, i, at)?;
                self.last_leaf.set(at);
                v.item(owner, k, data)?;
            } else {
                let (k, p) = node::node_entry(buf, i, at)?;
                let next_hi = match i.checked_add(1).filter(|x| *x < n) {
                    Some(j) => Some(node::node_entry(buf, j, at)?.0),
                    None => hi,
                };
                let child_level = level.checked_sub(1).ok_or(corrupt(at, "level underflow"))?;
                self.walk_rec(&p, owner, child_level, Some(k), next_hi, at, v, scrub)?;
            }
        }
        Ok(())
    }

    // ----- tree modification -----------------------------------------

    /// Apply `op` at `key` in the tree `which` (TREE_FS or TREE_ROOT).
    pub(crate) fn modify(&mut self, which: u64, key: Key, op: Op<'_>) -> Result<()> {
        self.check_writable()?;
        let data_len = match op {
            Op::Insert(d) | Op::Replace(d) | Op::Upsert(d) => d.len(),
            Op::Delete => 0,
        };
        if data_len > MAX_ITEM_DATA {
            return Err(Error::TooBig);
        }
        let tree = if which == TREE_ROOT {
            self.root_tree
        } else {
            self.fs_tree
        };
        let res = self.modify_tree(tree, key, op);
        match res {
            Ok(new_root) => {
                if which == TREE_ROOT {
                    self.root_tree = new_root;
                } else {
                    self.fs_tree = new_root;
                }
                Ok(())
            }
            // These are found at the leaf before anything is written.
            Err(e @ (Error::NotFound | Error::Exists)) => Err(e),
            Err(e) => {
                // A half-applied change may have rewritten blocks of this
                // transaction: stop committing; the last commit stays intact.
                self.broken = true;
                Err(e)
            }
        }
    }

    fn modify_tree(&mut self, tree: TreeRoot, key: Key, op: Op<'_>) -> Result<TreeRoot> {
        let out = self.modify_rec(&tree.ptr, tree.owner, tree.level, None, None, &key, op, 0)?;
        let mut root = tree;
        match out {
            Outcome::Empty => {
                let mut b = self.block_buf()?;
                LeafBuilder::new(b.as_mut())?;
                root.ptr = self.write_node(b.as_mut(), None, tree.owner)?;
                root.level = 0;
            }
            Outcome::One(_, p, _) => {
                root.ptr = p;
                // Collapse internal roots with a single child.
                let mut b = self.block_buf()?;
                while root.level > 0 {
                    self.read_node(&root.ptr, root.owner, root.level, None, None, b.as_mut(), 0)?;
                    let at = root.ptr.addr.get();
                    if node::nritems(b.as_ref(), at)? != 1 {
                        break;
                    }
                    let (_, child) = node::node_entry(b.as_ref(), 0, at)?;
                    self.free_meta(&root.ptr)?;
                    root.ptr = child;
                    root.level = root
                        .level
                        .checked_sub(1)
                        .ok_or(corrupt(at, "level underflow"))?;
                }
            }
            Outcome::Two(k1, p1, k2, p2) => {
                let level = tree
                    .level
                    .checked_add(1)
                    .filter(|l| *l < MAX_LEVEL)
                    .ok_or(Error::NoSpace)?;
                let mut b = self.block_buf()?;
                {
                    let mut nb = NodeBuilder::new(b.as_mut(), level)?;
                    nb.push(k1, &p1)?;
                    nb.push(k2, &p2)?;
                }
                root.ptr = self.write_node(b.as_mut(), None, tree.owner)?;
                root.level = level;
            }
        }
        Ok(root)
    }

    #[allow(clippy::too_many_arguments)]
    fn modify_rec(
        &mut self,
        ptr: &BlockPtr,
        owner: u64,
        level: u8,
        lo: Option<Key>,
        hi: Option<Key>,
        key: &Key,
        op: Op<'_>,
        from: u64,
    ) -> Result<Outcome> {
        let mut src = self.block_buf()?;
        self.read_node(ptr, owner, level, lo, hi, src.as_mut(), from)?;
        let at = ptr.addr.get();
        if level == 0 {
            return self.modify_leaf(ptr, owner, src.as_ref(), key, op);
        }
        let sb = src.as_ref();
        let n = node::nritems(sb, at)?;
        let slot = node::child_slot(sb, key, at)?;
        let (ck, cp) = node::node_entry(sb, slot, at)?;
        let child_hi = match slot.checked_add(1).filter(|s| *s < n) {
            Some(j) => Some(node::node_entry(sb, j, at)?.0),
            None => hi,
        };
        let child_level = level.checked_sub(1).ok_or(corrupt(at, "level underflow"))?;
        let out = self.modify_rec(&cp, owner, child_level, Some(ck), child_hi, key, op, at)?;
        // New entry list: the old one with `rc` entries at `rs` replaced by
        // `repl_n` entries.
        let mut repl: [(Key, BlockPtr); 2] = [(ck, cp), (ck, cp)];
        let (mut rs, mut rc) = (slot, 1usize);
        let repl_n = match out {
            Outcome::Empty => 0usize,
            Outcome::One(k, p, underfull) => {
                repl[0] = (k, p);
                // Merge an under-full child with a sibling when both fit
                // in one node, so deletes keep the tree compact.
                if underfull && n > 1 {
                    let (l, r) = if slot.saturating_add(1) < n {
                        ((k, p), node::node_entry(sb, slot.saturating_add(1), at)?)
                    } else {
                        (node::node_entry(sb, slot.saturating_sub(1), at)?, (k, p))
                    };
                    if let Some(m) = self.try_merge(owner, child_level, l, r, at)? {
                        repl[0] = m;
                        rs = if slot.saturating_add(1) < n {
                            slot
                        } else {
                            slot.saturating_sub(1)
                        };
                        rc = 2;
                    }
                }
                1
            }
            Outcome::Two(k1, p1, k2, p2) => {
                repl = [(k1, p1), (k2, p2)];
                2
            }
        };
        let total = n.saturating_sub(rc).saturating_add(repl_n);
        let entry = |i: usize| -> Result<(Key, BlockPtr)> {
            if i < rs {
                node::node_entry(sb, i, at)
            } else if i < rs.saturating_add(repl_n) {
                repl.get(i.saturating_sub(rs))
                    .copied()
                    .ok_or(Error::Invalid)
            } else {
                // i >= rs + repl_n, so i + rc - repl_n >= rs + rc.
                let j = i.saturating_add(rc).saturating_sub(repl_n);
                node::node_entry(sb, j, at)
            }
        };
        if total == 0 {
            self.free_meta(ptr)?;
            return Ok(Outcome::Empty);
        }
        let mut out_buf = self.block_buf()?;
        if total <= MAX_NODE_ENTRIES {
            let first = entry(0)?.0;
            {
                let mut nb = NodeBuilder::new(out_buf.as_mut(), level)?;
                for i in 0..total {
                    let (k, p) = entry(i)?;
                    nb.push(k, &p)?;
                }
            }
            let p = self.write_node(out_buf.as_mut(), Some(ptr), owner)?;
            return Ok(Outcome::One(first, p, total < MAX_NODE_ENTRIES / 3));
        }
        let half = total / 2;
        let mut right_buf = self.block_buf()?;
        {
            let mut left = NodeBuilder::new(out_buf.as_mut(), level)?;
            for i in 0..half {
                let (k, p) = entry(i)?;
                left.push(k, &p)?;
            }
            let mut right = NodeBuilder::new(right_buf.as_mut(), level)?;
            for i in half..total {
                let (k, p) = entry(i)?;
                right.push(k, &p)?;
            }
        }
        let k1 = entry(0)?.0;
        let k2 = entry(half)?.0;
        let p1 = self.write_node(out_buf.as_mut(), Some(ptr), owner)?;
        let p2 = self.write_node(right_buf.as_mut(), None, owner)?;
        Ok(Outcome::Two(k1, p1, k2, p2))
    }

    /// Merge two adjacent children (`l` left of `r`) into one node if
    /// their contents fit; frees the right one. Returns the merged entry.
    fn try_merge(
        &mut self,
        owner: u64,
        level: u8,
        l: (Key, BlockPtr),
        r: (Key, BlockPtr),
        from: u64,
    ) -> Result<Option<(Key, BlockPtr)>> {
        let mut lb = self.block_buf()?;
        let mut rb = self.block_buf()?;
        self.read_node(&l.1, owner, level, Some(l.0), Some(r.0), lb.as_mut(), from)?;
        self.read_node(&r.1, owner, level, Some(r.0), None, rb.as_mut(), from)?;
        let (la, ra) = (l.1.addr.get(), r.1.addr.get());
        let ln = node::nritems(lb.as_ref(), la)?;
        let rn = node::nritems(rb.as_ref(), ra)?;
        let mut out = self.block_buf()?;
        if level == 0 {
            let mut bytes = 0usize;
            for (b, n, a) in [(lb.as_ref(), ln, la), (rb.as_ref(), rn, ra)] {
                for i in 0..n {
                    bytes =
                        bytes.saturating_add(node::leaf_cost(node::leaf_item(b, i, a)?.1.len()));
                }
            }
            if bytes > BLOCK_SIZE - HEADER_SIZE {
                return Ok(None);
            }
            let mut w = LeafBuilder::new(out.as_mut())?;
            for (b, n, a) in [(lb.as_ref(), ln, la), (rb.as_ref(), rn, ra)] {
                for i in 0..n {
                    let (k, d) = node::leaf_item(b, i, a)?;
                    w.push(k, d)?;
                }
            }
        } else {
            if ln.saturating_add(rn) > MAX_NODE_ENTRIES {
                return Ok(None);
            }
            let mut w = NodeBuilder::new(out.as_mut(), level)?;
            for (b, n, a) in [(lb.as_ref(), ln, la), (rb.as_ref(), rn, ra)] {
                for i in 0..n {
                    let (k, p) = node::node_entry(b, i, a)?;
                    w.push(k, &p)?;
                }
            }
        }
        let p = self.write_node(out.as_mut(), Some(&l.1), owner)?;
        self.free_meta(&r.1)?;
        Ok(Some((l.0, p)))
    }

    fn modify_leaf(
        &mut self,
        ptr: &BlockPtr,
        owner: u64,
        sb: &[u8],
        key: &Key,
        op: Op<'_>,
    ) -> Result<Outcome> {
        let at = ptr.addr.get();
        let n = node::nritems(sb, at)?;
        let pos = node::search(sb, 0, key, at)?;
        // (position, items removed there, new data inserted there)
        let (remove, insert): (usize, Option<&[u8]>) = match (op, pos.exact) {
            (Op::Insert(_), true) => return Err(Error::Exists),
            (Op::Insert(d), false) | (Op::Upsert(d), false) => (0, Some(d)),
            (Op::Replace(d), true) | (Op::Upsert(d), true) => (1, Some(d)),
            (Op::Replace(_), false) | (Op::Delete, false) => return Err(Error::NotFound),
            (Op::Delete, true) => (1, None),
        };
        let p = pos.index;
        let ins_n = usize::from(insert.is_some());
        let total = n.saturating_sub(remove).saturating_add(ins_n);
        let item = |i: usize| -> Result<(Key, &[u8])> {
            if i < p {
                node::leaf_item(sb, i, at)
            } else if i < p.saturating_add(ins_n) {
                Ok((*key, insert.unwrap_or(&[])))
            } else {
                let j = i.saturating_add(remove).saturating_sub(ins_n);
                node::leaf_item(sb, j, at)
            }
        };
        if total == 0 {
            self.free_meta(ptr)?;
            return Ok(Outcome::Empty);
        }
        let mut bytes_total = 0usize;
        for i in 0..total {
            bytes_total = bytes_total.saturating_add(node::leaf_cost(item(i)?.1.len()));
        }
        let mut left_buf = self.block_buf()?;
        let first = item(0)?.0;
        if bytes_total <= BLOCK_SIZE - HEADER_SIZE {
            {
                let mut lb = LeafBuilder::new(left_buf.as_mut())?;
                for i in 0..total {
                    let (k, d) = item(i)?;
                    lb.push(k, d)?;
                }
            }
            let p = self.write_node(left_buf.as_mut(), Some(ptr), owner)?;
            return Ok(Outcome::One(
                first,
                p,
                bytes_total < (BLOCK_SIZE - HEADER_SIZE) / 3,
            ));
        }
        // Split where the fuller half is smallest. Items are at most half
        // a leaf and the total at most one leaf plus one item, so the best
        // split always fits both halves (even with large items next to
        // each other, e.g. crafted hash collisions).
        let mut right_buf = self.block_buf()?;
        let mut split = 1usize;
        let mut best = usize::MAX;
        let mut acc = 0usize;
        for i in 1..total {
            acc = acc.saturating_add(node::leaf_cost(item(i.saturating_sub(1))?.1.len()));
            let worst = acc.max(bytes_total.saturating_sub(acc));
            if worst < best {
                best = worst;
                split = i;
            }
        }
        {
            let mut lb = LeafBuilder::new(left_buf.as_mut())?;
            for i in 0..split {
                let (k, d) = item(i)?;
                lb.push(k, d)?;
            }
            let mut rb = LeafBuilder::new(right_buf.as_mut())?;
            for i in split..total {
                let (k, d) = item(i)?;
                rb.push(k, d)?;
            }
        }
        let k2 = item(split)?.0;
        let p1 = self.write_node(left_buf.as_mut(), Some(ptr), owner)?;
        let p2 = self.write_node(right_buf.as_mut(), None, owner)?;
        Ok(Outcome::Two(first, p1, k2, p2))
    }

    // ----- superblocks, mkfs, mount, commit ----------------------------

    fn super_locations(total: u64) -> impl Iterator<Item = u64> {
        SUPER_BLOCKS.into_iter().filter(move |b| *b < total)
    }

    fn write_supers(&self) -> Result<()> {
        let mut b = self.block_buf()?;
        for at in Self::super_locations(self.info.total_blocks) {
            let buf = b.as_mut();
            buf.fill(0);
            let h = BlockHeader {
                csum: [0; 32],
                fsid: self.info.fsid,
                addr: at.into(),
                mirror: 0u64.into(),
                generation: self.generation.into(),
                owner: OWNER_SUPER.into(),
                magic: SUPER_HDR_MAGIC,
                level: 0,
                reserved0: 0,
                nritems: 0u16.into(),
                reserved1: [0; 8],
            };
            let body = SuperBody {
                magic: SUPER_MAGIC,
                format_version: FORMAT_VERSION.into(),
                csum_type: self.info.csum as u8,
                default_compression: self.info.compression as u8,
                flags: (if self.info.dup {
                    SB_FLAG_DUP_METADATA
                } else {
                    0
                })
                .into(),
                block_size: (BLOCK_SIZE as u32).into(),
                node_size: (BLOCK_SIZE as u32).into(),
                total_blocks: self.info.total_blocks.into(),
                compat: 0u64.into(),
                ro_compat: 0u64.into(),
                incompat: 0u64.into(),
                root_tree: self.root_tree.ptr,
                root_tree_level: self.root_tree.level,
                reserved0: [0; 7],
                reserve_blocks: self.info.reserve_blocks.into(),
                mkfs_time: self.info.mkfs_time.into(),
                label: self.info.label,
            };
            node::write_at(buf, 0, &h)?;
            node::write_at(buf, HEADER_SIZE, &body)?;
            let csum = self.block_csum(buf)?;
            node::write_at(buf, 0, &csum)?;
            self.dev.write(at, buf)?;
        }
        Ok(())
    }

    /// Make the open transaction durable: write the root item, flush,
    /// write every superblock copy, flush. A crash at any point leaves
    /// either the previous or the new state.
    pub fn commit(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.check_writable()?;
        let ri = RootItem {
            root: self.fs_tree.ptr,
            level: self.fs_tree.level,
            reserved0: [0; 7],
            generation: self.generation.into(),
            next_ino: self.next_ino.into(),
            inode_count: self.inode_count.into(),
            flags: 0u64.into(),
        };
        self.modify(
            TREE_ROOT,
            Key::new(TREE_FS, ITEM_ROOT, 0),
            Op::Upsert(ri.as_bytes()),
        )?;
        let res = self
            .dev
            .flush()
            .and_then(|()| self.write_supers())
            .and_then(|()| self.dev.flush());
        if let Err(e) = res {
            self.broken = true;
            return Err(e);
        }
        self.space.commit();
        self.generation = self.generation.checked_add(1).ok_or(Error::Invalid)?;
        self.dirty = false;
        Ok(())
    }

    /// Create an empty filesystem on `dev`. The caller then creates the
    /// root directory and commits (see `Fs::mkfs`).
    pub(crate) fn format(dev: D, host: H, o: &MkfsOptions, now: i64) -> Result<Self> {
        let dev_blocks = dev.num_blocks();
        let total = if o.total_blocks == 0 {
            dev_blocks
        } else {
            o.total_blocks
        };
        if total > dev_blocks {
            return Err(Error::Invalid);
        }
        if total < MIN_BLOCKS {
            return Err(Error::NoSpace);
        }
        // Keep 1% (at least 256 blocks, at most 64 MiB) for metadata CoW.
        let reserve = (total / 100).clamp(256, 16384);
        let space = Space::new(&host, total)?;
        let info = SuperInfo {
            fsid: o.fsid,
            csum: o.csum,
            dup: o.dup_metadata,
            compression: o.compression,
            total_blocks: total,
            reserve_blocks: reserve,
            generation: 1,
            mkfs_time: now,
            label: o.label,
            ro_compat: 0,
        };
        let empty = TreeRoot {
            ptr: BlockPtr {
                addr: 0u64.into(),
                mirror: 0u64.into(),
                generation: 0u64.into(),
                csum: [0; 32],
            },
            level: 0,
            owner: 0,
        };
        let mut vol = Volume {
            dev,
            host,
            info,
            generation: 1,
            root_tree: TreeRoot {
                owner: TREE_ROOT,
                ..empty
            },
            fs_tree: TreeRoot {
                owner: TREE_FS,
                ..empty
            },
            next_ino: FIRST_FREE_INO,
            inode_count: 0,
            space,
            dirty: true,
            broken: false,
            opts: MountOptions::default(),
            stats: Stats::default(),
            last_leaf: Cell::new(0),
        };
        vol.mark_fixed()?;
        let mut b = vol.block_buf()?;
        // Superblock locations past this filesystem but on the device may
        // hold copies from an earlier, larger filesystem that mount would
        // otherwise find: wipe them.
        for at in Self::super_locations(dev_blocks).filter(|a| *a >= total) {
            vol.dev.write(at, b.as_ref())?;
        }
        LeafBuilder::new(b.as_mut())?;
        vol.root_tree.ptr = vol.write_node(b.as_mut(), None, TREE_ROOT)?;
        LeafBuilder::new(b.as_mut())?;
        vol.fs_tree.ptr = vol.write_node(b.as_mut(), None, TREE_FS)?;
        Ok(vol)
    }

    /// Reserve the boot area and superblock locations.
    fn mark_fixed(&mut self) -> Result<()> {
        Self::mark_fixed_in(&mut self.space, self.info.total_blocks)
    }

    fn mark_fixed_in(space: &mut Space<H::Buf>, total: u64) -> Result<()> {
        space.mark_used(0, FIRST_USABLE_BLOCK)?;
        for at in Self::super_locations(total) {
            if at >= FIRST_USABLE_BLOCK {
                space.mark_used(at, 1)?;
            }
        }
        Ok(())
    }

    /// Parse and verify one superblock copy.
    fn read_super(dev: &D, host: &H, at: u64, buf: &mut [u8]) -> Result<(SuperInfo, TreeRoot)> {
        dev.read(at, buf)?;
        let h = node::header(buf, at)?;
        let body = node::read_at::<SuperBody>(buf, HEADER_SIZE, at)?;
        if body.magic != SUPER_MAGIC || h.magic != SUPER_HDR_MAGIC {
            return Err(corrupt(at, "no ferfs superblock"));
        }
        let csum_type =
            CsumType::from_u8(body.csum_type).ok_or(corrupt(at, "unknown checksum type"))?;
        let mut c = host.checksum(csum_type, node::bytes(buf, 32, BLOCK_SIZE - 32, at)?)?;
        if let Some(rest) = c.get_mut(csum_type.sig_len()..) {
            rest.fill(0);
        }
        if c != h.csum {
            return Err(corrupt(at, "superblock checksum mismatch"));
        }
        if h.addr.get() != at || h.owner.get() != OWNER_SUPER {
            return Err(corrupt(at, "superblock address or owner mismatch"));
        }
        if body.format_version.get() != FORMAT_VERSION {
            return Err(Error::Unsupported("format version"));
        }
        if body.incompat.get() & !SUPPORTED_INCOMPAT != 0 {
            return Err(Error::Unsupported("incompatible feature flags"));
        }
        if body.block_size.get() != BLOCK_SIZE as u32 || body.node_size.get() != BLOCK_SIZE as u32 {
            return Err(Error::Unsupported("block size other than 4096"));
        }
        let total = body.total_blocks.get();
        if total < MIN_BLOCKS || total > dev.num_blocks() {
            return Err(corrupt(at, "filesystem size does not match the device"));
        }
        let compression = Compression::from_u8(body.default_compression)
            .ok_or(corrupt(at, "unknown compression"))?;
        if body.root_tree_level >= MAX_LEVEL {
            return Err(corrupt(at, "root tree level out of range"));
        }
        let gen = h.generation.get();
        if gen == 0 || gen == u64::MAX || body.root_tree.generation.get() > gen {
            return Err(corrupt(at, "bad generation"));
        }
        let reserve = body.reserve_blocks.get();
        if reserve >= total {
            return Err(corrupt(at, "reserve larger than the filesystem"));
        }
        let info = SuperInfo {
            fsid: h.fsid,
            csum: csum_type,
            dup: body.flags.get() & SB_FLAG_DUP_METADATA != 0,
            compression,
            total_blocks: total,
            reserve_blocks: reserve,
            generation: gen,
            mkfs_time: body.mkfs_time.get(),
            label: body.label,
            ro_compat: body.ro_compat.get(),
        };
        let root = TreeRoot {
            ptr: body.root_tree,
            level: body.root_tree_level,
            owner: TREE_ROOT,
        };
        Ok((info, root))
    }

    /// Mount: pick the newest valid superblock, load the trees and rebuild
    /// the free-space map by walking (and so validating) all metadata.
    pub fn open(dev: D, host: H, opts: MountOptions) -> Result<Self> {
        let mut sb_buf = host.alloc(BLOCK_SIZE)?;
        if sb_buf.as_ref().len() != BLOCK_SIZE {
            return Err(Error::NoMem);
        }
        // Per copy location: its generation if it verified.
        let mut found: [Option<u64>; SUPER_BLOCKS.len()] = [None; SUPER_BLOCKS.len()];
        let mut best: Option<(SuperInfo, TreeRoot)> = None;
        let mut first_err = None;
        for (slot, at) in Self::super_locations(dev.num_blocks()).enumerate() {
            match Self::read_super(&dev, &host, at, sb_buf.as_mut()) {
                // A genuine copy lies inside its own filesystem.
                Ok((info, _)) if at >= info.total_blocks => {
                    first_err.get_or_insert(corrupt(at, "superblock copy outside its filesystem"));
                }
                Ok((info, root)) => {
                    if let Some(f) = found.get_mut(slot) {
                        *f = Some(info.generation);
                    }
                    if best
                        .as_ref()
                        .is_none_or(|(b, _)| info.generation > b.generation)
                    {
                        best = Some((info, root));
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let (info, root_tree) = match best {
            Some(b) => b,
            None => {
                return Err(first_err.unwrap_or(Error::Corrupt {
                    block: SUPER_BLOCKS[0],
                    what: "no superblock",
                }))
            }
        };
        // Copies that are missing or corrupt, and copies that are valid but
        // older (normal after a crash between superblock writes).
        let copies = || Self::super_locations(info.total_blocks).zip(found.iter());
        let bad = copies().filter(|(_, g)| g.is_none()).count() as u64;
        let stale = copies()
            .filter(|(_, g)| g.is_some_and(|g| g != info.generation))
            .count() as u64;
        if info.ro_compat & !SUPPORTED_RO_COMPAT != 0 && !opts.read_only {
            return Err(Error::Unsupported(
                "read-only-compatible features: mount read-only",
            ));
        }
        let space = Space::new(&host, info.total_blocks)?;
        let mut vol = Volume {
            dev,
            host,
            info,
            generation: info.generation.checked_add(1).ok_or(Error::Invalid)?,
            root_tree,
            fs_tree: root_tree,
            next_ino: FIRST_FREE_INO,
            inode_count: 0,
            space,
            dirty: false,
            broken: false,
            opts,
            stats: Stats::default(),
            last_leaf: Cell::new(0),
        };
        vol.stats.super_bad.set(bad);
        vol.stats.super_stale.set(stale);
        let ri = vol
            .lookup_struct::<RootItem>(&root_tree, Key::new(TREE_FS, ITEM_ROOT, 0))?
            .ok_or(corrupt(
                root_tree.ptr.addr.get(),
                "filesystem tree root item missing",
            ))?;
        if ri.level >= MAX_LEVEL || ri.root.generation.get() > info.generation {
            return Err(corrupt(
                root_tree.ptr.addr.get(),
                "bad filesystem tree root item",
            ));
        }
        vol.fs_tree = TreeRoot {
            ptr: ri.root,
            level: ri.level,
            owner: TREE_FS,
        };
        vol.next_ino = ri.next_ino.get();
        vol.inode_count = ri.inode_count.get();
        vol.rebuild_space()?;
        // Superblock copies that were bad or stale get rewritten now.
        if bad.saturating_add(stale) > 0 && vol.opts.repair && !vol.opts.read_only {
            vol.write_supers_current()?;
        }
        Ok(vol)
    }

    /// Rewrite every superblock copy for the last committed state.
    fn write_supers_current(&mut self) -> Result<()> {
        let g = self.generation;
        self.generation = self.info.generation;
        let r = self.write_supers().and_then(|()| self.dev.flush());
        self.generation = g;
        r
    }

    fn rebuild_space(&mut self) -> Result<()> {
        struct Marker<'a, B> {
            space: &'a mut Space<B>,
            leaf: &'a Cell<u64>,
        }
        impl<B: AsRef<[u8]> + AsMut<[u8]>> Visitor for Marker<'_, B> {
            fn node(&mut self, _owner: u64, ptr: &BlockPtr, _level: u8) -> Result<()> {
                let a = ptr.addr.get();
                if !self.space.mark_used(a, 1)? {
                    return Err(corrupt(a, "metadata block referenced twice"));
                }
                let m = ptr.mirror.get();
                if m != 0 && !self.space.mark_used(m, 1)? {
                    return Err(corrupt(m, "metadata block referenced twice"));
                }
                Ok(())
            }
            fn item(&mut self, owner: u64, key: Key, data: &[u8]) -> Result<()> {
                if owner == TREE_FS && key.kind == ITEM_EXTENT {
                    let e = ExtentItem::read_from_bytes(data)
                        .map_err(|_| corrupt(self.leaf.get(), "extent item has the wrong size"))?;
                    let blocks = u64::from(e.stored_len.get()).div_ceil(BLOCK_SIZE_U64);
                    if !self.space.mark_used(e.addr.get(), blocks)?
                        || e.addr.get() < FIRST_USABLE_BLOCK
                    {
                        return Err(corrupt(
                            e.addr.get(),
                            "data extent overlaps other blocks or the device end",
                        ));
                    }
                }
                Ok(())
            }
        }
        // Walk with a temporary space map so `self` stays borrowable.
        let mut space = Space::new(&self.host, self.info.total_blocks)?;
        core::mem::swap(&mut space, &mut self.space);
        Self::mark_fixed_in(&mut space, self.info.total_blocks)?;
        let res = {
            let mut m = Marker {
                space: &mut space,
                leaf: &self.last_leaf,
            };
            let rt = self.root_tree;
            let ft = self.fs_tree;
            self.walk(&rt, &mut m, false)
                .and_then(|()| self.walk(&ft, &mut m, false))
        };
        core::mem::swap(&mut space, &mut self.space);
        res
    }
}
