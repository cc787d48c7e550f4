//! The entry points of the fuzz targets (`ferfs/fuzz`, `cargo +nightly
//! fuzz`), kept here so stable `cargo test` can replay the seed corpus and
//! every past finding through exactly the same code.
//!
//! A fuzz input is a sparse image: records of (block number: u32 LE,
//! length: u16 LE, that many bytes), each the start of a 4 KiB block whose
//! rest is zero, on a device of [`FUZZ_BLOCKS`] blocks that is otherwise
//! zero. A truncated last record is zero-padded. Mutating a record mutates
//! that block in place, so small mkfs'd images make a useful corpus.

use crate::{check, StdHost};
use ferfs_core::format::*;
use ferfs_core::{BlockDevice, Error, MountOptions, Result, Volume};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// Device size of a fuzz image: the minimum filesystem size (16 MiB).
pub const FUZZ_BLOCKS: u64 = MIN_BLOCKS;
/// Bytes read from one file at most, and from all files together.
const READ_PER_FILE: u64 = 512 * 1024;
const READ_TOTAL: u64 = 4 << 20;
/// Directory entries and inodes visited at most.
const MAX_VISITS: usize = 20_000;

/// A zero-filled device holding only the blocks written to it.
#[derive(Default)]
pub struct SparseDevice {
    blocks: RefCell<BTreeMap<u64, Box<[u8; BLOCK_SIZE]>>>,
}

impl SparseDevice {
    /// Decode a fuzz input.
    pub fn decode(mut data: &[u8]) -> Self {
        let dev = SparseDevice::default();
        while data.len() >= 6 {
            let block = u64::from(u32::from_le_bytes([data[0], data[1], data[2], data[3]]));
            let len = usize::from(u16::from_le_bytes([data[4], data[5]])).min(BLOCK_SIZE);
            data = &data[6..];
            let take = len.min(data.len());
            if block < FUZZ_BLOCKS {
                let mut b = Box::new([0u8; BLOCK_SIZE]);
                b[..take].copy_from_slice(&data[..take]);
                dev.blocks.borrow_mut().insert(block, b);
            }
            data = &data[take..];
        }
        dev
    }

    /// Encode a whole image (its first [`FUZZ_BLOCKS`] blocks) as a fuzz
    /// input: every block that is not all zero, trailing zeroes trimmed.
    pub fn encode(image: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, b) in image
            .chunks(BLOCK_SIZE)
            .enumerate()
            .take(FUZZ_BLOCKS as usize)
        {
            let Some(last) = b.iter().rposition(|&x| x != 0) else {
                continue;
            };
            out.extend_from_slice(&(n as u32).to_le_bytes());
            out.extend_from_slice(&((last + 1) as u16).to_le_bytes());
            out.extend_from_slice(&b[..=last]);
        }
        out
    }
}

