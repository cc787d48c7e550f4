//! POSIX filesystem semantics on top of the volume: inodes, directories,
//! file data in checksummed (optionally compressed) chunk extents,
//! symlinks, hard links, special files and extended attributes.

use crate::format::*;
use crate::host::{BlockDevice, Error, Host, Result};
use crate::node::{self, corrupt};
use crate::volume::{MkfsOptions, MountOptions, Op, TreeRoot, Volume};
use zerocopy::{FromBytes, IntoBytes};

/// rename(2) flags.
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;
/// fallocate(2) modes supported.
pub const FALLOC_KEEP_SIZE: u32 = 1;
pub const FALLOC_PUNCH_HOLE: u32 = 2;
/// Pseudo-xattr that reads and sets a file's compression override
/// ("zstd", "lzo", "zlib", "none"); removing it inherits the mount default.
/// It is kept in the inode flags, not stored as an xattr.
pub const COMPRESSION_XATTR: &[u8] = b"ferfs.compression";

/// setxattr(2) flags.
pub const XATTR_CREATE: u32 = 1;
pub const XATTR_REPLACE: u32 = 2;

/// Inode attributes in plain types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    /// 512-byte sectors occupied on disk.
    pub sectors: u64,
    pub rdev: u64,
    pub atime: (i64, u32),
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    pub btime: (i64, u32),
}

/// Attribute changes for `setattr`; `None` leaves a field alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<(i64, u32)>,
    pub mtime: Option<(i64, u32)>,
}

#[derive(Clone, Copy, Debug)]
pub struct StatFs {
    pub block_size: u32,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_avail: u64,
    pub files: u64,
    pub name_max: u32,
}

fn t(ts: (i64, u32)) -> DiskTime {
    DiskTime {
        sec: ts.0.into(),
        nsec: ts.1.into(),
    }
}
fn from_t(d: &DiskTime) -> (i64, u32) {
    (d.sec.get(), d.nsec.get())
}

pub fn attr_of(ino: u64, i: &InodeItem) -> Attr {
    Attr {
        ino,
        mode: i.mode.get(),
        uid: i.uid.get(),
        gid: i.gid.get(),
        nlink: i.nlink.get(),
        size: i.size.get(),
        sectors: i.stored_blocks.get().saturating_mul(8),
        rdev: i.rdev.get(),
        atime: from_t(&i.atime),
        mtime: from_t(&i.mtime),
        ctime: from_t(&i.ctime),
        btime: from_t(&i.btime),
    }
}

fn is_dir(i: &InodeItem) -> bool {
    i.mode.get() & S_IFMT == S_IFDIR
}

fn file_type_of(mode: u32) -> u8 {
    // S_IFMT >> 12 fits in 4 bits.
    ((mode & S_IFMT) >> 12) as u8
}

fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Error::Invalid);
    }
    if name.len() > MAX_NAME {
        return Err(Error::NameTooLong);
    }
    Ok(())
}

/// One entry inside a hashed item: byte ranges of the whole entry, its
/// name and its value.
struct EntryPos {
    start: usize,
    end: usize,
    name_start: usize,
    name_len: usize,
    value_start: usize,
    value_len: usize,
}

impl EntryPos {
    fn name<'a>(&self, data: &'a [u8]) -> Result<&'a [u8]> {
        node::bytes(data, self.name_start, self.name_len, 0)
    }
    fn value<'a>(&self, data: &'a [u8]) -> Result<&'a [u8]> {
        node::bytes(data, self.value_start, self.value_len, 0)
    }
}

/// The entry that starts at `pos` of the packed entries in `data`, its
/// header validated and its name and value inside `data`.
fn entry_at(data: &[u8], pos: usize, block: u64) -> Result<EntryPos> {
    let h = node::read_at::<EntryHeader>(data, pos, block)?;
    let nl = usize::from(h.name_len.get());
    let vl = usize::from(h.value_len.get());
    if nl == 0 || nl > MAX_NAME {
        return Err(corrupt(block, "bad entry name length"));
    }
    let overflow = || corrupt(block, "entry overflow");
    let name_start = pos.checked_add(ENTRY_HEADER_SIZE).ok_or_else(overflow)?;
    let value_start = name_start.checked_add(nl).ok_or_else(overflow)?;
    let end = value_start.checked_add(vl).ok_or_else(overflow)?;
    node::bytes(data, pos, end.saturating_sub(pos), block)?;
    Ok(EntryPos {
        start: pos,
        end,
        name_start,
        name_len: nl,
        value_start,
        value_len: vl,
    })
}

/// Find `name` among the entries packed in `data`. Validates every entry
/// header it walks over.
fn find_entry(data: &[u8], name: &[u8], block: u64) -> Result<Option<EntryPos>> {
    let mut pos = 0usize;
    while pos < data.len() {
        let e = entry_at(data, pos, block)?;
        if e.name(data)? == name {
            return Ok(Some(e));
        }
        pos = e.end;
    }
    Ok(None)
}

/// Visit every entry packed in `data` as (name, value).
fn for_each_entry(data: &[u8], block: u64, f: &mut EntryFn<'_>) -> Result<bool> {
    let mut pos = 0usize;
    while pos < data.len() {
        let e = entry_at(data, pos, block)?;
        if !f(e.name(data)?, e.value(data)?)? {
            return Ok(false);
        }
        pos = e.end;
    }
    Ok(true)
}

/// Append one entry to `out` at `at`; returns the new end.
fn put_entry(out: &mut [u8], at: usize, name: &[u8], value: &[u8]) -> Result<usize> {
    let h = EntryHeader {
        name_len: u16::try_from(name.len())
            .map_err(|_| Error::NameTooLong)?
            .into(),
        value_len: u16::try_from(value.len())
            .map_err(|_| Error::TooBig)?
            .into(),
    };
    let name_at = at.checked_add(ENTRY_HEADER_SIZE).ok_or(Error::TooBig)?;
    let value_at = name_at.checked_add(name.len()).ok_or(Error::TooBig)?;
    let end = value_at.checked_add(value.len()).ok_or(Error::TooBig)?;
    if end > MAX_ITEM_DATA {
        return Err(Error::NoSpace);
    }
    node::write_at(out, at, &h).map_err(|_| Error::TooBig)?;
    node::bytes_mut(out, name_at, name.len(), 0)?.copy_from_slice(name);
    node::bytes_mut(out, value_at, value.len(), 0)?.copy_from_slice(value);
    Ok(end)
}

/// Which half-finished state `debug_interrupt` leaves behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// Entry removed, inode orphaned, nothing freed yet.
    Unlink,
    /// Size set to 0 under an ORPHAN record, extents not freed yet.
    Truncate,
}

/// Callback over (name, value) of packed entries; returns false to stop.
pub type EntryFn<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'a;
/// readdir callback: (index, name, inode, file type); returns false to stop.
pub type DirFn<'a> = dyn FnMut(u64, &[u8], u64, u8) -> bool + 'a;

/// Mutable data of one 128 KiB chunk plus its scratch space.
struct ChunkBufs<B> {
    data: B,
    scratch: B,
}

impl<D: BlockDevice, H: Host> Volume<D, H> {
    // ----- mkfs / mount -----------------------------------------------

    /// Create a filesystem with an empty root directory, committed.
    pub fn mkfs(dev: D, host: H, opts: &MkfsOptions) -> Result<Self> {
        let now = host.now();
        let mut vol = Volume::format(dev, host, opts, now.0)?;
        let mut root = vol.new_inode(S_IFDIR | 0o755, 0, 0, 0, now)?;
        root.parent = ROOT_INO.into();
        vol.modify(
            TREE_FS,
            Key::new(ROOT_INO, ITEM_INODE, 0),
            Op::Insert(root.as_bytes()),
        )?;
        vol.inode_count = 1;
        vol.commit()?;
        Ok(vol)
    }

    /// Mount; a read-write mount also finishes deleting orphans.
    pub fn mount(dev: D, host: H, opts: MountOptions) -> Result<Self> {
        let mut vol = Volume::open(dev, host, opts)?;
        if !vol.is_read_only() {
            vol.reap_all_orphans()?;
        }
        Ok(vol)
    }

