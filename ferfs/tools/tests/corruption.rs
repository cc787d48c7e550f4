//! Corruption: bit flips in every kind of metadata block and in data
//! blocks are detected, reported with the block number, repaired from the
//! DUP copy where one exists, and never cause a panic. Ends with a
//! deterministic fuzz loop over mutated images.

mod common;
use common::*;
use ferfs_core::format::*;
use ferfs_core::volume::Visitor;
use ferfs_core::{Error, MountOptions, Volume};
use ferfs_tools::check::exit_code;
use ferfs_tools::cli::run_check;
use ferfs_tools::{MemDevice, StdHost};

#[derive(Default)]
struct Blocks {
    /// (owner, level, primary, mirror)
    nodes: Vec<(u64, u8, u64, u64)>,
    extents: Vec<(u64, u32)>,
}

impl Visitor for Blocks {
    fn node(&mut self, owner: u64, ptr: &BlockPtr, level: u8) -> ferfs_core::Result<()> {
        self.nodes
            .push((owner, level, ptr.addr.get(), ptr.mirror.get()));
        Ok(())
    }
    fn item(&mut self, _owner: u64, key: Key, data: &[u8]) -> ferfs_core::Result<()> {
        use zerocopy::FromBytes;
        if key.kind == ITEM_EXTENT {
            let e = ExtentItem::read_from_bytes(data).unwrap();
            self.extents.push((e.addr.get(), e.stored_len.get()));
        }
        Ok(())
    }
}

/// A populated image with a multi-level fs tree, files with data,
/// directories, xattrs and symlinks.
fn populated(dup: bool) -> (MemDevice, Vec<Vec<u8>>) {
    let dev = MemDevice::new(8192);
    let mut v = Volume::mkfs(
        dev.clone(),
        StdHost,
        &mkfs_opts(CsumType::Crc32c, Compression::Zstd, dup),
    )
    .unwrap();
    let d = v.mkdir(ROOT_INO, b"dir", 0o755, 0, 0).unwrap();
    let mut contents = Vec::new();
    let mut rng = Rng(5);
    for i in 0..400u32 {
        let a = v
            .create(
                d.ino,
                format!("file{i}").as_bytes(),
                S_IFREG | 0o644,
                0,
                0,
                0,
            )
            .unwrap();
        if i % 40 == 0 {
            let c = rng.bytes(20_000, i % 80 == 0);
            v.write(a.ino, 0, &c).unwrap();
            v.setxattr(a.ino, b"user.k", b"v", 0).unwrap();
            contents.push(c);
        }
    }
    v.symlink(ROOT_INO, b"link", b"dir/file0", 0, 0).unwrap();
    contents.push(b"dir/file0".to_vec());
    v.sync().unwrap();
    (dev, contents)
}

fn blocks_of(dev: &MemDevice) -> Blocks {
    let v = Volume::mount(dev.clone(), StdHost, MountOptions::inspect()).unwrap();
    let mut b = Blocks::default();
    v.walk(&v.root_tree(), &mut b, false).unwrap();
    v.walk(&v.fs_tree(), &mut b, false).unwrap();
    b
}

fn rw() -> MountOptions {
    MountOptions::default()
}

/// Read every file's content back through a fresh mount.
fn read_all(dev: &MemDevice) -> ferfs_core::Result<Vec<Vec<u8>>> {
    let v = Volume::mount(dev.clone(), StdHost, MountOptions::inspect())?;
    let d = v.lookup_entry(ROOT_INO, b"dir")?.ok_or(Error::NotFound)?.0;
    let mut out = Vec::new();
    for i in (0..400u32).step_by(40) {
        let (ino, _, _) = v
            .lookup_entry(d, format!("file{i}").as_bytes())?
            .ok_or(Error::NotFound)?;
        let mut buf = vec![0u8; v.getattr(ino)?.size as usize];
        v.read(ino, 0, &mut buf)?;
        out.push(buf);
    }
    let (l, _, _) = v.lookup_entry(ROOT_INO, b"link")?.ok_or(Error::NotFound)?;
    let mut t = vec![0u8; MAX_SYMLINK];
    let n = v.readlink(l, &mut t)?;
    out.push(t[..n].to_vec());
    Ok(out)
}

