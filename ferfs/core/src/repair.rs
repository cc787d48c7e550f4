//! Repairs fsck derives from the whole tree: the counters an inode or the
//! root item keeps about the rest of the filesystem (link counts, block
//! counts, a directory's parent, the inode count), orphan records, and
//! inodes no entry names (relinked under `/lost+found`).
//!
//! fsck finds the problems (it needs the whole tree in memory, which the
//! core cannot hold); these are the narrow, validated operations that put
//! each one right, so the on-disk logic stays in the core.

use crate::format::*;
use crate::host::{BlockDevice, Error, Host, Result};
use crate::volume::{Op, Volume};

/// The directory unreachable inodes are relinked into.
pub const LOST_FOUND: &[u8] = b"lost+found";

/// One correction fsck can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fix {
    /// Set an inode's link count.
    Nlink { ino: u64, nlink: u32 },
    /// Set an inode's count of stored blocks.
    StoredBlocks { ino: u64, blocks: u64 },
    /// Set a directory's parent field (to the directory whose entry names it).
    Parent { ino: u64, parent: u64 },
    /// Set the inode count kept in the root item.
    InodeCount(u64),
    /// An inode with no links and no orphan record: record it and free it.
    FreeUnlinked(u64),
    /// An orphan record whose inode does not exist: drop the record.
    DropOrphanRecord(u64),
    /// An inode with links but no entry naming it: give it one in
    /// `/lost+found`, named `#INO`.
    LostFound(u64),
}

impl<D: BlockDevice, H: Host> Volume<D, H> {
    /// Apply one fsck correction (uncommitted; call `sync`).
    pub fn repair(&mut self, fix: Fix) -> Result<()> {
        self.check_writable()?;
        self.ensure_space(0, 8)?;
        match fix {
            Fix::Nlink { ino, nlink } => self.update_inode(ino, |i| i.nlink = nlink.into()),
            Fix::StoredBlocks { ino, blocks } => {
                self.update_inode(ino, |i| i.stored_blocks = blocks.into())
            }
            Fix::Parent { ino, parent } => {
                let d = self.read_inode(parent)?;
                if d.mode.get() & S_IFMT != S_IFDIR {
                    return Err(Error::NotDir);
                }
                self.update_inode(ino, |i| i.parent = parent.into())
            }
            Fix::InodeCount(n) => {
                self.inode_count = n;
                // Kept in the root item, written by the next commit.
                self.dirty = true;
                Ok(())
            }
            Fix::FreeUnlinked(ino) => {
                self.make_orphan(ino)?;
                self.release_orphan(ino)
            }
            Fix::DropOrphanRecord(ino) => {
                if self
                    .lookup_struct::<InodeItem>(&self.fs_tree, Key::new(ino, ITEM_INODE, 0))?
                    .is_some()
                {
                    return Err(Error::Invalid);
                }
                self.modify(
                    TREE_FS,
                    Key::new(ORPHAN_OBJECTID, ITEM_ORPHAN, ino),
                    Op::Delete,
                )
            }
            Fix::LostFound(ino) => self.relink_lost(ino),
        }
    }

    fn update_inode(&mut self, ino: u64, f: impl FnOnce(&mut InodeItem)) -> Result<()> {
        let mut i = self.read_inode(ino)?;
        f(&mut i);
        self.write_inode(ino, &i)
    }

    /// `/lost+found`, created if missing.
    fn lost_found_dir(&mut self) -> Result<u64> {
        match self.lookup_entry(ROOT_INO, LOST_FOUND)? {
            Some((ino, ft, _)) if u32::from(ft) == S_IFDIR >> 12 => Ok(ino),
            Some(_) => Err(Error::Exists),
            None => Ok(self.mkdir(ROOT_INO, LOST_FOUND, 0o700, 0, 0)?.ino),
        }
    }

    fn relink_lost(&mut self, ino: u64) -> Result<()> {
        let lf = self.lost_found_dir()?;
        if lf == ino {
            return Err(Error::Invalid);
        }
        let i = self.read_inode(ino)?;
        let mut name = [0u8; 21];
        let len = decimal_name(ino, &mut name);
        let name = name.get(..len).ok_or(Error::Invalid)?;
        let ftype = ((i.mode.get() & S_IFMT) >> 12) as u8;
        // The entry it gets is its only one: links are recounted afterwards.
        self.update_inode(ino, |i| {
            if i.mode.get() & S_IFMT == S_IFDIR {
                i.parent = lf.into();
            } else {
                i.nlink = 1u32.into();
            }
        })?;
        self.add_entry(lf, name, ino, ftype)
    }
}

/// `#` and the decimal digits of `n`; returns the length.
fn decimal_name(mut n: u64, out: &mut [u8; 21]) -> usize {
    let mut digits = [0u8; 20];
    let mut len = 0usize;
    loop {
        if let Some(d) = digits.get_mut(len) {
            *d = b'0'.saturating_add((n % 10) as u8);
        }
        len = len.saturating_add(1);
        n /= 10;
        if n == 0 || len >= digits.len() {
            break;
        }
    }
    if let Some(first) = out.first_mut() {
        *first = b'#';
    }
    for (k, slot) in out.iter_mut().skip(1).take(len).enumerate() {
        *slot = digits
            .get(len.saturating_sub(1).saturating_sub(k))
            .copied()
            .unwrap_or(b'0');
    }
    len.saturating_add(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::decimal_name;

    #[test]
    fn lost_found_names() {
        let mut b = [0u8; 21];
        let n = decimal_name(0, &mut b);
        assert_eq!(&b[..n], b"#0");
        let n = decimal_name(1234, &mut b);
        assert_eq!(&b[..n], b"#1234");
        let n = decimal_name(u64::MAX, &mut b);
        assert_eq!(&b[..n], b"#18446744073709551615");
    }
}