    // ----- inodes -----------------------------------------------------

    fn new_inode(
        &self,
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u64,
        now: (i64, u32),
    ) -> Result<InodeItem> {
        if !valid_file_type(mode) {
            return Err(Error::Invalid);
        }
        let dir = mode & S_IFMT == S_IFDIR;
        Ok(InodeItem {
            mode: mode.into(),
            uid: uid.into(),
            gid: gid.into(),
            nlink: (if dir { 2u32 } else { 1 }).into(),
            size: 0u64.into(),
            stored_blocks: 0u64.into(),
            rdev: rdev.into(),
            atime: t(now),
            mtime: t(now),
            ctime: t(now),
            btime: t(now),
            flags: 0u32.into(),
            generation: self.generation.into(),
            parent: 0u64.into(),
            next_index: (if dir { FIRST_DIR_INDEX } else { 0 }).into(),
        })
    }

    pub(crate) fn read_inode(&self, ino: u64) -> Result<InodeItem> {
        let i = self
            .lookup_struct::<InodeItem>(&self.fs_tree, Key::new(ino, ITEM_INODE, 0))?
            .ok_or(Error::NotFound)?;
        if !valid_file_type(i.mode.get()) {
            return Err(corrupt(self.leaf(), "inode has an invalid file type"));
        }
        Ok(i)
    }

