//! Regression: stress-ng's fallocate stressor through FUSE found
//! `ftruncate(fd, 0)` failing with EEXIST on a file that was unlinked while
//! open (an orphan): the truncate's own ORPHAN record collided with the
//! unlink's.

mod common;
use common::*;
use ferfs_core::format::*;

#[test]
fn truncate_an_open_unlinked_file() {
    let (dev, mut v) = new_fs(4096, CsumType::Crc32c, Compression::Zstd);
    let f = v
        .create(ROOT_INO, b"f", S_IFREG | 0o600, 0, 0, 0)
        .unwrap()
        .ino;
    assert_eq!(v.unlink_keep(ROOT_INO, b"f").unwrap(), Some(f));
    v.fallocate(f, 0, 4 << 20, 0).unwrap();
    assert_eq!(v.getattr(f).unwrap().size, 4 << 20);
    v.truncate(f, 0).unwrap();
    assert_eq!(v.getattr(f).unwrap().size, 0);
    v.write(f, 300_000, b"tail").unwrap();
    v.truncate(f, 100).unwrap();
    assert_eq!(v.getattr(f).unwrap().size, 100);
    v.sync().unwrap();
    // Still an orphan: the check accepts it, a mount frees it.
    assert_clean(&dev);
    v.release_orphan(f).unwrap();
    v.sync().unwrap();
    assert_clean(&dev);
    assert!(v.getattr(f).is_err());
}

#[test]
fn truncate_after_fallocate() {
    let (dev, mut v) = new_fs(4096, CsumType::Crc32c, Compression::Zstd);
    let f = v
        .create(ROOT_INO, b"f", S_IFREG | 0o600, 0, 0, 0)
        .unwrap()
        .ino;
    v.fallocate(f, 0, 4 << 20, 0).unwrap();
    v.truncate(f, 0).unwrap();
    assert_eq!(v.getattr(f).unwrap().size, 0);
    v.sync().unwrap();
    assert_clean(&dev);
}