#[test]
fn metadata_bit_flips_are_repaired_from_the_dup_copy() {
    let (clean, contents) = populated(true);
    let b = blocks_of(&clean);
    // One block of each kind: root tree leaf, fs tree leaf, fs tree internal.
    let mut kinds = Vec::new();
    for want in [(TREE_ROOT, 0u8), (TREE_FS, 0), (TREE_FS, 1)] {
        let n = b
            .nodes
            .iter()
            .find(|n| (n.0, n.1) == want)
            .unwrap_or_else(|| panic!("no node {want:?}"));
        kinds.push(*n);
    }
    for (owner, level, addr, mirror) in kinds {
        for (target, other) in [(addr, mirror), (mirror, addr)] {
            for byte in [0usize, 40, 100, 2000, 4095] {
                let dev = MemDevice::from_bytes(clean.snapshot());
                dev.flip_bit(target as usize * BLOCK_SIZE + byte, 3);
                // Read-only check: reported, exit 4 (not repaired).
                let ro = run_check(MemDevice::from_bytes(dev.snapshot()), false, true);
                assert_eq!(
                    exit_code(&ro),
                    4,
                    "owner {owner} level {level} block {target} byte {byte}: {ro:?}"
                );
                // Repairing check: corrected (exit 1), then clean (exit 0).
                let fixed = run_check(dev.clone(), true, true);
                assert_eq!(exit_code(&fixed), 1, "repair of block {target}: {fixed:?}");
                assert_eq!(
                    dev.read_block_raw(target),
                    dev.read_block_raw(other),
                    "copies differ after repair"
                );
                assert_eq!(exit_code(&run_check(dev.clone(), false, true)), 0);
                assert_eq!(read_all(&dev).unwrap(), contents);
            }
        }
    }
}

#[test]
fn losing_both_copies_is_a_clean_error_naming_the_block() {
    let (clean, _) = populated(true);
    let b = blocks_of(&clean);
    for &(_, _, addr, mirror) in &b.nodes {
        let dev = MemDevice::from_bytes(clean.snapshot());
        dev.flip_bit(addr as usize * BLOCK_SIZE + 500, 1);
        dev.flip_bit(mirror as usize * BLOCK_SIZE + 500, 1);
        let r = run_check(dev.clone(), true, false);
        match r {
            Err(Error::Corrupt { block, .. }) => assert_eq!(block, addr),
            other => panic!("block {addr}: expected a corruption error, got {other:?}"),
        }
        assert_eq!(exit_code(&r), 4);
    }
}