    pub(crate) fn write_inode(&mut self, ino: u64, i: &InodeItem) -> Result<()> {
        self.modify(
            TREE_FS,
            Key::new(ino, ITEM_INODE, 0),
            Op::Replace(i.as_bytes()),
        )
    }

    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        Ok(attr_of(ino, &self.read_inode(ino)?))
    }

    /// Per-file compression: `None` to inherit the mount default.
    pub fn set_compression(&mut self, ino: u64, c: Option<Compression>) -> Result<()> {
        self.check_writable()?;
        self.ensure_space(0, 1)?;
        let mut i = self.read_inode(ino)?;
        let v = c.map_or(0, |c| u32::from(c as u8).saturating_add(1));
        i.flags = ((i.flags.get() & !0xf) | v).into();
        self.write_inode(ino, &i)
    }

    fn compression_for(&self, i: &InodeItem) -> Compression {
        match i.flags.get() & 0xf {
            0 => self.opts.compression.unwrap_or(self.info.compression),
            v => Compression::from_u8(u8::try_from(v.saturating_sub(1)).unwrap_or(0))
                .unwrap_or(Compression::None),
        }
    }

    pub fn setattr(&mut self, ino: u64, s: &SetAttr) -> Result<Attr> {
        self.check_writable()?;
        if let Some(size) = s.size {
            self.truncate(ino, size)?;
        }
        self.ensure_space(0, 1)?;
        let mut i = self.read_inode(ino)?;
        let now = self.host.now();
        if let Some(m) = s.mode {
            i.mode = ((i.mode.get() & S_IFMT) | (m & 0o7777)).into();
        }
        if let Some(u) = s.uid {
            i.uid = u.into();
        }
        if let Some(g) = s.gid {
            i.gid = g.into();
        }
        if let Some(a) = s.atime {
            i.atime = t(a);
        }
        if let Some(m) = s.mtime {
            i.mtime = t(m);
        }
        i.ctime = t(now);
        self.write_inode(ino, &i)?;
        Ok(attr_of(ino, &i))
    }

    pub fn statfs(&self) -> StatFs {
        let total = self.info.total_blocks;
        let free = self.space.free_after_commit();
        StatFs {
            block_size: BLOCK_SIZE as u32,
            blocks: total,
            blocks_free: free,
            blocks_avail: free.saturating_sub(self.info.reserve_blocks),
            files: self.inode_count,
            name_max: MAX_NAME as u32,
        }
    }

    /// fsync / syncfs: commit everything; durable when this returns.
    pub fn sync(&mut self) -> Result<()> {
        if self.is_read_only() {
            return if self.broken {
                Err(Error::ReadOnly)
            } else {
                Ok(())
            };
        }
        self.commit()
    }

    // ----- hashed entries (directories, xattrs) ------------------------

    /// Copy the value of entry `name` in the hashed item `key` into `out`.
    fn hashed_get(&self, key: Key, name: &[u8], out: &mut [u8]) -> Result<Option<usize>> {
        let mut b = self.block_buf()?;
        let Some(len) = self.lookup(&self.fs_tree, key, b.as_mut())? else {
            return Ok(None);
        };
        let data = crate::volume::sub(b.as_ref(), 0, len)?;
        match find_entry(data, name, self.leaf())? {
            Some(p) => {
                let v = p.value(data)?;
                let dst = out.get_mut(..v.len()).ok_or(Error::TooBig)?;
                dst.copy_from_slice(v);
                Ok(Some(v.len()))
            }
            None => Ok(None),
        }
    }

    /// Add (or with `replace`, overwrite) entry `name` in hashed item `key`.
    fn hashed_put(
        &mut self,
        key: Key,
        name: &[u8],
        value: &[u8],
        create: bool,
        replace: bool,
    ) -> Result<()> {
        let mut old = self.block_buf()?;
        let mut new = self.block_buf()?;
        let len = self.lookup(&self.fs_tree, key, old.as_mut())?.unwrap_or(0);
        let data = crate::volume::sub(old.as_ref(), 0, len)?;
        let existing = find_entry(data, name, self.leaf())?;
        match (&existing, create, replace) {
            (Some(_), true, _) => return Err(Error::Exists),
            (None, _, true) => return Err(Error::NoData),
            _ => {}
        }
        // Rebuild: all other entries, then the new one.
        let mut end = 0usize;
        let nb = new.as_mut();
        let skip = existing.as_ref().map(|p| (p.start, p.end));
        if let Some((s, e)) = skip {
            let before = node::bytes(data, 0, s, 0)?;
            let after = node::bytes(data, e, len.saturating_sub(e), 0)?;
            node::bytes_mut(nb, 0, before.len(), 0)?.copy_from_slice(before);
            node::bytes_mut(nb, before.len(), after.len(), 0)?.copy_from_slice(after);
            end = before.len().saturating_add(after.len());
        } else if len > 0 {
            node::bytes_mut(nb, 0, len, 0)?.copy_from_slice(data);
            end = len;
        }
        let end = put_entry(nb, end, name, value)?;
        let item = crate::volume::sub(nb, 0, end)?;
        let op = if len > 0 {
            Op::Replace(item)
        } else {
            Op::Insert(item)
        };
        self.modify(TREE_FS, key, op)
    }

    /// Remove entry `name` from hashed item `key`.
    fn hashed_remove(&mut self, key: Key, name: &[u8]) -> Result<()> {
        let mut old = self.block_buf()?;
        let mut new = self.block_buf()?;
        let len = self
            .lookup(&self.fs_tree, key, old.as_mut())?
            .ok_or(Error::NotFound)?;
        let data = crate::volume::sub(old.as_ref(), 0, len)?;
        let p = find_entry(data, name, self.leaf())?.ok_or(Error::NotFound)?;
        let before = node::bytes(data, 0, p.start, 0)?;
        let after = node::bytes(data, p.end, len.saturating_sub(p.end), 0)?;
        let total = before.len().saturating_add(after.len());
        if total == 0 {
            return self.modify(TREE_FS, key, Op::Delete);
        }
        let nb = new.as_mut();
        node::bytes_mut(nb, 0, before.len(), 0)?.copy_from_slice(before);
        node::bytes_mut(nb, before.len(), after.len(), 0)?.copy_from_slice(after);
        let item = crate::volume::sub(nb, 0, total)?;
        self.modify(TREE_FS, key, Op::Replace(item))
    }

    // ----- directories -------------------------------------------------

    fn dir_inode(&self, dir: u64) -> Result<InodeItem> {
        let i = self.read_inode(dir)?;
        if !is_dir(&i) {
            return Err(Error::NotDir);
        }
        Ok(i)
    }

    /// Look `name` up in directory `dir`: (inode, file type, index).
    pub fn lookup_entry(&self, dir: u64, name: &[u8]) -> Result<Option<(u64, u8, u64)>> {
        self.dir_inode(dir)?;
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(if name.is_empty() {
                Error::Invalid
            } else {
                Error::NameTooLong
            });
        }
        let mut v = [0u8; DIR_VALUE_SIZE];
        match self.hashed_get(Key::new(dir, ITEM_DIR_HASH, name_hash(name)), name, &mut v)? {
            Some(DIR_VALUE_SIZE) => {
                let dv =
                    DirValue::read_from_bytes(&v).map_err(|_| corrupt(self.leaf(), "dir entry"))?;
                Ok(Some((dv.ino.get(), dv.file_type, dv.index.get())))
            }
            Some(_) => Err(corrupt(
                self.leaf(),
                "directory entry value has the wrong size",
            )),
            None => Ok(None),
        }
    }

    /// Parent directory of `dir` ("..").
    pub fn parent_of(&self, dir: u64) -> Result<u64> {
        Ok(self.dir_inode(dir)?.parent.get())
    }

    /// The inode an entry names, checked against the entry's file type
    /// (a mismatch would make unlink/rmdir treat it as the wrong kind).
    fn entry_target(&self, ino: u64, ftype: u8) -> Result<InodeItem> {
        let i = self.read_inode(ino)?;
        if file_type_of(i.mode.get()) != ftype {
            return Err(corrupt(
                self.leaf(),
                "directory entry type differs from its inode",
            ));
        }
        Ok(i)
    }

    /// Resolve a name to attributes.
    pub fn lookup_attr(&self, dir: u64, name: &[u8]) -> Result<Attr> {
        let (ino, _, _) = self.lookup_entry(dir, name)?.ok_or(Error::NotFound)?;
        self.getattr(ino)
    }

    /// Add an entry; updates the directory inode (index counter, times,
    /// link count for subdirectories).
    pub(crate) fn add_entry(&mut self, dir: u64, name: &[u8], ino: u64, ftype: u8) -> Result<()> {
        let mut d = self.dir_inode(dir)?;
        let index = d.next_index.get();
        let dv = DirValue {
            ino: ino.into(),
            file_type: ftype,
            index: index.into(),
        };
        self.hashed_put(
            Key::new(dir, ITEM_DIR_HASH, name_hash(name)),
            name,
            dv.as_bytes(),
            true,
            false,
        )?;
        let mut item = [0u8; ENTRY_HEADER_SIZE + MAX_NAME + DIR_VALUE_SIZE];
        let end = put_entry(&mut item, 0, name, dv.as_bytes())?;
        let data = item.get(..end).ok_or(Error::Invalid)?;
        self.modify(
            TREE_FS,
            Key::new(dir, ITEM_DIR_INDEX, index),
            Op::Insert(data),
        )?;
        d.next_index = index.checked_add(1).ok_or(Error::NoSpace)?.into();
        let now = self.host.now();
        d.mtime = t(now);
        d.ctime = t(now);
        if u32::from(ftype) == S_IFDIR >> 12 {
            d.nlink = d.nlink.get().checked_add(1).ok_or(Error::TooBig)?.into();
        }
        self.write_inode(dir, &d)
    }

    /// Remove an entry (both keys); updates the directory inode.
    pub(crate) fn remove_entry(&mut self, dir: u64, name: &[u8]) -> Result<(u64, u8)> {
        let (ino, ftype, index) = self.lookup_entry(dir, name)?.ok_or(Error::NotFound)?;
        self.hashed_remove(Key::new(dir, ITEM_DIR_HASH, name_hash(name)), name)?;
        self.modify(TREE_FS, Key::new(dir, ITEM_DIR_INDEX, index), Op::Delete)?;
        let mut d = self.dir_inode(dir)?;
        let now = self.host.now();
        d.mtime = t(now);
        d.ctime = t(now);
        if u32::from(ftype) == S_IFDIR >> 12 {
            d.nlink = d.nlink.get().saturating_sub(1).into();
        }
        self.write_inode(dir, &d)?;
        Ok((ino, ftype))
    }

    /// Point an existing entry at another inode (rename exchange).
    fn retarget_entry(&mut self, dir: u64, name: &[u8], ino: u64, ftype: u8) -> Result<()> {
        let (_, _, index) = self.lookup_entry(dir, name)?.ok_or(Error::NotFound)?;
        let dv = DirValue {
            ino: ino.into(),
            file_type: ftype,
            index: index.into(),
        };
        self.hashed_put(
            Key::new(dir, ITEM_DIR_HASH, name_hash(name)),
            name,
            dv.as_bytes(),
            false,
            true,
        )
        .map_err(|e| {
            if e == Error::NoData {
                Error::NotFound
            } else {
                e
            }
        })?;
        let mut item = [0u8; ENTRY_HEADER_SIZE + MAX_NAME + DIR_VALUE_SIZE];
        let end = put_entry(&mut item, 0, name, dv.as_bytes())?;
        let data = item.get(..end).ok_or(Error::Invalid)?;
        self.modify(
            TREE_FS,
            Key::new(dir, ITEM_DIR_INDEX, index),
            Op::Replace(data),
        )
    }

    /// Create a file of any type (regular, directory, device, fifo,
    /// socket, symlink without target).
    pub fn create(
        &mut self,
        dir: u64,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u64,
    ) -> Result<Attr> {
        self.check_writable()?;
        check_name(name)?;
        self.ensure_space(0, 6)?;
        if self.lookup_entry(dir, name)?.is_some() {
            return Err(Error::Exists);
        }
        let now = self.host.now();
        let mut i = self.new_inode(mode, uid, gid, rdev, now)?;
        if is_dir(&i) {
            i.parent = dir.into();
        }
        let ino = self.next_ino;
        self.next_ino = ino.checked_add(1).ok_or(Error::NoSpace)?;
        self.modify(
            TREE_FS,
            Key::new(ino, ITEM_INODE, 0),
            Op::Insert(i.as_bytes()),
        )?;
        self.inode_count = self.inode_count.saturating_add(1);
        self.add_entry(dir, name, ino, file_type_of(mode))?;
        Ok(attr_of(ino, &i))
    }

    pub fn mkdir(&mut self, dir: u64, name: &[u8], perm: u32, uid: u32, gid: u32) -> Result<Attr> {
        self.create(dir, name, S_IFDIR | (perm & 0o7777), uid, gid, 0)
    }

    pub fn symlink(
        &mut self,
        dir: u64,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Attr> {
        if target.is_empty() || target.len() > MAX_SYMLINK || target.contains(&0) {
            return Err(if target.len() > MAX_SYMLINK {
                Error::NameTooLong
            } else {
                Error::Invalid
            });
        }
        self.ensure_space(CHUNK_SIZE_U64 / BLOCK_SIZE_U64, 10)?;
        let a = self.create(dir, name, S_IFLNK | 0o777, uid, gid, 0)?;
        self.write_data(a.ino, 0, target)?;
        self.getattr(a.ino)
    }

    pub fn readlink(&self, ino: u64, out: &mut [u8]) -> Result<usize> {
        let i = self.read_inode(ino)?;
        if i.mode.get() & S_IFMT != S_IFLNK {
            return Err(Error::Invalid);
        }
        let size =
            usize::try_from(i.size.get()).map_err(|_| corrupt(self.leaf(), "symlink too long"))?;
        if size > MAX_SYMLINK {
            return Err(corrupt(self.leaf(), "symlink too long"));
        }
        let dst = out.get_mut(..size).ok_or(Error::TooBig)?;
        self.read(ino, 0, dst)
    }

    /// New hard link `newdir/newname` to `ino`.
    pub fn link(&mut self, ino: u64, newdir: u64, newname: &[u8]) -> Result<Attr> {
        self.check_writable()?;
        check_name(newname)?;
        self.ensure_space(0, 6)?;
        let mut i = self.read_inode(ino)?;
        if is_dir(&i) {
            return Err(Error::IsDir);
        }
        if self.lookup_entry(newdir, newname)?.is_some() {
            return Err(Error::Exists);
        }
        i.nlink = i.nlink.get().checked_add(1).ok_or(Error::TooBig)?.into();
        i.ctime = t(self.host.now());
        self.write_inode(ino, &i)?;
        self.add_entry(newdir, newname, ino, file_type_of(i.mode.get()))?;
        Ok(attr_of(ino, &i))
    }

    /// Drop one link of a non-directory; frees it when none are left.
    fn drop_link(&mut self, ino: u64) -> Result<bool> {
        let mut i = self.read_inode(ino)?;
        let n = i.nlink.get().saturating_sub(1);
        if n == 0 {
            self.make_orphan(ino)?;
            return Ok(true);
        }
        i.nlink = n.into();
        i.ctime = t(self.host.now());
        self.write_inode(ino, &i)?;
        Ok(false)
    }

    /// Mark an inode that no entry names any more: link count 0 and an
    /// ORPHAN item, so freeing its data may span several commits and a
    /// crash leaves a state that mount finishes.
    pub(crate) fn make_orphan(&mut self, ino: u64) -> Result<()> {
        let mut i = self.read_inode(ino)?;
        i.nlink = 0u32.into();
        i.ctime = t(self.host.now());
        self.write_inode(ino, &i)?;
        self.modify(
            TREE_FS,
            Key::new(ORPHAN_OBJECTID, ITEM_ORPHAN, ino),
            Op::Insert(&[]),
        )
    }

    /// Free an orphan: its extents and xattrs, then the inode and its
    /// ORPHAN item. May commit between items when space runs short (every
    /// intermediate state is consistent thanks to the ORPHAN item), so even
    /// a huge file on a full filesystem can be deleted.
    fn reap(&mut self, ino: u64) -> Result<()> {
        self.remove_items(ino, ITEM_EXTENT, 0, true)?;
        self.remove_items(ino, ITEM_XATTR, 0, false)?;
        self.ensure_space_freeing(0, 2)?;
        self.modify(TREE_FS, Key::new(ino, ITEM_INODE, 0), Op::Delete)?;
        self.modify(
            TREE_FS,
            Key::new(ORPHAN_OBJECTID, ITEM_ORPHAN, ino),
            Op::Delete,
        )?;
        self.inode_count = self.inode_count.saturating_sub(1);
        Ok(())
    }

    /// Finish deletions and truncations a crash interrupted (read-write
    /// mount).
    fn reap_all_orphans(&mut self) -> Result<()> {
        let mut leaf = self.block_buf()?;
        loop {
            let tree = self.fs_tree;
            let found = self.search_ge(
                &tree,
                Key::new(ORPHAN_OBJECTID, ITEM_ORPHAN, 0),
                leaf.as_mut(),
            )?;
            match found {
                Some((k, _)) if k.objectid == ORPHAN_OBJECTID && k.kind == ITEM_ORPHAN => {
                    let ino = k.offset;
                    let i = self.read_inode(ino)?;
                    if i.nlink.get() == 0 {
                        self.reap(ino)?;
                    } else {
                        // An interrupted truncate: drop what lies past the size.
                        let from = i
                            .size
                            .get()
                            .div_ceil(CHUNK_SIZE_U64)
                            .saturating_mul(CHUNK_SIZE_U64);
                        self.trim_whole_chunks(ino, from)?;
                        self.modify(
                            TREE_FS,
                            Key::new(ORPHAN_OBJECTID, ITEM_ORPHAN, ino),
                            Op::Delete,
                        )?;
                    }
                }
                _ => return self.commit(),
            }
        }
    }

    /// Delete every item (ino, kind, >= from), freeing extents if asked.
    /// Only for orphans: commits in between when space runs short.
    fn remove_items(&mut self, ino: u64, kind: u8, from: u64, extents: bool) -> Result<()> {
        let mut leaf = self.block_buf()?;
        loop {
            let tree = self.fs_tree;
            let Some((k, idx)) = self.search_ge(&tree, Key::new(ino, kind, from), leaf.as_mut())?
            else {
                return Ok(());
            };
            if k.objectid != ino || k.kind != kind {
                return Ok(());
            }
            let extent = if extents {
                let (_, data) = node::leaf_item(leaf.as_ref(), idx, 0)?;
                Some(
                    ExtentItem::read_from_bytes(data)
                        .map_err(|_| corrupt(self.leaf(), "extent item size"))?,
                )
            } else {
                None
            };
            // May commit (the orphan makes that safe); must come before
            // the extent is freed so no commit sees it freed but referenced.
            self.ensure_space_freeing(0, 1)?;
            if let Some(e) = extent {
                self.free_extent(&e)?;
            }
            self.modify(TREE_FS, k, Op::Delete)?;
        }
    }

    pub fn unlink(&mut self, dir: u64, name: &[u8]) -> Result<()> {
        match self.unlink_keep(dir, name)? {
            Some(orphan) => self.reap(orphan),
            None => Ok(()),
        }
    }

    /// unlink(2) for hosts that keep unlinked-but-open files alive: if the
    /// last link went, the inode stays readable and writable as an orphan
    /// and its number is returned; call `release_orphan` when it is closed.
    /// A crash before that frees it at the next mount.
    pub fn unlink_keep(&mut self, dir: u64, name: &[u8]) -> Result<Option<u64>> {
        self.check_writable()?;
        self.ensure_space_freeing(0, 8)?;
        let (ino, ftype, _) = self.lookup_entry(dir, name)?.ok_or(Error::NotFound)?;
        if u32::from(ftype) == S_IFDIR >> 12 {
            return Err(Error::IsDir);
        }
        self.entry_target(ino, ftype)?;
        self.remove_entry(dir, name)?;
        Ok(self.drop_link(ino)?.then_some(ino))
    }

    /// Free an orphan returned by `unlink_keep` / `rename_keep`.
    pub fn release_orphan(&mut self, ino: u64) -> Result<()> {
        self.check_writable()?;
        let i = self.read_inode(ino)?;
        if i.nlink.get() != 0 {
            return Err(Error::Invalid);
        }
        self.reap(ino)
    }

    fn dir_is_empty(&self, dir: u64) -> Result<bool> {
        let mut leaf = self.block_buf()?;
        let found = self.search_ge(
            &self.fs_tree,
            Key::new(dir, ITEM_DIR_INDEX, 0),
            leaf.as_mut(),
        )?;
        Ok(!matches!(found, Some((k, _)) if k.objectid == dir && k.kind == ITEM_DIR_INDEX))
    }

    pub fn rmdir(&mut self, dir: u64, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.ensure_space_freeing(0, 8)?;
        let (ino, ftype, _) = self.lookup_entry(dir, name)?.ok_or(Error::NotFound)?;
        if u32::from(ftype) != S_IFDIR >> 12 {
            return Err(Error::NotDir);
        }
        self.entry_target(ino, ftype)?;
        if !self.dir_is_empty(ino)? {
            return Err(Error::NotEmpty);
        }
        self.remove_entry(dir, name)?;
        self.make_orphan(ino)?;
        self.reap(ino)
    }

    /// Visit entries of `dir` with index >= `from`: f(index, name, ino,
    /// file type) returns false to stop.
    pub fn readdir(&self, dir: u64, from: u64, f: &mut DirFn<'_>) -> Result<()> {
        self.dir_inode(dir)?;
        let mut leaf = self.block_buf()?;
        let mut next = Key::new(dir, ITEM_DIR_INDEX, from);
        loop {
            let Some((k, idx)) = self.search_ge(&self.fs_tree, next, leaf.as_mut())? else {
                return Ok(());
            };
            if k.objectid != dir || k.kind != ITEM_DIR_INDEX {
                return Ok(());
            }
            let (_, data) = node::leaf_item(leaf.as_ref(), idx, 0)?;
            let mut go = true;
            for_each_entry(data, self.leaf(), &mut |name, value| {
                let dv = DirValue::read_from_bytes(value)
                    .map_err(|_| corrupt(self.leaf(), "dir index value size"))?;
                go = f(k.offset, name, dv.ino.get(), dv.file_type);
                Ok(false)
            })?;
            if !go {
                return Ok(());
            }
            match k.successor() {
                Some(s) => next = s,
                None => return Ok(()),
            }
        }
    }

    /// True if `ino` is `ancestor` or lies below it.
    fn is_within(&self, ino: u64, ancestor: u64) -> Result<bool> {
        // Walk the parent chain. A corrupt image may hold a cycle, so a
        // second walker moves at half speed (Floyd): meeting it means a
        // loop. Ends after at most ~3x the chain length either way.
        let mut cur = ino;
        let mut slow = ino;
        let mut odd = false;
        loop {
            if cur == ancestor {
                return Ok(true);
            }
            if cur == ROOT_INO {
                return Ok(false);
            }
            cur = self.dir_inode(cur)?.parent.get();
            if odd {
                slow = self.dir_inode(slow)?.parent.get();
            }
            odd = !odd;
            if cur == slow {
                return Err(corrupt(self.leaf(), "directory parent chain loops"));
            }
        }
    }

    fn set_parent(&mut self, ino: u64, parent: u64) -> Result<()> {
        let mut i = self.read_inode(ino)?;
        i.parent = parent.into();
        i.ctime = t(self.host.now());
        self.write_inode(ino, &i)
    }

    fn adjust_nlink(&mut self, ino: u64, delta: i32) -> Result<()> {
        let mut i = self.read_inode(ino)?;
        let n = i
            .nlink
            .get()
            .checked_add_signed(delta)
            .ok_or(Error::Invalid)?;
        i.nlink = n.into();
        self.write_inode(ino, &i)
    }

    /// rename(2) with RENAME_NOREPLACE / RENAME_EXCHANGE.
    pub fn rename(&mut self, od: u64, on: &[u8], nd: u64, nn: &[u8], flags: u32) -> Result<()> {
        match self.rename_keep(od, on, nd, nn, flags)? {
            Some(orphan) => self.reap(orphan),
            None => Ok(()),
        }
    }

    /// rename(2) that, like `unlink_keep`, returns a replaced target whose
    /// last link went instead of freeing it.
    pub fn rename_keep(
        &mut self,
        od: u64,
        on: &[u8],
        nd: u64,
        nn: &[u8],
        flags: u32,
    ) -> Result<Option<u64>> {
        self.check_writable()?;
        check_name(on)?;
        check_name(nn)?;
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
            || flags == RENAME_NOREPLACE | RENAME_EXCHANGE
        {
            return Err(Error::Invalid);
        }
        self.ensure_space(0, 24)?;
        let (sino, stype, _) = self.lookup_entry(od, on)?.ok_or(Error::NotFound)?;
        self.entry_target(sino, stype)?;
        let dst = self.lookup_entry(nd, nn)?;
        if let Some((dino, dtype, _)) = dst {
            self.entry_target(dino, dtype)?;
        }
        let dir_t = (S_IFDIR >> 12) as u8;
        if flags & RENAME_EXCHANGE != 0 {
            let (dino, dtype, _) = dst.ok_or(Error::NotFound)?;
            if od == nd && on == nn {
                return Ok(None);
            }
            if stype == dir_t && od != nd && self.is_within(nd, sino)? {
                return Err(Error::Invalid);
            }
            if dtype == dir_t && od != nd && self.is_within(od, dino)? {
                return Err(Error::Invalid);
            }
            self.retarget_entry(od, on, dino, dtype)?;
            self.retarget_entry(nd, nn, sino, stype)?;
            if od != nd {
                if stype == dir_t {
                    self.set_parent(sino, nd)?;
                }
                if dtype == dir_t {
                    self.set_parent(dino, od)?;
                }
                if stype == dir_t && dtype != dir_t {
                    self.adjust_nlink(od, -1)?;
                    self.adjust_nlink(nd, 1)?;
                } else if dtype == dir_t && stype != dir_t {
                    self.adjust_nlink(nd, -1)?;
                    self.adjust_nlink(od, 1)?;
                }
            }
            return Ok(None);
        }
        if let Some((dino, dtype, _)) = dst {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Error::Exists);
            }
            if dino == sino {
                // Same inode (hard links or the same entry): nothing to do.
                return Ok(None);
            }
            if stype == dir_t && dtype != dir_t {
                return Err(Error::NotDir);
            }
            if stype != dir_t && dtype == dir_t {
                return Err(Error::IsDir);
            }
        }
        if stype == dir_t && self.is_within(nd, sino)? {
            return Err(Error::Invalid);
        }
        // The replaced target is freed only after the rename is complete,
        // so a commit while freeing never exposes a half-done rename.
        let mut orphan = None;
        if let Some((dino, dtype, _)) = dst {
            if dtype == dir_t {
                if !self.dir_is_empty(dino)? {
                    return Err(Error::NotEmpty);
                }
                self.remove_entry(nd, nn)?;
                self.make_orphan(dino)?;
                orphan = Some(dino);
            } else {
                self.remove_entry(nd, nn)?;
                if self.drop_link(dino)? {
                    orphan = Some(dino);
                }
            }
        }
        self.remove_entry(od, on)?;
        self.add_entry(nd, nn, sino, stype)?;
        if stype == dir_t {
            self.set_parent(sino, nd)?;
        } else {
            let mut i = self.read_inode(sino)?;
            i.ctime = t(self.host.now());
            self.write_inode(sino, &i)?;
        }
        Ok(orphan)
    }

    // ----- file data ---------------------------------------------------

    fn chunk_bufs(&self) -> Result<ChunkBufs<H::Buf>> {
        let data = self.host.alloc(CHUNK_SIZE)?;
        let scratch = self.host.alloc(CHUNK_SIZE)?;
        if data.as_ref().len() != CHUNK_SIZE || scratch.as_ref().len() != CHUNK_SIZE {
            return Err(Error::NoMem);
        }
        Ok(ChunkBufs { data, scratch })
    }

    fn extent_at(&self, ino: u64, chunk: u64) -> Result<Option<ExtentItem>> {
        let e =
            self.lookup_struct::<ExtentItem>(&self.fs_tree, Key::new(ino, ITEM_EXTENT, chunk))?;
        if let Some(e) = &e {
            self.check_extent(e)?;
        }
        Ok(e)
    }

    /// Bounds and type checks of an extent item before its data is used.
    pub(crate) fn check_extent(&self, e: &ExtentItem) -> Result<()> {
        let at = e.addr.get();
        let stored = e.stored_len.get();
        let logical = e.logical_len.get();
        let blocks = u64::from(stored).div_ceil(BLOCK_SIZE_U64);
        let c =
            Compression::from_u8(e.compression).ok_or(corrupt(at, "unknown extent compression"))?;
        if stored == 0
            || stored as usize > CHUNK_SIZE
            || logical == 0
            || logical as usize > CHUNK_SIZE
            || (c == Compression::None && stored != logical)
            || (e.kind != EXTENT_REGULAR && e.kind != EXTENT_PREALLOC)
            || (e.kind == EXTENT_PREALLOC && c != Compression::None)
            || at < FIRST_USABLE_BLOCK
            || at
                .checked_add(blocks)
                .is_none_or(|end| end > self.info.total_blocks)
        {
            return Err(corrupt(at, "bad extent item"));
        }
        Ok(())
    }

    /// Read and verify an extent's stored blocks into `stored`, returning
    /// the byte count read (whole blocks).
    pub(crate) fn read_extent_raw(&self, e: &ExtentItem, stored: &mut [u8]) -> Result<usize> {
        let at = e.addr.get();
        let blocks = u64::from(e.stored_len.get()).div_ceil(BLOCK_SIZE_U64);
        let len =
            usize::try_from(blocks.saturating_mul(BLOCK_SIZE_U64)).map_err(|_| Error::Invalid)?;
        let buf = stored
            .get_mut(..len)
            .ok_or(corrupt(at, "extent larger than a chunk"))?;
        self.dev.read(at, buf)?;
        if self.data_csum(buf)? != e.csum {
            self.stats
                .data_bad
                .set(self.stats.data_bad.get().saturating_add(1));
            return Err(corrupt(at, "data checksum mismatch"));
        }
        Ok(len)
    }

    /// Fill `bufs.data` with the chunk's file data (zeros past its end);
    /// returns the extent and its logical length.
    fn load_chunk(
        &self,
        ino: u64,
        chunk: u64,
        bufs: &mut ChunkBufs<H::Buf>,
    ) -> Result<Option<(ExtentItem, usize)>> {
        bufs.data.as_mut().fill(0);
        let Some(e) = self.extent_at(ino, chunk)? else {
            return Ok(None);
        };
        let logical = e.logical_len.get() as usize;
        if e.kind == EXTENT_PREALLOC {
            return Ok(Some((e, logical)));
        }
        let c = Compression::from_u8(e.compression).unwrap_or(Compression::None);
        if c == Compression::None {
            self.read_extent_raw(&e, bufs.data.as_mut())?;
            // The padding of the last block is not file data.
            if let Some(tail) = bufs.data.as_mut().get_mut(logical..) {
                tail.fill(0);
            }
        } else {
            self.read_extent_raw(&e, bufs.scratch.as_mut())?;
            self.decode_scratch(&e, c, bufs)?;
        }
        Ok(Some((e, logical)))
    }

    /// Decompresses the extent `e` read into `bufs.scratch` into the start of `bufs.data`;
    /// it must decode to exactly its logical length.
    fn decode_scratch(
        &self,
        e: &ExtentItem,
        c: Compression,
        bufs: &mut ChunkBufs<H::Buf>,
    ) -> Result<()> {
        let at = e.addr.get();
        let logical = e.logical_len.get() as usize;
        let src = node::bytes(bufs.scratch.as_ref(), 0, e.stored_len.get() as usize, at)?;
        let dst = bufs
            .data
            .as_mut()
            .get_mut(..logical)
            .ok_or(corrupt(at, "bad extent length"))?;
        let n = self
            .host
            .decompress(c, src, dst)
            .map_err(|_| corrupt(at, "compressed data does not decode"))?;
        if n != logical {
            return Err(corrupt(at, "compressed data has the wrong length"));
        }
        Ok(())
    }

    pub(crate) fn free_extent(&mut self, e: &ExtentItem) -> Result<()> {
        self.check_extent(e)?;
        let blocks = u64::from(e.stored_len.get()).div_ceil(BLOCK_SIZE_U64);
        self.space.free(e.addr.get(), blocks)
    }

    /// Store `bufs.data[..logical]` as the new extent of `chunk`,
    /// replacing `old`. Updates `inode.stored_blocks` (caller writes it).
    fn store_chunk(
        &mut self,
        ino: u64,
        chunk: u64,
        logical: usize,
        old: Option<&ExtentItem>,
        inode: &mut InodeItem,
        bufs: &mut ChunkBufs<H::Buf>,
    ) -> Result<()> {
        if logical == 0 {
            if let Some(o) = old {
                self.free_extent(o)?;
                self.adjust_stored(inode, o, false);
                self.modify(TREE_FS, Key::new(ino, ITEM_EXTENT, chunk), Op::Delete)?;
            }
            return Ok(());
        }
        let algo = self.compression_for(inode);
        let data = bufs.data.as_ref().get(..logical).ok_or(Error::Invalid)?;
        // Compress only if it saves at least one block.
        let mut compressed: Option<usize> = None;
        if algo != Compression::None && logical > BLOCK_SIZE {
            let limit = logical.saturating_sub(BLOCK_SIZE) & !(BLOCK_SIZE - 1);
            let dst = bufs
                .scratch
                .as_mut()
                .get_mut(..limit)
                .ok_or(Error::Invalid)?;
            if let Ok(Some(n)) = self.host.compress(algo, data, dst) {
                if n > 0 && n <= limit {
                    compressed = Some(n);
                }
            }
        }
        let (stored_len, comp) = match compressed {
            Some(n) => (n, algo),
            None => {
                let (d, s) = (bufs.data.as_ref(), bufs.scratch.as_mut());
                let src = d.get(..logical).ok_or(Error::Invalid)?;
                s.get_mut(..logical)
                    .ok_or(Error::Invalid)?
                    .copy_from_slice(src);
                (logical, Compression::None)
            }
        };
        let blocks = stored_len.div_ceil(BLOCK_SIZE);
        let padded = blocks.saturating_mul(BLOCK_SIZE);
        let s = bufs.scratch.as_mut();
        if let Some(tail) = s.get_mut(stored_len..padded) {
            tail.fill(0);
        }
        let stored = s.get(..padded).ok_or(Error::Invalid)?;
        let csum = self.data_csum(stored)?;
        let addr = self.space.alloc(blocks as u64)?;
        if let Err(e) = self.dev.write(addr, stored) {
            self.space.free(addr, blocks as u64)?;
            return Err(e);
        }
        let ext = ExtentItem {
            addr: addr.into(),
            stored_len: (stored_len as u32).into(),
            logical_len: (logical as u32).into(),
            compression: comp as u8,
            kind: EXTENT_REGULAR,
            reserved0: [0; 6],
            generation: self.generation.into(),
            csum,
        };
        self.modify(
            TREE_FS,
            Key::new(ino, ITEM_EXTENT, chunk),
            Op::Upsert(ext.as_bytes()),
        )?;
        if let Some(o) = old {
            self.free_extent(o)?;
            self.adjust_stored(inode, o, false);
        }
        self.adjust_stored(inode, &ext, true);
        Ok(())
    }

    fn adjust_stored(&self, inode: &mut InodeItem, e: &ExtentItem, add: bool) {
        let b = u64::from(e.stored_len.get()).div_ceil(BLOCK_SIZE_U64);
        let cur = inode.stored_blocks.get();
        inode.stored_blocks = (if add {
            cur.saturating_add(b)
        } else {
            cur.saturating_sub(b)
        })
        .into();
    }

    fn regular_file(&self, ino: u64) -> Result<InodeItem> {
        let i = self.read_inode(ino)?;
        match i.mode.get() & S_IFMT {
            S_IFREG | S_IFLNK => Ok(i),
            S_IFDIR => Err(Error::IsDir),
            _ => Err(Error::Invalid),
        }
    }

    /// Read up to `buf.len()` bytes at `off`; returns bytes read (short at EOF).
    pub fn read(&self, ino: u64, off: u64, buf: &mut [u8]) -> Result<usize> {
        let i = self.regular_file(ino)?;
        let size = i.size.get();
        if off >= size || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(size.saturating_sub(off));
        let mut bufs = self.chunk_bufs()?;
        let mut done: u64 = 0;
        while done < want {
            let pos = off.saturating_add(done);
            let chunk = pos & !(CHUNK_SIZE_U64 - 1);
            let in_chunk = (pos.saturating_sub(chunk)) as usize;
            let n = (CHUNK_SIZE.saturating_sub(in_chunk) as u64).min(want.saturating_sub(done))
                as usize;
            self.load_chunk(ino, chunk, &mut bufs)?;
            let src = node::bytes(bufs.data.as_ref(), in_chunk, n, 0)?;
            let d = done as usize;
            buf.get_mut(d..d.saturating_add(n))
                .ok_or(Error::Invalid)?
                .copy_from_slice(src);
            done = done.saturating_add(n as u64);
        }
        Ok(done as usize)
    }

    /// Write `data` at `off`, extending the file as needed.
    pub fn write(&mut self, ino: u64, off: u64, data: &[u8]) -> Result<usize> {
        self.check_writable()?;
        self.regular_file(ino)?;
        self.ensure_space(CHUNK_SIZE_U64 / BLOCK_SIZE_U64, 4)?;
        self.write_data(ino, off, data)
    }

    fn write_data(&mut self, ino: u64, off: u64, data: &[u8]) -> Result<usize> {
        let end = off.checked_add(data.len() as u64).ok_or(Error::TooBig)?;
        if end > MAX_FILE_SIZE {
            return Err(Error::TooBig);
        }
        let mut i = self.read_inode(ino)?;
        let mut bufs = self.chunk_bufs()?;
        let mut done: usize = 0;
        while done < data.len() {
            let pos = off.saturating_add(done as u64);
            let chunk = pos & !(CHUNK_SIZE_U64 - 1);
            let in_chunk = pos.saturating_sub(chunk) as usize;
            let n = CHUNK_SIZE
                .saturating_sub(in_chunk)
                .min(data.len().saturating_sub(done));
            if let Err(e) = self.ensure_space_in_op(CHUNK_SIZE_U64 / BLOCK_SIZE_U64, 3, false) {
                if done == 0 {
                    return Err(e);
                }
                // Out of space part way: a short write of what is stored.
                break;
            }
            // A write covering the whole chunk needs the old extent only to
            // free it, not its data.
            let old = if in_chunk == 0 && n == CHUNK_SIZE {
                self.extent_at(ino, chunk)?.map(|e| {
                    let l = e.logical_len.get() as usize;
                    (e, l)
                })
            } else {
                self.load_chunk(ino, chunk, &mut bufs)?
            };
            let old_len = old
                .as_ref()
                .map_or(0, |(e, l)| if e.kind == EXTENT_PREALLOC { 0 } else { *l });
            let src = data
                .get(done..done.saturating_add(n))
                .ok_or(Error::Invalid)?;
            node::bytes_mut(bufs.data.as_mut(), in_chunk, n, 0)?.copy_from_slice(src);
            let mut logical = old_len.max(in_chunk.saturating_add(n));
            // A prealloc extent inside i_size keeps covering what it covered.
            if let Some((e, l)) = &old {
                if e.kind == EXTENT_PREALLOC {
                    let in_size = i.size.get().saturating_sub(chunk).min(CHUNK_SIZE_U64) as usize;
                    logical = logical.max(in_size.min(*l));
                }
            }
            self.store_chunk(
                ino,
                chunk,
                logical,
                old.as_ref().map(|(e, _)| e),
                &mut i,
                &mut bufs,
            )?;
            done = done.saturating_add(n);
        }
        let now = self.host.now();
        let written_end = off.saturating_add(done as u64);
        if written_end > i.size.get() {
            i.size = written_end.into();
        }
        i.mtime = t(now);
        i.ctime = t(now);
        self.write_inode(ino, &i)?;
        Ok(done)
    }

    /// Set the file size; shrinking frees data past the new end.
    pub fn truncate(&mut self, ino: u64, size: u64) -> Result<()> {
        self.check_writable()?;
        if size > MAX_FILE_SIZE {
            return Err(Error::TooBig);
        }
        let mut i = self.regular_file(ino)?;
        self.ensure_space_freeing(CHUNK_SIZE_U64 / BLOCK_SIZE_U64, 4)?;
        let old = i.size.get();
        if size < old {
            self.trim_partial_chunk(ino, size, &mut i)?;
        }
        i.size = size.into();
        let now = self.host.now();
        i.mtime = t(now);
        i.ctime = t(now);
        self.write_inode(ino, &i)?;
        let first_whole = size.div_ceil(CHUNK_SIZE_U64).saturating_mul(CHUNK_SIZE_U64);
        if size < old && self.next_extent(ino, first_whole)?.is_some() {
            // Whole chunks past the new end go one by one, possibly over
            // several commits; the ORPHAN record makes the intermediate
            // states (extents past the size) legal and mount finishes them.
            // An unlinked file still open already has its record (mount
            // frees all of it), which must stay.
            let orphan = Key::new(ORPHAN_OBJECTID, ITEM_ORPHAN, ino);
            let linked = i.nlink.get() > 0;
            if linked {
                self.modify(TREE_FS, orphan, Op::Insert(&[]))?;
            }
            self.trim_whole_chunks(ino, first_whole)?;
            if linked {
                self.modify(TREE_FS, orphan, Op::Delete)?;
            }
        }
        Ok(())
    }

    /// Test hook: perform only the first half of an unlink or truncate of
    /// `dir/name`, as a crash between two commits of a long deletion would
    /// leave it. Not for normal use.
    #[doc(hidden)]
    pub fn debug_interrupt(&mut self, what: Interrupt, dir: u64, name: &[u8]) -> Result<()> {
        let (ino, _, _) = self.lookup_entry(dir, name)?.ok_or(Error::NotFound)?;
        match what {
            Interrupt::Unlink => {
                self.remove_entry(dir, name)?;
                self.make_orphan(ino)
            }
            Interrupt::Truncate => {
                let mut i = self.regular_file(ino)?;
                i.size = 0u64.into();
                self.write_inode(ino, &i)?;
                self.modify(
                    TREE_FS,
                    Key::new(ORPHAN_OBJECTID, ITEM_ORPHAN, ino),
                    Op::Insert(&[]),
                )
            }
        }
    }

    /// The first extent of `ino` at or after file offset `from`.
    fn next_extent(&self, ino: u64, from: u64) -> Result<Option<(u64, ExtentItem)>> {
        let mut leaf = self.block_buf()?;
        match self.search_ge(
            &self.fs_tree,
            Key::new(ino, ITEM_EXTENT, from),
            leaf.as_mut(),
        )? {
            Some((k, idx)) if k.objectid == ino && k.kind == ITEM_EXTENT => {
                let (_, d) = node::leaf_item(leaf.as_ref(), idx, 0)?;
                let e = ExtentItem::read_from_bytes(d)
                    .map_err(|_| corrupt(self.leaf(), "extent item size"))?;
                Ok(Some((k.offset, e)))
            }
            _ => Ok(None),
        }
    }

    /// Delete every extent of `ino` from file offset `from` on, updating
    /// the inode after each so any commit in between is consistent (the
    /// caller holds an ORPHAN record for the inode).
    fn trim_whole_chunks(&mut self, ino: u64, from: u64) -> Result<()> {
        loop {
            // May commit; nothing is half done at this point.
            self.ensure_space_freeing(0, 2)?;
            let Some((chunk, e)) = self.next_extent(ino, from)? else {
                return Ok(());
            };
            let mut i = self.read_inode(ino)?;
            self.free_extent(&e)?;
            self.adjust_stored(&mut i, &e, false);
            self.modify(TREE_FS, Key::new(ino, ITEM_EXTENT, chunk), Op::Delete)?;
            self.write_inode(ino, &i)?;
        }
    }

    /// Cut the chunk holding byte `size` so nothing past `size` survives.
    fn trim_partial_chunk(&mut self, ino: u64, size: u64, i: &mut InodeItem) -> Result<()> {
        let partial = size & (CHUNK_SIZE_U64 - 1);
        if partial == 0 {
            return Ok(());
        }
        let chunk = size.saturating_sub(partial);
        let mut bufs = self.chunk_bufs()?;
        if let Some((e, l)) = self.load_chunk(ino, chunk, &mut bufs)? {
            // A preallocated extent still reads as zeros: keep it.
            if l as u64 > partial && e.kind != EXTENT_PREALLOC {
                self.store_chunk(ino, chunk, partial as usize, Some(&e), i, &mut bufs)?;
            }
        }
        Ok(())
    }

    /// fallocate(2): preallocate (mode 0 / KEEP_SIZE) or punch a hole
    /// (PUNCH_HOLE | KEEP_SIZE).
    pub fn fallocate(&mut self, ino: u64, off: u64, len: u64, mode: u32) -> Result<()> {
        self.check_writable()?;
        let end = off.checked_add(len).ok_or(Error::TooBig)?;
        if len == 0 || end > MAX_FILE_SIZE {
            return Err(if len == 0 {
                Error::Invalid
            } else {
                Error::TooBig
            });
        }
        let mut i = self.read_inode(ino)?;
        if i.mode.get() & S_IFMT != S_IFREG {
            return Err(if is_dir(&i) {
                Error::IsDir
            } else {
                Error::Invalid
            });
        }
        if mode & FALLOC_PUNCH_HOLE != 0 {
            if mode != FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE {
                return Err(Error::Unsupported("punch hole without keep size"));
            }
            self.ensure_space_freeing(CHUNK_SIZE_U64 / BLOCK_SIZE_U64, 4)?;
            self.punch(ino, off, end, &mut i)?;
        } else if mode & !FALLOC_KEEP_SIZE != 0 {
            return Err(Error::Unsupported("fallocate mode"));
        } else {
            let first = off & !(CHUNK_SIZE_U64 - 1);
            let chunks = end.saturating_sub(first).div_ceil(CHUNK_SIZE_U64);
            let per = CHUNK_SIZE_U64 / BLOCK_SIZE_U64;
            // Refuse up front rather than fail half way.
            self.ensure_space(chunks.saturating_mul(per), chunks.saturating_add(1))?;
            let mut chunk = first;
            while chunk < end {
                if self.extent_at(ino, chunk)?.is_none() {
                    if let Err(e) = self.ensure_space_in_op(per, 2, false) {
                        return Err(self.abort_op(e));
                    }
                    let addr = self.space.alloc(per)?;
                    let ext = ExtentItem {
                        addr: addr.into(),
                        stored_len: (CHUNK_SIZE as u32).into(),
                        logical_len: (CHUNK_SIZE as u32).into(),
                        compression: Compression::None as u8,
                        kind: EXTENT_PREALLOC,
                        reserved0: [0; 6],
                        generation: self.generation.into(),
                        csum: [0; 32],
                    };
                    self.modify(
                        TREE_FS,
                        Key::new(ino, ITEM_EXTENT, chunk),
                        Op::Insert(ext.as_bytes()),
                    )?;
                    self.adjust_stored(&mut i, &ext, true);
                }
                chunk = chunk.saturating_add(CHUNK_SIZE_U64);
            }
            if mode & FALLOC_KEEP_SIZE == 0 && end > i.size.get() {
                i.size = end.into();
            }
        }
        i.ctime = t(self.host.now());
        self.write_inode(ino, &i)
    }

    /// Zero `[off, end)`, freeing whole chunks and rewriting partial ones.
    fn punch(&mut self, ino: u64, off: u64, end: u64, i: &mut InodeItem) -> Result<()> {
        let mut leaf = self.block_buf()?;
        let mut bufs = self.chunk_bufs()?;
        let mut next = Key::new(ino, ITEM_EXTENT, off & !(CHUNK_SIZE_U64 - 1));
        loop {
            let tree = self.fs_tree;
            let Some((k, _)) = self.search_ge(&tree, next, leaf.as_mut())? else {
                return Ok(());
            };
            if k.objectid != ino || k.kind != ITEM_EXTENT || k.offset >= end {
                return Ok(());
            }
            let chunk = k.offset;
            let chunk_end = chunk.saturating_add(CHUNK_SIZE_U64);
            if let Err(e) = self.ensure_space_in_op(CHUNK_SIZE_U64 / BLOCK_SIZE_U64, 3, true) {
                return Err(self.abort_op(e));
            }
            if let Some((e, l)) = self.load_chunk(ino, chunk, &mut bufs)? {
                if off <= chunk && end >= chunk_end {
                    self.free_extent(&e)?;
                    self.adjust_stored(i, &e, false);
                    self.modify(TREE_FS, k, Op::Delete)?;
                } else if e.kind == EXTENT_REGULAR {
                    let a = off.max(chunk).saturating_sub(chunk) as usize;
                    let b = end.min(chunk_end).saturating_sub(chunk) as usize;
                    if let Some(z) = bufs.data.as_mut().get_mut(a..b) {
                        z.fill(0);
                    }
                    self.store_chunk(ino, chunk, l, Some(&e), i, &mut bufs)?;
                }
            }
            match chunk_end
                .checked_sub(1)
                .map(|x| Key::new(ino, ITEM_EXTENT, x))
                .and_then(|k| k.successor())
            {
                Some(n) if chunk_end > chunk => next = n,
                _ => return Ok(()),
            }
        }
    }

    // ----- extended attributes -----------------------------------------

    fn check_xattr_name(name: &[u8]) -> Result<()> {
        if name.is_empty() || name.contains(&0) {
            return Err(Error::Invalid);
        }
        if name.len() > MAX_NAME {
            return Err(Error::NameTooLong);
        }
        Ok(())
    }

    /// Value of xattr `name` copied into `out`; returns its length.
    pub fn getxattr(&self, ino: u64, name: &[u8], out: &mut [u8]) -> Result<usize> {
        Self::check_xattr_name(name)?;
        let i = self.read_inode(ino)?;
        if name == COMPRESSION_XATTR {
            let v = match i.flags.get() & 0xf {
                0 => return Err(Error::NoData),
                f => Compression::from_u8(u8::try_from(f.saturating_sub(1)).unwrap_or(u8::MAX))
                    .ok_or(corrupt(self.leaf(), "bad compression flag"))?
                    .name()
                    .as_bytes(),
            };
            if !out.is_empty() {
                out.get_mut(..v.len())
                    .ok_or(Error::TooBig)?
                    .copy_from_slice(v);
            }
            return Ok(v.len());
        }
        let mut v = [0u8; MAX_XATTR_VALUE];
        let n = self
            .hashed_get(Key::new(ino, ITEM_XATTR, name_hash(name)), name, &mut v)?
            .ok_or(Error::NoData)?;
        let src = v
            .get(..n)
            .ok_or(corrupt(self.leaf(), "xattr value too long"))?;
        if out.is_empty() {
            return Ok(n);
        }
        out.get_mut(..n).ok_or(Error::TooBig)?.copy_from_slice(src);
        Ok(n)
    }

    pub fn setxattr(&mut self, ino: u64, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        self.check_writable()?;
        Self::check_xattr_name(name)?;
        if value.len() > MAX_XATTR_VALUE {
            return Err(Error::TooBig);
        }
        if name == COMPRESSION_XATTR {
            let c = [
                Compression::None,
                Compression::Zstd,
                Compression::Lzo,
                Compression::Zlib,
            ]
            .into_iter()
            .find(|c| c.name().as_bytes() == value)
            .ok_or(Error::Invalid)?;
            return self.set_compression(ino, Some(c));
        }
        self.ensure_space(0, 2)?;
        let mut i = self.read_inode(ino)?;
        self.hashed_put(
            Key::new(ino, ITEM_XATTR, name_hash(name)),
            name,
            value,
            flags & XATTR_CREATE != 0,
            flags & XATTR_REPLACE != 0,
        )?;
        i.ctime = t(self.host.now());
        self.write_inode(ino, &i)
    }

    pub fn removexattr(&mut self, ino: u64, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        Self::check_xattr_name(name)?;
        if name == COMPRESSION_XATTR {
            return self.set_compression(ino, None);
        }
        self.ensure_space_freeing(0, 2)?;
        let mut i = self.read_inode(ino)?;
        self.hashed_remove(Key::new(ino, ITEM_XATTR, name_hash(name)), name)
            .map_err(|e| {
                if e == Error::NotFound {
                    Error::NoData
                } else {
                    e
                }
            })?;
        i.ctime = t(self.host.now());
        self.write_inode(ino, &i)
    }

    /// Visit every xattr name of `ino`.
    pub fn listxattr(&self, ino: u64, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        if self.read_inode(ino)?.flags.get() & 0xf != 0 {
            f(COMPRESSION_XATTR);
        }
        let mut leaf = self.block_buf()?;
        let mut next = Key::new(ino, ITEM_XATTR, 0);
        loop {
            let Some((k, idx)) = self.search_ge(&self.fs_tree, next, leaf.as_mut())? else {
                return Ok(());
            };
            if k.objectid != ino || k.kind != ITEM_XATTR {
                return Ok(());
            }
            let (_, data) = node::leaf_item(leaf.as_ref(), idx, 0)?;
            for_each_entry(data, self.leaf(), &mut |name, _| {
                f(name);
                Ok(true)
            })?;
            match k.successor() {
                Some(s) => next = s,
                None => return Ok(()),
            }
        }
    }

    /// Fully verify one extent item: bounds, data checksum, and that
    /// compressed data decodes to its logical length (fsck, scrub).
    pub fn verify_extent(&self, e: &ExtentItem) -> Result<()> {
        self.check_extent(e)?;
        if e.kind == EXTENT_PREALLOC {
            return Ok(());
        }
        let mut bufs = self.chunk_bufs()?;
        self.read_extent_raw(e, bufs.scratch.as_mut())?;
        let c = Compression::from_u8(e.compression).unwrap_or(Compression::None);
        if c != Compression::None {
            self.decode_scratch(e, c, &mut bufs)?;
        }
        Ok(())
    }

    /// The fs tree (for tools that walk it).
    pub fn fs_root(&self) -> TreeRoot {
        self.fs_tree
    }
}

/// Parse the entries of a DIR_HASH/DIR_INDEX/XATTR item (for fsck).
pub fn parse_entries(data: &[u8], f: &mut EntryFn<'_>) -> Result<()> {
    for_each_entry(data, 0, f).map(|_| ())
}
