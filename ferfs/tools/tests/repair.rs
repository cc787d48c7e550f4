//! fsck repairs what it can derive from the whole tree: each test damages
//! one counter (or unlinks an inode behind the filesystem's back), checks
//! that `fsck -n` reports it (exit 4) and leaves it, that `fsck -y`
//! corrects it (exit 1), and that the result is clean with the right value.

mod common;
use common::*;
use ferfs_core::format::*;
use ferfs_core::fs::Interrupt;
use ferfs_core::repair::{Fix, LOST_FOUND};
use ferfs_tools::check::{exit_code, Report};
use ferfs_tools::cli::run_check;
use ferfs_tools::MemDevice;

fn fsck(dev: &MemDevice, repair: bool) -> (i32, Report) {
    let res = run_check(dev.clone(), repair, false);
    let code = exit_code(&res);
    (code, res.expect("fsck mounts"))
}

/// A small tree: /d (dir) with /d/sub (dir) and /d/f (file with data),
/// /g (file with two names, /g and /d/g2).
struct Tree {
    d: u64,
    sub: u64,
    f: u64,
    g: u64,
}

fn populated() -> (MemDevice, Vol, Tree) {
    let (dev, mut v) = new_fs(4096, CsumType::Crc32c, Compression::None);
    let d = v.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap().ino;
    let sub = v.mkdir(d, b"sub", 0o755, 0, 0).unwrap().ino;
    let f = v.create(d, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap().ino;
    v.write(f, 0, &Rng(3).bytes(300_000, false)).unwrap();
    let g = v
        .create(ROOT_INO, b"g", S_IFREG | 0o644, 0, 0, 0)
        .unwrap()
        .ino;
    v.write(g, 0, b"hello").unwrap();
    v.link(g, d, b"g2").unwrap();
    v.sync().unwrap();
    assert_clean(&dev);
    (dev, v, Tree { d, sub, f, g })
}

/// Damage with `damage`, then: -n reports `expect` and changes nothing,
/// -y corrects, and the image is clean afterwards.
fn damage_and_repair(damage: impl FnOnce(&mut Vol, &Tree), expect: &str) -> (MemDevice, Tree) {
    let (dev, mut v, t) = populated();
    damage(&mut v, &t);
    v.sync().unwrap();
    drop(v);
    let before = dev.snapshot();
    let (code, r) = fsck(&dev, false);
    assert_eq!(code, 4, "fsck -n exit code; report {r:#?}");
    assert!(
        r.errors.iter().any(|e| e.contains(expect)),
        "{expect:?} not among {:#?}",
        r.errors
    );
    assert!(before == dev.snapshot(), "fsck -n wrote to the image");
    let (code, r) = fsck(&dev, true);
    assert_eq!(code, 1, "fsck -y exit code; report {r:#?}");
    assert!(r.errors.is_empty(), "left after repair: {:#?}", r.errors);
    assert!(r.corrected > 0);
    assert_clean(&dev);
    let (code, _) = fsck(&dev, false);
    assert_eq!(code, 0, "clean after repair");
    (dev, t)
}

#[test]
fn file_link_count_too_high_is_repaired() {
    let (dev, t) = damage_and_repair(
        |v, t| v.repair(Fix::Nlink { ino: t.g, nlink: 7 }).unwrap(),
        "link count 7 but 2 entries",
    );
    assert_eq!(remount(&dev).getattr(t.g).unwrap().nlink, 2);
}

#[test]
fn file_link_count_zero_while_named_is_repaired() {
    let (dev, t) = damage_and_repair(
        |v, t| v.repair(Fix::Nlink { ino: t.f, nlink: 0 }).unwrap(),
        "link count 0 but 1 entries",
    );
    let v = remount(&dev);
    assert_eq!(v.getattr(t.f).unwrap().nlink, 1);
    let mut buf = vec![0u8; 300_000];
    assert_eq!(v.read(t.f, 0, &mut buf).unwrap(), 300_000);
    assert_eq!(buf, Rng(3).bytes(300_000, false));
}

#[test]
fn directory_link_count_is_repaired() {
    let (dev, t) = damage_and_repair(
        |v, t| v.repair(Fix::Nlink { ino: t.d, nlink: 9 }).unwrap(),
        "link count 9 should be 3",
    );
    assert_eq!(remount(&dev).getattr(t.d).unwrap().nlink, 3);
}

#[test]
fn root_link_count_is_repaired() {
    let (dev, _) = damage_and_repair(
        |v, _| {
            v.repair(Fix::Nlink {
                ino: ROOT_INO,
                nlink: 2,
            })
            .unwrap()
        },
        "link count 2 should be 3",
    );
    assert_eq!(remount(&dev).getattr(ROOT_INO).unwrap().nlink, 3);
}

#[test]
fn block_count_is_repaired() {
    let (dev, t) = damage_and_repair(
        |v, t| {
            v.repair(Fix::StoredBlocks {
                ino: t.f,
                blocks: 1,
            })
            .unwrap()
        },
        "block count 1 but its extents hold",
    );
    // 300 000 incompressible bytes: three chunks, 74 blocks stored.
    assert_eq!(remount(&dev).getattr(t.f).unwrap().sectors, 74 * 8);
}

#[test]
fn inode_count_is_repaired() {
    let (dev, _) = damage_and_repair(
        |v, _| v.repair(Fix::InodeCount(100)).unwrap(),
        "inode count 100 but 5 inodes exist",
    );
    assert_eq!(remount(&dev).statfs().files, 5);
}

#[test]
fn directory_parent_is_repaired() {
    let (dev, t) = damage_and_repair(
        |v, t| {
            v.repair(Fix::Parent {
                ino: t.sub,
                parent: ROOT_INO,
            })
            .unwrap()
        },
        "parent field disagrees with its entry",
    );
    assert_eq!(remount(&dev).parent_of(t.sub).unwrap(), t.d);
}

#[test]
fn unreachable_file_goes_to_lost_found() {
    // The entry is gone but the inode keeps a link: what a lost directory
    // block leaves behind.
    let (dev, t) = damage_and_repair(
        |v, t| {
            v.debug_interrupt(Interrupt::Unlink, t.d, b"f").unwrap();
            v.repair(Fix::Nlink { ino: t.f, nlink: 1 }).unwrap();
        },
        "link count 1 but 0 entries",
    );
    let v = remount(&dev);
    let lf = v.lookup_entry(ROOT_INO, LOST_FOUND).unwrap().unwrap().0;
    let name = format!("#{}", t.f);
    let (ino, _, _) = v.lookup_entry(lf, name.as_bytes()).unwrap().unwrap();
    assert_eq!(ino, t.f);
    assert_eq!(v.getattr(t.f).unwrap().nlink, 1);
    let mut buf = vec![0u8; 300_000];
    assert_eq!(v.read(t.f, 0, &mut buf).unwrap(), 300_000);
    assert_eq!(buf, Rng(3).bytes(300_000, false));
    assert_eq!(v.getattr(lf).unwrap().mode & 0o7777, 0o700);
}

#[test]
fn several_problems_are_repaired_in_one_run() {
    damage_and_repair(
        |v, t| {
            v.repair(Fix::Nlink { ino: t.g, nlink: 1 }).unwrap();
            v.repair(Fix::Nlink { ino: t.d, nlink: 2 }).unwrap();
            v.repair(Fix::StoredBlocks {
                ino: t.g,
                blocks: 0,
            })
            .unwrap();
            v.repair(Fix::InodeCount(1)).unwrap();
        },
        "link count 1 but 2 entries",
    );
}

#[test]
fn repair_refuses_a_read_only_volume() {
    let (dev, v, t) = populated();
    drop(v);
    let mut ro = ferfs_core::Volume::mount(
        dev.clone(),
        ferfs_tools::StdHost,
        ferfs_core::MountOptions::inspect(),
    )
    .unwrap();
    assert!(ro.repair(Fix::Nlink { ino: t.g, nlink: 2 }).is_err());
}