impl BlockDevice for SparseDevice {
    fn num_blocks(&self) -> u64 {
        FUZZ_BLOCKS
    }
    fn read(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        let blocks = self.blocks.borrow();
        for (i, chunk) in buf.chunks_mut(BLOCK_SIZE).enumerate() {
            let at = block.checked_add(i as u64).ok_or(Error::Io { block })?;
            if at >= FUZZ_BLOCKS || chunk.len() != BLOCK_SIZE {
                return Err(Error::Io { block: at });
            }
            match blocks.get(&at) {
                Some(b) => chunk.copy_from_slice(&b[..]),
                None => chunk.fill(0),
            }
        }
        Ok(())
    }
    fn write(&self, block: u64, buf: &[u8]) -> Result<()> {
        let mut blocks = self.blocks.borrow_mut();
        for (i, chunk) in buf.chunks(BLOCK_SIZE).enumerate() {
            let at = block.checked_add(i as u64).ok_or(Error::Io { block })?;
            if at >= FUZZ_BLOCKS || chunk.len() != BLOCK_SIZE {
                return Err(Error::Io { block: at });
            }
            let mut b = Box::new([0u8; BLOCK_SIZE]);
            b.copy_from_slice(chunk);
            blocks.insert(at, b);
        }
        Ok(())
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// What a walk saw (for the replay test to tell seeds that mount from
/// ones that are rejected).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalkStats {
    pub mounted: bool,
    pub entries: usize,
    pub bytes_read: u64,
    pub fsck_errors: usize,
}

/// Fuzz target `mount_walk`: mount read-only, walk the directory tree from
/// the root (readdir, getattr, read every file, readlink, xattrs), then
/// the fsck walk over every tree. Errors are fine; a panic, a hang or a
/// sanitizer report is a finding.
pub fn mount_walk(data: &[u8]) -> WalkStats {
    let mut st = WalkStats::default();
    let Ok(vol) = Volume::mount(SparseDevice::decode(data), StdHost, MountOptions::inspect())
    else {
        return st;
    };
    st.mounted = true;
    walk_tree(&vol, &mut st);
    if let Ok(r) = check::check(&vol, true) {
        st.fsck_errors = r.errors.len();
    }
    let _ = vol.statfs();
    st
}

/// Fuzz target `fsck_repair`: what `fsck.ferfs -y` does (read-write mount,
/// which finishes orphans; check; apply every derivable fix; commit), then
/// a read-only remount of the result and the walk again.
pub fn fsck_repair(data: &[u8]) -> WalkStats {
    let dev = SparseDevice::decode(data);
    let opts = MountOptions {
        read_only: false,
        repair: true,
        compression: None,
    };
    let mut st = WalkStats::default();
    let Ok(mut vol) = Volume::mount(&dev, StdHost, opts) else {
        return st;
    };
    st.mounted = true;
    if let Ok(r) = check::repair(&mut vol, true) {
        st.fsck_errors = r.errors.len();
    }
    drop(vol);
    if let Ok(vol) = Volume::mount(&dev, StdHost, MountOptions::inspect()) {
        walk_tree(&vol, &mut st);
    }
    st
}

impl BlockDevice for &SparseDevice {
    fn num_blocks(&self) -> u64 {
        (**self).num_blocks()
    }
    fn read(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read(block, buf)
    }
    fn write(&self, block: u64, buf: &[u8]) -> Result<()> {
        (**self).write(block, buf)
    }
    fn flush(&self) -> Result<()> {
        (**self).flush()
    }
}

fn walk_tree<D: BlockDevice>(vol: &Volume<D, StdHost>, st: &mut WalkStats) {
    let mut seen = BTreeSet::new();
    let mut todo = vec![ROOT_INO];
    let mut buf = vec![0u8; CHUNK_SIZE];
    while let Some(dir) = todo.pop() {
        if !seen.insert(dir) || seen.len() > MAX_VISITS {
            continue;
        }
        let mut children = Vec::new();
        let _ = vol.readdir(dir, 0, &mut |_, name, ino, ftype| {
            children.push((name.to_vec(), ino, ftype));
            children.len() < MAX_VISITS
        });
        for (name, ino, ftype) in children {
            st.entries += 1;
            let _ = vol.lookup_entry(dir, &name);
            let Ok(a) = vol.getattr(ino) else { continue };
            let _ = vol.listxattr(ino, &mut |n| {
                let mut v = [0u8; MAX_XATTR_VALUE];
                let _ = vol.getxattr(ino, n, &mut v);
            });
            match a.mode & S_IFMT {
                S_IFDIR if u32::from(ftype) == S_IFDIR >> 12 => {
                    let _ = vol.parent_of(ino);
                    todo.push(ino);
                }
                S_IFLNK => {
                    let mut t = [0u8; MAX_SYMLINK + 1];
                    let _ = vol.readlink(ino, &mut t);
                }
                S_IFREG if seen.insert(ino) => {
                    let mut off = 0u64;
                    let end = a.size.min(READ_PER_FILE);
                    while off < end && st.bytes_read < READ_TOTAL {
                        match vol.read(ino, off, &mut buf) {
                            Ok(n) if n > 0 => {
                                off += n as u64;
                                st.bytes_read += n as u64;
                            }
                            _ => break,
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Small images for the seed corpus, encoded as fuzz inputs: every
/// checksum and compression, with and without DUP metadata, holding every
/// file type, hard links, xattrs, a multi-chunk file, a pending orphan and
/// an interrupted truncate.
pub fn seed_images() -> Result<Vec<(String, Vec<u8>)>> {
    use ferfs_core::fs::{Interrupt, XATTR_CREATE};
    use ferfs_core::MkfsOptions;
    let mut out = Vec::new();
    let combos = [
        (CsumType::Crc32c, Compression::None, true),
        (CsumType::Crc32c, Compression::Zstd, true),
        (CsumType::XxHash64, Compression::Lzo, false),
        (CsumType::Sha256, Compression::Zlib, true),
        (CsumType::Blake2b256, Compression::Zstd, false),
    ];
    for (n, (csum, compression, dup)) in combos.into_iter().enumerate() {
        let dev = crate::MemDevice::new(FUZZ_BLOCKS);
        let opts = MkfsOptions {
            fsid: [n as u8 + 1; 16],
            csum,
            dup_metadata: dup,
            compression,
            label: [0; 64],
            total_blocks: 0,
        };
        let mut v = Volume::mkfs(dev.clone(), StdHost, &opts)?;
        if n > 0 {
            let d = v.mkdir(ROOT_INO, b"dir", 0o755, 1, 2)?.ino;
            let f = v.create(d, b"text", S_IFREG | 0o644, 0, 0, 0)?.ino;
            let text: Vec<u8> = (0..150_000u32)
                .map(|i| b"ferfs fuzz seed "[i as usize % 16])
                .collect();
            v.write(f, 0, &text)?;
            let r = v.create(ROOT_INO, b"random", S_IFREG | 0o600, 0, 0, 0)?.ino;
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ n as u64;
            let noise: Vec<u8> = (0..9000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            v.write(r, 4096 * 3, &noise)?;
            v.link(r, d, b"hardlink")?;
            v.symlink(d, b"link", b"../random", 0, 0)?;
            v.create(ROOT_INO, b"fifo", S_IFIFO | 0o644, 0, 0, 0)?;
            v.create(ROOT_INO, b"dev", S_IFCHR | 0o644, 0, 0, 0x0103)?;
            v.setxattr(f, b"user.seed", b"value", XATTR_CREATE)?;
            let sub = v.mkdir(d, b"sub", 0o700, 0, 0)?.ino;
            for i in 0..(n * 20) {
                v.create(
                    sub,
                    format!("entry-{i}").as_bytes(),
                    S_IFREG | 0o644,
                    0,
                    0,
                    0,
                )?;
            }
            if n == 3 {
                v.debug_interrupt(Interrupt::Unlink, ROOT_INO, b"fifo")?;
                v.debug_interrupt(Interrupt::Truncate, d, b"text")?;
            }
        }
        v.sync()?;
        drop(v);
        let name = format!(
            "seed-{}-{}-{}",
            csum.name(),
            compression.name(),
            if dup { "dup" } else { "single" }
        );
        out.push((name, SparseDevice::encode(&dev.snapshot())));
    }
    Ok(out)
}

/// Fuzz target `ops`: the input drives a sequence of filesystem operations
/// on a fresh filesystem (create, mkdir, write, truncate, unlink, rename
/// with flags, link, symlink, xattrs, fallocate and punch, files unlinked
/// while open, sync, remount). Operations may fail; what must hold is that
/// the committed state is always consistent: after every remount and at the
/// end, fsck finds no error. Panics (a finding) otherwise.
pub fn ops(data: &[u8]) -> usize {
    use ferfs_core::fs::{FALLOC_KEEP_SIZE, FALLOC_PUNCH_HOLE};
    use ferfs_core::MkfsOptions;
    let dev = SparseDevice::default();
    let comp = match data.first().copied().unwrap_or(0) % 4 {
        0 => Compression::None,
        1 => Compression::Zstd,
        2 => Compression::Lzo,
        _ => Compression::Zlib,
    };
    let opts = MkfsOptions {
        fsid: [3; 16],
        csum: CsumType::Crc32c,
        dup_metadata: true,
        compression: comp,
        label: [0; 64],
        total_blocks: 0,
    };
    let Ok(mut v) = Volume::mkfs(&dev, StdHost, &opts) else {
        panic!("mkfs of a fresh filesystem failed");
    };
    const NAMES: [&[u8]; 8] = [b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h"];
    let mut dirs = vec![ROOT_INO];
    let mut orphans: Vec<u64> = Vec::new();
    let mut input = data.get(1..).unwrap_or(&[]).chunks_exact(4);
    let mut count = 0usize;
    let assert_clean = |dev: &SparseDevice, when: &str| {
        let r = crate::cli::run_check(dev, false, true);
        match r {
            Ok(r) if r.errors.is_empty() => {}
            other => panic!("{when}: committed state not clean: {other:?}"),
        }
    };
    for op in input.by_ref() {
        count += 1;
        let [kind, a, b, c] = [op[0], op[1], op[2], op[3]];
        let dir = dirs[usize::from(a >> 4) % dirs.len()];
        let name = NAMES[usize::from(a) % NAMES.len()];
        let other_dir = dirs[usize::from(b >> 4) % dirs.len()];
        let other = NAMES[usize::from(b) % NAMES.len()];
        let ino_of = |v: &Volume<&SparseDevice, StdHost>| {
            v.lookup_entry(dir, name).ok().flatten().map(|e| e.0)
        };
        let len = usize::from(c) * 1024 + usize::from(b);
        let off = u64::from(b) * 4096 + u64::from(c) * 97;
        let _ = match kind % 16 {
            0 => v.create(dir, name, S_IFREG | 0o644, 0, 0, 0).map(|_| ()),
            1 => v.mkdir(dir, name, 0o755, 0, 0).map(|a| {
                if dirs.len() < 8 {
                    dirs.push(a.ino);
                }
            }),
            2 | 3 => match ino_of(&v) {
                Some(ino) => {
                    let bytes: Vec<u8> = if kind & 1 == 0 {
                        (0..len).map(|i| b"ferfs"[i % 5] ^ c).collect()
                    } else {
                        (0..len)
                            .map(|i| (i as u8).wrapping_mul(c | 1) ^ (i >> 8) as u8)
                            .collect()
                    };
                    v.write(ino, off, &bytes).map(|_| ())
                }
                None => Ok(()),
            },
            4 => match ino_of(&v) {
                Some(ino) => v.truncate(ino, off),
                None => Ok(()),
            },
            5 => v.unlink(dir, name),
            6 => v.rename(dir, name, other_dir, other, u32::from(c % 3)),
            7 => match ino_of(&v) {
                Some(ino) => v.link(ino, other_dir, other).map(|_| ()),
                None => Ok(()),
            },
            8 => v
                .symlink(
                    dir,
                    name,
                    &NAMES[usize::from(c) % 8].repeat(usize::from(b) + 1),
                    0,
                    0,
                )
                .map(|_| ()),
            9 => match ino_of(&v) {
                Some(ino) => v.setxattr(ino, b"user.x", &vec![c; usize::from(b) * 4], 0),
                None => Ok(()),
            },
            10 => match ino_of(&v) {
                Some(ino) => {
                    let mode = [0, FALLOC_KEEP_SIZE, FALLOC_KEEP_SIZE | FALLOC_PUNCH_HOLE]
                        [usize::from(c % 3)];
                    v.fallocate(ino, off, (len as u64).max(1), mode)
                }
                None => Ok(()),
            },
            11 => v.rmdir(dir, name),
            12 => v.unlink_keep(dir, name).map(|o| orphans.extend(o)),
            13 => match orphans.last().copied() {
                // Writes to, truncates or closes a file unlinked while open.
                Some(ino) => match c % 3 {
                    0 => v.write(ino, off, &[c; 3000]).map(|_| ()),
                    1 => v.truncate(ino, off),
                    _ => {
                        orphans.pop();
                        v.release_orphan(ino)
                    }
                },
                None => Ok(()),
            },
            14 => v.sync(),
            _ => {
                // Remount: open orphans are closed by the crash (mount frees them).
                let _ = v.sync();
                drop(v);
                assert_clean(&dev, "remount");
                orphans.clear();
                let Ok(nv) = Volume::mount(&dev, StdHost, MountOptions::default()) else {
                    panic!("a consistent filesystem does not mount");
                };
                v = nv;
                Ok(())
            }
        };
        if count >= 200 {
            break;
        }
    }
    let _ = v.sync();
    drop(v);
    assert_clean(&dev, "the end");
    count
}