#[test]
fn superblock_damage_falls_back_and_is_rewritten() {
    let (clean, contents) = populated(true);
    for (i, &sb) in SUPER_BLOCKS.iter().enumerate().take(2) {
        let dev = MemDevice::from_bytes(clean.snapshot());
        dev.flip_bit(sb as usize * BLOCK_SIZE + 200, 0);
        assert_eq!(
            exit_code(&run_check(
                MemDevice::from_bytes(dev.snapshot()),
                false,
                false
            )),
            4,
            "copy {i}"
        );
        assert_eq!(
            exit_code(&run_check(dev.clone(), true, false)),
            1,
            "copy {i}"
        );
        assert_eq!(
            exit_code(&run_check(dev.clone(), false, false)),
            0,
            "copy {i}"
        );
        assert_eq!(read_all(&dev).unwrap(), contents);
    }
    // All copies gone: a clean error.
    let dev = MemDevice::from_bytes(clean.snapshot());
    for &sb in SUPER_BLOCKS.iter().take(2) {
        dev.flip_bit(sb as usize * BLOCK_SIZE + 200, 0);
    }
    assert!(matches!(
        run_check(dev, true, false),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn data_bit_flips_are_detected_and_reported() {
    let (clean, _) = populated(true);
    let b = blocks_of(&clean);
    assert!(!b.extents.is_empty());
    for &(addr, len) in &b.extents {
        let dev = MemDevice::from_bytes(clean.snapshot());
        let byte = (len as usize / 2).min(len as usize - 1);
        dev.flip_bit(addr as usize * BLOCK_SIZE + byte, 6);
        let r = run_check(dev.clone(), false, false);
        assert_eq!(exit_code(&r), 4, "extent at {addr}");
        let report = r.unwrap();
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.contains(&format!("block {addr}"))),
            "{:?}",
            report.errors
        );
        match read_all(&dev) {
            Err(Error::Corrupt { block, .. }) => assert_eq!(block, addr),
            other => panic!(
                "reading corrupt data must fail, got {:?}",
                other.map(|_| "data")
            ),
        }
    }
}

#[test]
fn misdirected_and_lost_writes_are_detected() {
    let (clean, _) = populated(false);
    let b = blocks_of(&clean);
    let leaves: Vec<_> = b
        .nodes
        .iter()
        .filter(|n| n.0 == TREE_FS && n.1 == 0)
        .collect();
    // Misdirected: another valid leaf's bytes land at this address.
    let dev = MemDevice::from_bytes(clean.snapshot());
    let a = leaves[0].2;
    let other = dev.read_block_raw(leaves[1].2);
    ferfs_core::BlockDevice::write(&dev, a, &other).unwrap();
    assert!(
        matches!(run_check(dev, false, false), Err(Error::Corrupt { block, .. }) if block == a)
    );
    // Lost write: the block still holds an older, self-consistent version.
    let dev = MemDevice::from_bytes(clean.snapshot());
    let mut v = Volume::mount(dev.clone(), StdHost, rw()).unwrap();
    let before = blocks_of(&dev);
    let d = v.lookup_entry(ROOT_INO, b"dir").unwrap().unwrap().0;
    v.setxattr(d, b"user.new", b"1", 0).unwrap();
    v.sync().unwrap();
    drop(v);
    let after = blocks_of(&dev);
    // Find a node that moved, and put its old content back at the new place
    // with a valid checksum but the old generation: the parent notices.
    let moved = after
        .nodes
        .iter()
        .find(|n| !before.nodes.contains(n) && n.0 == TREE_FS)
        .unwrap();
    let old = before
        .nodes
        .iter()
        .find(|n| n.0 == moved.0 && n.1 == moved.1)
        .unwrap();
    let stale = dev.read_block_raw(old.2);
    ferfs_core::BlockDevice::write(&dev, moved.2, &stale).unwrap();
    assert!(matches!(
        run_check(dev, false, false),
        Err(Error::Corrupt { .. })
    ));
}

/// Mount, walk, read everything; any result is fine except a panic.
fn exercise(img: Vec<u8>) {
    let dev = MemDevice::from_bytes(img);
    let _ = run_check(dev.clone(), false, true);
    if let Ok(mut v) = Volume::mount(dev, StdHost, rw()) {
        let mut inos = Vec::new();
        let _ = v.readdir(ROOT_INO, 0, &mut |_, _, i, _| {
            inos.push(i);
            true
        });
        if let Ok(Some((d, _, _))) = v.lookup_entry(ROOT_INO, b"dir") {
            let _ = v.readdir(d, 0, &mut |_, _, i, _| {
                inos.push(i);
                true
            });
        }
        for ino in inos.iter().take(50) {
            if let Ok(a) = v.getattr(*ino) {
                let mut buf = vec![0u8; (a.size as usize).min(1 << 20)];
                let _ = v.read(*ino, 0, &mut buf);
                let _ = v.listxattr(*ino, &mut |_| {});
            }
        }
        let _ = v.create(ROOT_INO, b"new", S_IFREG | 0o644, 0, 0, 0);
        let _ = v.unlink(ROOT_INO, b"link");
        let _ = v.sync();
    }
}

#[test]
fn fuzzed_images_never_panic() {
    let (clean, _) = populated(false);
    let b = blocks_of(&clean);
    let mut targets: Vec<u64> = b.nodes.iter().map(|n| n.2).collect();
    targets.extend(SUPER_BLOCKS.iter().take(2));
    targets.extend(b.extents.iter().map(|e| e.0));
    let mut rng = Rng(0xfeed);
    let rounds: usize = std::env::var("FERFS_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for _ in 0..rounds {
        let mut img = clean.snapshot();
        let blk = targets[rng.below(targets.len() as u64) as usize] as usize;
        let flips = 1 + rng.below(8);
        for _ in 0..flips {
            let off = blk * BLOCK_SIZE + rng.below(BLOCK_SIZE as u64) as usize;
            // Mix of bit flips and structured garbage (0, 0xff, random).
            img[off] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                2 => img[off] ^ (1 << rng.below(8)),
                _ => rng.next() as u8,
            };
        }
        // Re-checksum some mutated metadata so validation beyond the
        // checksum (bounds, order, types) is exercised too.
        if rng.below(2) == 0 {
            rechecksum(&mut img, blk);
        }
        exercise(img);
    }
}

/// Recompute the crc32c of a metadata block so the mutation passes the
/// block's own checksum (the parent's record still differs; superblocks
/// have no parent).
fn rechecksum(img: &mut [u8], blk: usize) {
    let s = blk * BLOCK_SIZE;
    let c = crc32c::crc32c(&img[s + 32..s + BLOCK_SIZE]);
    img[s..s + 32].fill(0);
    img[s..s + 4].copy_from_slice(&c.to_le_bytes());
}
