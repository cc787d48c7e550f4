//! POSIX behaviour of the core through the userspace host.

mod common;
use common::*;
use ferfs_core::format::*;
use ferfs_core::fs::{
    FALLOC_KEEP_SIZE, FALLOC_PUNCH_HOLE, RENAME_EXCHANGE, RENAME_NOREPLACE, XATTR_CREATE,
    XATTR_REPLACE,
};
use ferfs_core::{Error, SetAttr};

fn names(v: &Vol, dir: u64) -> Vec<String> {
    let mut out = Vec::new();
    v.readdir(dir, 0, &mut |_, n, _, _| {
        out.push(String::from_utf8_lossy(n).into_owned());
        true
    })
    .unwrap();
    out.sort();
    out
}

#[test]
fn create_write_read_remount() {
    let (dev, mut v) = new_fs(8192, CsumType::Crc32c, Compression::None);
    let f = v
        .create(ROOT_INO, b"hello", S_IFREG | 0o644, 1, 2, 0)
        .unwrap();
    assert_eq!(v.write(f.ino, 0, b"hello world").unwrap(), 11);
    let mut buf = [0u8; 64];
    assert_eq!(v.read(f.ino, 0, &mut buf).unwrap(), 11);
    assert_eq!(&buf[..11], b"hello world");
    v.sync().unwrap();
    drop(v);
    let v = remount(&dev);
    let a = v.lookup_attr(ROOT_INO, b"hello").unwrap();
    assert_eq!((a.size, a.uid, a.gid, a.mode), (11, 1, 2, S_IFREG | 0o644));
    let mut buf = [0u8; 64];
    assert_eq!(v.read(a.ino, 0, &mut buf).unwrap(), 11);
    assert_eq!(&buf[..11], b"hello world");
    assert_clean(&dev);
}

#[test]
fn uncommitted_changes_vanish_on_remount() {
    let (dev, mut v) = new_fs(8192, CsumType::Crc32c, Compression::None);
    v.create(ROOT_INO, b"kept", S_IFREG | 0o644, 0, 0, 0)
        .unwrap();
    v.sync().unwrap();
    v.create(ROOT_INO, b"lost", S_IFREG | 0o644, 0, 0, 0)
        .unwrap();
    drop(v);
    let v = remount(&dev);
    assert_eq!(names(&v, ROOT_INO), vec!["kept"]);
    assert_clean(&dev);
}

#[test]
fn large_sparse_file_and_every_compression() {
    for comp in [
        Compression::None,
        Compression::Zstd,
        Compression::Lzo,
        Compression::Zlib,
    ] {
        let (dev, mut v) = new_fs(16384, CsumType::XxHash64, comp);
        let f = v
            .create(ROOT_INO, b"big", S_IFREG | 0o600, 0, 0, 0)
            .unwrap();
        let mut rng = Rng(42);
        let text = rng.bytes(300_000, true);
        let noise = rng.bytes(200_000, false);
        v.write(f.ino, 1000, &text).unwrap();
        v.write(f.ino, 1 << 40, &noise).unwrap();
        v.sync().unwrap();
        let v = remount(&dev);
        let a = v.getattr(f.ino).unwrap();
        assert_eq!(a.size, (1 << 40) + 200_000);
        let mut buf = vec![0u8; 300_000];
        v.read(f.ino, 1000, &mut buf).unwrap();
        assert_eq!(buf, text, "{comp:?}");
        let mut buf = vec![0u8; 200_000];
        v.read(f.ino, 1 << 40, &mut buf).unwrap();
        assert_eq!(buf, noise);
        // A hole reads as zeros.
        let mut hole = vec![1u8; 4096];
        v.read(f.ino, 1 << 30, &mut hole).unwrap();
        assert!(hole.iter().all(|b| *b == 0));
        if comp != Compression::None {
            // Compressible text takes fewer sectors than its size.
            assert!(
                a.sectors * 512 < 300_000 + 200_000 + 8192,
                "{comp:?} did not compress: {}",
                a.sectors
            );
        }
        assert_clean(&dev);
    }
}

