//! `ferfs mount`: serve a volume through FUSE (fuser without libfuse;
//! mounting goes through the `fusermount3` helper).
//!
//! fuser's session loop is single-threaded and hands us `&mut self`, which
//! is the serialisation the core expects from its host.

use crate::{FileDevice, StdHost};
use ferfs_core::format::*;
use ferfs_core::fs::Attr;
use ferfs_core::{Error, SetAttr, Volume};
use fuser::{
    FileAttr, FileType, Filesystem, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TTL: Duration = Duration::from_secs(1);
/// Commit at least this often even without fsync.
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);

type Vol = Volume<FileDevice, StdHost>;

pub struct FuseFs {
    /// Shared with the thread that commits every few seconds.
    vol: Arc<Mutex<Vol>>,
    last_commit: Instant,
    /// Open handles per inode: an unlinked file stays alive while open.
    open_count: HashMap<u64, u32>,
    /// Unlinked inodes still open, freed at their last release.
    orphans_open: HashSet<u64>,
}

fn to_time(t: (i64, u32)) -> SystemTime {
    if t.0 >= 0 {
        UNIX_EPOCH + Duration::new(t.0 as u64, t.1.min(999_999_999))
    } else {
        UNIX_EPOCH - Duration::from_secs(t.0.unsigned_abs())
    }
}

fn from_time(t: TimeOrNow) -> (i64, u32) {
    let st = match t {
        TimeOrNow::SpecificTime(s) => s,
        TimeOrNow::Now => SystemTime::now(),
    };
    match st.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => (-(e.duration().as_secs() as i64), 0),
    }
}

fn kind_of(mode: u32) -> FileType {
    match mode & S_IFMT {
        S_IFDIR => FileType::Directory,
        S_IFLNK => FileType::Symlink,
        S_IFBLK => FileType::BlockDevice,
        S_IFCHR => FileType::CharDevice,
        S_IFIFO => FileType::NamedPipe,
        S_IFSOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn fattr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: a.ino,
        size: a.size,
        blocks: a.sectors,
        atime: to_time(a.atime),
        mtime: to_time(a.mtime),
        ctime: to_time(a.ctime),
        crtime: to_time(a.btime),
        kind: kind_of(a.mode),
        perm: (a.mode & 0o7777) as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev as u32,
        blksize: BLOCK_SIZE as u32,
        flags: 0,
    }
}

impl FuseFs {
    pub fn new(vol: Vol) -> Self {
        let vol = Arc::new(Mutex::new(vol));
        // Commit periodically even when the mount is idle; the thread ends
        // once the filesystem is dropped (after unmount).
        let weak = Arc::downgrade(&vol);
        std::thread::spawn(move || loop {
            std::thread::sleep(COMMIT_INTERVAL);
            let Some(vol) = weak.upgrade() else { return };
            let mut v = vol.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = v.sync() {
                eprintln!("ferfs: periodic commit failed: {e}");
            }
        });
        FuseFs {
            vol,
            last_commit: Instant::now(),
            open_count: HashMap::new(),
            orphans_open: HashSet::new(),
        }
    }

    /// The volume, locked against the commit thread.
    fn v(&self) -> MutexGuard<'_, Vol> {
        self.vol.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commits the volume now and restarts the commit interval.
    fn commit(&mut self) -> Result<(), Error> {
        let r = self.v().sync();
        self.last_commit = Instant::now();
        r
    }

    fn maybe_commit(&mut self) {
        if self.last_commit.elapsed() >= COMMIT_INTERVAL {
            if let Err(e) = self.commit() {
                eprintln!("ferfs: commit failed: {e}");
            }
        }
    }

    /// An inode lost its last link: free it now, or at its last close.
    fn orphaned(&mut self, orphan: Option<u64>) -> Result<(), Error> {
        match orphan {
            Some(ino) if self.open_count.get(&ino).copied().unwrap_or(0) > 0 => {
                self.orphans_open.insert(ino);
                Ok(())
            }
            Some(ino) => self.v().release_orphan(ino),
            None => Ok(()),
        }
    }

    fn entry(&mut self, r: Result<Attr, Error>, reply: ReplyEntry) {
        match r {
            Ok(a) => reply.entry(&TTL, &fattr(&a), 0),
            Err(e) => reply.error(e.errno()),
        }
        self.maybe_commit();
    }

    fn empty(&mut self, r: Result<(), Error>, reply: ReplyEmpty) {
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.errno()),
        }
        self.maybe_commit();
    }
}

impl Filesystem for FuseFs {
    fn init(
        &mut self,
        _req: &Request<'_>,
        config: &mut fuser::KernelConfig,
    ) -> Result<(), libc::c_int> {
        // Writes rewrite whole 128 KiB chunks: let the kernel send whole
        // chunks instead of pages (the kernel may clamp these).
        let _ = config.set_max_write(CHUNK_SIZE as u32);
        let _ = config.set_max_readahead(CHUNK_SIZE as u32);
        Ok(())
    }

    fn destroy(&mut self) {
        for ino in std::mem::take(&mut self.orphans_open) {
            if let Err(e) = self.v().release_orphan(ino) {
                eprintln!("ferfs: freeing unlinked inode {ino} failed: {e}");
            }
        }
        if let Err(e) = self.v().sync() {
            eprintln!("ferfs: final commit failed: {e}");
        }
    }

    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let r = self.v().lookup_attr(parent, name.as_bytes());
        self.entry(r, reply);
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.v().getattr(ino) {
            Ok(a) => reply.attr(&TTL, &fattr(&a)),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let s = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(from_time),
            mtime: mtime.map(from_time),
        };
        match self.v().setattr(ino, &s) {
            Ok(a) => reply.attr(&TTL, &fattr(&a)),
            Err(e) => reply.error(e.errno()),
        }
        self.maybe_commit();
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        let mut buf = vec![0u8; MAX_SYMLINK];
        match self.v().readlink(ino, &mut buf) {
            Ok(n) => reply.data(&buf[..n]),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn mknod(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let r = self.v().create(
            parent,
            name.as_bytes(),
            mode & !umask,
            req.uid(),
            req.gid(),
            u64::from(rdev),
        );
        self.entry(r, reply);
    }

    fn mkdir(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self
            .v()
            .mkdir(parent, name.as_bytes(), mode & !umask, req.uid(), req.gid());
        self.entry(r, reply);
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        // Two statements: the volume lock is released before `orphaned`
        // takes it again.
        let r = self.v().unlink_keep(parent, name.as_bytes());
        let r = r.and_then(|o| self.orphaned(o));
        self.empty(r, reply);
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let r = self.v().rmdir(parent, name.as_bytes());
        self.empty(r, reply);
    }

    fn symlink(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = self.v().symlink(
            parent,
            link_name.as_bytes(),
            target.as_os_str().as_bytes(),
            req.uid(),
            req.gid(),
        );
        self.entry(r, reply);
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        let r = self.v().rename_keep(
            parent,
            name.as_bytes(),
            newparent,
            newname.as_bytes(),
            flags,
        );
        let r = r.and_then(|o| self.orphaned(o));
        self.empty(r, reply);
    }

    fn link(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        newparent: u64,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let r = self.v().link(ino, newparent, newname.as_bytes());
        self.entry(r, reply);
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        *self.open_count.entry(ino).or_default() += 1;
        reply.opened(0, 0);
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let left = match self.open_count.get_mut(&ino) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n
            }
            None => 0,
        };
        if left == 0 {
            self.open_count.remove(&ino);
            if self.orphans_open.remove(&ino) {
                if let Err(e) = self.v().release_orphan(ino) {
                    return reply.error(e.errno());
                }
            }
        }
        reply.ok();
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let mut buf = vec![0u8; size as usize];
        match self.v().read(ino, offset.max(0) as u64, &mut buf) {
            Ok(n) => reply.data(&buf[..n]),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        match self.v().write(ino, offset.max(0) as u64, data) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(e.errno()),
        }
        self.maybe_commit();
    }

    fn fsync(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.commit();
        self.empty(r, reply);
    }

    fn fsyncdir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.commit();
        self.empty(r, reply);
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        // Offsets: 1 after ".", 2 after "..", then DIR_INDEX + 1.
        let parent = match self.v().parent_of(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(e.errno()),
        };
        let mut off = offset.max(0) as u64;
        if off == 0 {
            if reply.add(ino, 1, FileType::Directory, ".") {
                return reply.ok();
            }
            off = 1;
        }
        if off == 1 {
            if reply.add(parent, 2, FileType::Directory, "..") {
                return reply.ok();
            }
            off = 2;
        }
        let from = off.max(FIRST_DIR_INDEX);
        let r = self
            .v()
            .readdir(ino, from, &mut |index, name, child, ftype| {
                !reply.add(
                    child,
                    (index + 1) as i64,
                    kind_of(u32::from(ftype) << 12),
                    OsStr::from_bytes(name),
                )
            });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        let s = self.v().statfs();
        reply.statfs(
            s.blocks,
            s.blocks_free,
            s.blocks_avail,
            s.files,
            u64::MAX - s.files,
            s.block_size,
            s.name_max,
            s.block_size,
        );
    }

    fn setxattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let r = self.v().setxattr(ino, name.as_bytes(), value, flags as u32);
        self.empty(r, reply);
    }

    fn getxattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        name: &OsStr,
        size: u32,
        reply: ReplyXattr,
    ) {
        let mut buf = vec![0u8; MAX_XATTR_VALUE];
        match self.v().getxattr(ino, name.as_bytes(), &mut buf) {
            Ok(n) if size == 0 => reply.size(n as u32),
            Ok(n) if n <= size as usize => reply.data(&buf[..n]),
            Ok(_) => reply.error(libc::ERANGE),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn listxattr(&mut self, _req: &Request<'_>, ino: u64, size: u32, reply: ReplyXattr) {
        let mut out = Vec::new();
        let r = self.v().listxattr(ino, &mut |n| {
            out.extend_from_slice(n);
            out.push(0);
        });
        match r {
            Ok(()) if size == 0 => reply.size(out.len() as u32),
            Ok(()) if out.len() <= size as usize => reply.data(&out),
            Ok(()) => reply.error(libc::ERANGE),
            Err(e) => reply.error(e.errno()),
        }
    }

    fn removexattr(&mut self, _req: &Request<'_>, ino: u64, name: &OsStr, reply: ReplyEmpty) {
        let r = self.v().removexattr(ino, name.as_bytes());
        self.empty(r, reply);
    }

    fn create(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self.v().create(
            parent,
            name.as_bytes(),
            mode & !umask,
            req.uid(),
            req.gid(),
            0,
        );
        match r {
            Ok(a) => {
                *self.open_count.entry(a.ino).or_default() += 1;
                reply.created(&TTL, &fattr(&a), 0, 0, 0)
            }
            Err(e) => reply.error(e.errno()),
        }
        self.maybe_commit();
    }

    fn fallocate(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        length: i64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        if offset < 0 || length <= 0 {
            return reply.error(libc::EINVAL);
        }
        // Linux FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2: same bits as the core's.
        let r = self
            .v()
            .fallocate(ino, offset as u64, length as u64, mode as u32);
        self.empty(r, reply);
    }
}

/// Mount and serve until unmounted.
pub fn mount(vol: Vol, dir: &str, read_only: bool) -> std::io::Result<()> {
    use fuser::MountOption;
    let mut opts = vec![
        MountOption::FSName("ferfs".into()),
        MountOption::DefaultPermissions,
    ];
    if read_only {
        opts.push(MountOption::RO);
    }
    fuser::mount2(FuseFs::new(vol), dir, &opts)
}