#[test]
fn every_checksum_algorithm_mounts() {
    for csum in [
        CsumType::Crc32c,
        CsumType::XxHash64,
        CsumType::Sha256,
        CsumType::Blake2b256,
    ] {
        let (dev, mut v) = new_fs(4096, csum, Compression::Zstd);
        let f = v.create(ROOT_INO, b"f", S_IFREG | 0o600, 0, 0, 0).unwrap();
        v.write(f.ino, 0, &[5u8; 10000]).unwrap();
        v.sync().unwrap();
        let v = remount(&dev);
        assert_eq!(v.info().csum, csum);
        assert_clean(&dev);
    }
}

#[test]
fn directories_links_symlinks_specials() {
    let (dev, mut v) = new_fs(8192, CsumType::Crc32c, Compression::None);
    let d = v.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
    let sub = v.mkdir(d.ino, b"sub", 0o700, 0, 0).unwrap();
    assert_eq!(v.getattr(d.ino).unwrap().nlink, 3);
    assert_eq!(v.parent_of(sub.ino).unwrap(), d.ino);
    let f = v.create(d.ino, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    v.link(f.ino, ROOT_INO, b"hard").unwrap();
    assert_eq!(v.getattr(f.ino).unwrap().nlink, 2);
    let s = v.symlink(ROOT_INO, b"sym", b"d/f", 0, 0).unwrap();
    let mut t = [0u8; 64];
    let n = v.readlink(s.ino, &mut t).unwrap();
    assert_eq!(&t[..n], b"d/f");
    for (name, mode, rdev) in [
        (&b"fifo"[..], S_IFIFO | 0o644, 0),
        (b"sock", S_IFSOCK | 0o644, 0),
        (b"chr", S_IFCHR | 0o644, 0x0501),
        (b"blk", S_IFBLK | 0o644, 0x0801),
    ] {
        let a = v.create(ROOT_INO, name, mode, 0, 0, rdev).unwrap();
        assert_eq!((a.mode, a.rdev), (mode, rdev));
    }
    assert_eq!(
        v.create(ROOT_INO, b"d", S_IFREG, 0, 0, 0),
        Err(Error::Exists)
    );
    assert_eq!(v.rmdir(ROOT_INO, b"d"), Err(Error::NotEmpty));
    assert_eq!(v.unlink(ROOT_INO, b"d"), Err(Error::IsDir));
    assert_eq!(v.rmdir(ROOT_INO, b"hard"), Err(Error::NotDir));
    assert_eq!(
        v.create(ROOT_INO, &[b'x'; 256], S_IFREG, 0, 0, 0),
        Err(Error::NameTooLong)
    );
    assert_eq!(
        v.create(ROOT_INO, b"a/b", S_IFREG, 0, 0, 0),
        Err(Error::Invalid)
    );
    v.unlink(d.ino, b"f").unwrap();
    assert_eq!(v.getattr(f.ino).unwrap().nlink, 1);
    v.rmdir(d.ino, b"sub").unwrap();
    assert_eq!(v.getattr(d.ino).unwrap().nlink, 2);
    v.sync().unwrap();
    assert_eq!(
        names(&remount(&dev), ROOT_INO),
        vec!["blk", "chr", "d", "fifo", "hard", "sock", "sym"]
    );
    assert_clean(&dev);
}

#[test]
fn rename_variants() {
    let (dev, mut v) = new_fs(8192, CsumType::Crc32c, Compression::None);
    let a = v.mkdir(ROOT_INO, b"a", 0o755, 0, 0).unwrap();
    let b = v.mkdir(ROOT_INO, b"b", 0o755, 0, 0).unwrap();
    let f = v.create(a.ino, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    let g = v.create(b.ino, b"g", S_IFREG | 0o644, 0, 0, 0).unwrap();
    // Plain move across directories.
    v.rename(a.ino, b"f", b.ino, b"f2", 0).unwrap();
    assert_eq!(v.lookup_entry(b.ino, b"f2").unwrap().unwrap().0, f.ino);
    assert!(v.lookup_entry(a.ino, b"f").unwrap().is_none());
    // NOREPLACE refuses an existing target.
    assert_eq!(
        v.rename(b.ino, b"f2", b.ino, b"g", RENAME_NOREPLACE),
        Err(Error::Exists)
    );
    // EXCHANGE swaps.
    v.rename(b.ino, b"f2", b.ino, b"g", RENAME_EXCHANGE)
        .unwrap();
    assert_eq!(v.lookup_entry(b.ino, b"g").unwrap().unwrap().0, f.ino);
    assert_eq!(v.lookup_entry(b.ino, b"f2").unwrap().unwrap().0, g.ino);
    // Replace: the old target is freed.
    v.rename(b.ino, b"f2", b.ino, b"g", 0).unwrap();
    assert_eq!(v.getattr(f.ino), Err(Error::NotFound));
    // Directory into its own subtree is refused.
    let c = v.mkdir(a.ino, b"c", 0o755, 0, 0).unwrap();
    assert_eq!(
        v.rename(ROOT_INO, b"a", c.ino, b"x", 0),
        Err(Error::Invalid)
    );
    // Exchange a directory with a file across directories.
    v.rename(a.ino, b"c", b.ino, b"g", RENAME_EXCHANGE).unwrap();
    assert_eq!(v.parent_of(c.ino).unwrap(), b.ino);
    assert_eq!(v.getattr(a.ino).unwrap().nlink, 2);
    assert_eq!(v.getattr(b.ino).unwrap().nlink, 3);
    // Directory over non-empty directory.
    v.mkdir(ROOT_INO, b"e", 0o755, 0, 0).unwrap();
    assert_eq!(
        v.rename(ROOT_INO, b"e", ROOT_INO, b"b", 0),
        Err(Error::NotEmpty)
    );
    v.sync().unwrap();
    assert_clean(&dev);
}

#[test]
fn truncate_punch_fallocate() {
    let (dev, mut v) = new_fs(8192, CsumType::Crc32c, Compression::Zstd);
    let f = v.create(ROOT_INO, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    let data = Rng(1).bytes(400_000, false);
    v.write(f.ino, 0, &data).unwrap();
    v.truncate(f.ino, 150_000).unwrap();
    v.truncate(f.ino, 300_000).unwrap();
    let mut buf = vec![0u8; 300_000];
    assert_eq!(v.read(f.ino, 0, &mut buf).unwrap(), 300_000);
    assert_eq!(&buf[..150_000], &data[..150_000]);
    assert!(
        buf[150_000..].iter().all(|b| *b == 0),
        "truncated data must not reappear"
    );
    v.fallocate(f.ino, 10_000, 200_000, FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE)
        .unwrap();
    v.read(f.ino, 0, &mut buf).unwrap();
    assert_eq!(&buf[..10_000], &data[..10_000]);
    assert!(buf[10_000..300_000].iter().all(|b| *b == 0));
    let before = v.statfs().blocks_free;
    v.fallocate(f.ino, 0, 1 << 20, 0).unwrap();
    assert_eq!(v.getattr(f.ino).unwrap().size, 1 << 20);
    assert!(v.statfs().blocks_free < before);
    v.fallocate(f.ino, 1 << 20, 1 << 20, FALLOC_KEEP_SIZE)
        .unwrap();
    assert_eq!(v.getattr(f.ino).unwrap().size, 1 << 20);
    v.read(f.ino, 0, &mut buf).unwrap();
    assert_eq!(&buf[..10_000], &data[..10_000]);
    v.write(f.ino, 600_000, b"xyz").unwrap();
    let mut b3 = [0u8; 5];
    v.read(f.ino, 599_999, &mut b3).unwrap();
    assert_eq!(&b3, b"\0xyz\0");
    v.setattr(
        f.ino,
        &SetAttr {
            size: Some(0),
            mode: Some(0o600),
            ..Default::default()
        },
    )
    .unwrap();
    let a = v.getattr(f.ino).unwrap();
    assert_eq!((a.size, a.mode), (0, S_IFREG | 0o600));
    v.sync().unwrap();
    assert_clean(&dev);
}

#[test]
fn xattrs() {
    let (dev, mut v) = new_fs(4096, CsumType::Crc32c, Compression::None);
    let f = v.create(ROOT_INO, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    v.setxattr(f.ino, b"user.a", b"1", 0).unwrap();
    v.setxattr(f.ino, b"user.b", &[9u8; 1000], XATTR_CREATE)
        .unwrap();
    assert_eq!(
        v.setxattr(f.ino, b"user.b", b"x", XATTR_CREATE),
        Err(Error::Exists)
    );
    assert_eq!(
        v.setxattr(f.ino, b"user.c", b"x", XATTR_REPLACE),
        Err(Error::NoData)
    );
    v.setxattr(f.ino, b"user.a", b"22", XATTR_REPLACE).unwrap();
    let mut out = [0u8; 1024];
    assert_eq!(v.getxattr(f.ino, b"user.a", &mut out).unwrap(), 2);
    assert_eq!(&out[..2], b"22");
    let mut listed = Vec::new();
    v.listxattr(f.ino, &mut |n| listed.push(n.to_vec()))
        .unwrap();
    listed.sort();
    assert_eq!(listed, vec![b"user.a".to_vec(), b"user.b".to_vec()]);
    v.removexattr(f.ino, b"user.a").unwrap();
    assert_eq!(v.getxattr(f.ino, b"user.a", &mut out), Err(Error::NoData));
    assert_eq!(
        v.setxattr(f.ino, b"user.big", &[0u8; 2000], 0),
        Err(Error::TooBig)
    );
    v.sync().unwrap();
    assert_clean(&dev);
}

#[test]
fn many_files_split_and_shrink_the_tree() {
    let (dev, mut v) = new_fs(16384, CsumType::Crc32c, Compression::None);
    for i in 0..3000u32 {
        v.create(
            ROOT_INO,
            format!("file-{i:05}").as_bytes(),
            S_IFREG | 0o644,
            0,
            0,
            0,
        )
        .unwrap();
        if i % 500 == 0 {
            v.sync().unwrap();
        }
    }
    v.sync().unwrap();
    assert!(
        v.fs_tree().level >= 2,
        "3000 files should need a deeper tree"
    );
    assert_eq!(names(&v, ROOT_INO).len(), 3000);
    assert_clean(&dev);
    for i in 0..3000u32 {
        v.unlink(ROOT_INO, format!("file-{i:05}").as_bytes())
            .unwrap();
    }
    v.sync().unwrap();
    assert_eq!(v.fs_tree().level, 0);
    assert!(names(&v, ROOT_INO).is_empty());
    assert_clean(&dev);
}

#[test]
fn full_filesystem_gives_enospc_and_stays_consistent() {
    let (dev, mut v) = new_fs(4096, CsumType::Crc32c, Compression::None);
    let f = v
        .create(ROOT_INO, b"fill", S_IFREG | 0o644, 0, 0, 0)
        .unwrap();
    let chunk = Rng(3).bytes(128 * 1024, false);
    let mut off = 0u64;
    let err = loop {
        match v.write(f.ino, off, &chunk) {
            Ok(_) => off += chunk.len() as u64,
            Err(e) => break e,
        }
        assert!(off < 1 << 30, "never ran out of space");
    };
    assert_eq!(err, Error::NoSpace);
    // Metadata operations that free space still work.
    v.sync().unwrap();
    v.truncate(f.ino, 0).unwrap();
    v.sync().unwrap();
    assert_clean(&dev);
    v.write(f.ino, 0, &chunk).unwrap();
    v.sync().unwrap();
    assert_clean(&dev);
}

#[test]
fn per_file_compression_via_pseudo_xattr() {
    use ferfs_core::fs::COMPRESSION_XATTR;
    let (dev, mut v) = new_fs(8192, CsumType::Crc32c, Compression::None);
    let plain = v
        .create(ROOT_INO, b"plain", S_IFREG | 0o644, 0, 0, 0)
        .unwrap();
    let packed = v
        .create(ROOT_INO, b"packed", S_IFREG | 0o644, 0, 0, 0)
        .unwrap();
    let mut out = [0u8; 16];
    assert_eq!(
        v.getxattr(packed.ino, COMPRESSION_XATTR, &mut out),
        Err(Error::NoData)
    );
    v.setxattr(packed.ino, COMPRESSION_XATTR, b"zlib", 0)
        .unwrap();
    assert_eq!(
        v.setxattr(packed.ino, COMPRESSION_XATTR, b"brotli", 0),
        Err(Error::Invalid)
    );
    let n = v.getxattr(packed.ino, COMPRESSION_XATTR, &mut out).unwrap();
    assert_eq!(&out[..n], b"zlib");
    let text = Rng(8).bytes(512 * 1024, true);
    v.write(plain.ino, 0, &text).unwrap();
    v.write(packed.ino, 0, &text).unwrap();
    v.sync().unwrap();
    let v = remount(&dev);
    assert_eq!(v.getattr(plain.ino).unwrap().sectors * 512, 512 * 1024);
    assert!(v.getattr(packed.ino).unwrap().sectors * 512 <= 4 * 16384);
    let mut buf = vec![0u8; text.len()];
    v.read(packed.ino, 0, &mut buf).unwrap();
    assert_eq!(buf, text);
    assert_clean(&dev);
}

#[test]
fn unlinked_files_can_stay_open_until_released() {
    let (dev, mut v) = new_fs(4096, CsumType::Crc32c, Compression::None);
    let f = v
        .create(ROOT_INO, b"tmp", S_IFREG | 0o644, 0, 0, 0)
        .unwrap();
    v.write(f.ino, 0, b"data").unwrap();
    let orphan = v.unlink_keep(ROOT_INO, b"tmp").unwrap();
    assert_eq!(orphan, Some(f.ino));
    assert!(v.lookup_entry(ROOT_INO, b"tmp").unwrap().is_none());
    v.write(f.ino, 4, b"more").unwrap();
    let mut b = [0u8; 8];
    assert_eq!(v.read(f.ino, 0, &mut b).unwrap(), 8);
    assert_eq!(&b, b"datamore");
    v.sync().unwrap();
    // Open-unlinked state on disk is consistent.
    assert_clean(&dev);
    v.release_orphan(f.ino).unwrap();
    assert_eq!(v.getattr(f.ino), Err(Error::NotFound));
    // Replacing by rename works the same way.
    let a = v.create(ROOT_INO, b"a", S_IFREG | 0o644, 0, 0, 0).unwrap();
    let b2 = v.create(ROOT_INO, b"b", S_IFREG | 0o644, 0, 0, 0).unwrap();
    assert_eq!(
        v.rename_keep(ROOT_INO, b"a", ROOT_INO, b"b", 0).unwrap(),
        Some(b2.ino)
    );
    assert_eq!(v.lookup_entry(ROOT_INO, b"b").unwrap().unwrap().0, a.ino);
    v.sync().unwrap();
    drop(v);
    // A crash (or unmount) with the orphan still open frees it at mount.
    let v = remount(&dev);
    assert_eq!(v.getattr(b2.ino), Err(Error::NotFound));
    assert_clean(&dev);
}
