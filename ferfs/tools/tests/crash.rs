//! Crash consistency: record every write and flush of a workload, then
//! rebuild the device as it would be after a crash at every point (every
//! prefix of the record) and, within each window of unflushed writes,
//! after random subsets of those writes landed in any order. Every such
//! state must mount, pass fsck, and hold exactly the last completed
//! fsync's state or the one being committed.

mod common;
use common::*;
use ferfs_core::format::*;
use ferfs_core::{MountOptions, Volume};
use ferfs_tools::{DevOp, MemDevice, StdHost};
use std::collections::BTreeMap;

/// Path -> (mode, nlink, content or symlink target, xattrs).
type State = BTreeMap<Vec<u8>, (u32, u32, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

fn state_of(v: &Vol) -> State {
    let mut out = State::new();
    let mut todo = vec![(ROOT_INO, b"/".to_vec())];
    while let Some((dir, path)) = todo.pop() {
        let mut entries = Vec::new();
        v.readdir(dir, 0, &mut |_, n, ino, _| {
            entries.push((n.to_vec(), ino));
            true
        })
        .unwrap();
        for (name, ino) in entries {
            let mut p = path.clone();
            p.extend_from_slice(&name);
            let a = v.getattr(ino).unwrap();
            let mut content = Vec::new();
            if a.mode & S_IFMT == S_IFDIR {
                let mut sub = p.clone();
                sub.push(b'/');
                todo.push((ino, sub));
            } else {
                content = vec![0u8; a.size as usize];
                v.read(ino, 0, &mut content).unwrap();
            }
            let mut names = Vec::new();
            v.listxattr(ino, &mut |n| names.push(n.to_vec())).unwrap();
            let mut xattrs = Vec::new();
            for n in names {
                let mut b = vec![0u8; MAX_XATTR_VALUE];
                let l = v.getxattr(ino, &n, &mut b).unwrap();
                xattrs.push((n, b[..l].to_vec()));
            }
            xattrs.sort();
            out.insert(p, (a.mode, a.nlink, content, xattrs));
        }
    }
    out
}

fn apply(img: &mut [u8], op: &DevOp) {
    if let DevOp::Write(b, data) = op {
        let s = *b as usize * BLOCK_SIZE;
        img[s..s + data.len()].copy_from_slice(data);
    }
}

/// Mount a crash image and check it against the allowed states.
fn check_image(img: Vec<u8>, allowed: &[&State], what: &str) {
    let dev = MemDevice::from_bytes(img);
    let r = ferfs_tools::cli::run_check(dev.clone(), false, true)
        .unwrap_or_else(|e| panic!("{what}: crash image does not mount: {e}"));
    assert!(r.errors.is_empty(), "{what}: fsck errors {:#?}", r.errors);
    let v = Volume::mount(dev, StdHost, MountOptions::inspect()).unwrap();
    let got = state_of(&v);
    assert!(
        allowed.iter().any(|s| **s == got),
        "{what}: state matches no synced state"
    );
}

#[test]
fn every_crash_point_recovers_a_synced_state() {
    crash_run(99, 8, Compression::Zstd);
    crash_run(7, 6, Compression::None);
}

fn crash_run(seed: u64, rounds: usize, comp: Compression) {
    let (dev, mut v) = new_fs(4096, CsumType::Crc32c, comp);
    let base = dev.snapshot();
    dev.start_recording();
    let mut rng = Rng(seed);
    // (record length when the sync returned, state it made durable)
    let mut marks: Vec<(usize, State)> = vec![(0, State::new())];
    let names: Vec<Vec<u8>> = (0..5).map(|i| format!("f{i}").into_bytes()).collect();
    for _round in 0..rounds {
        for _ in 0..4 {
            // Random directory among the root and its subdirectories.
            let mut dirs = vec![ROOT_INO];
            v.readdir(ROOT_INO, 0, &mut |_, _, ino, t| {
                if u32::from(t) << 12 == S_IFDIR {
                    dirs.push(ino);
                }
                true
            })
            .unwrap();
            let d = dirs[rng.below(dirs.len() as u64) as usize];
            let name = names[rng.below(5) as usize].clone();
            let existing = v.lookup_entry(d, &name).unwrap();
            match rng.below(10) {
                0..=3 => {
                    let ino = match existing {
                        Some((i, t, _)) if u32::from(t) << 12 == S_IFREG => i,
                        Some(_) => continue,
                        None => v.create(d, &name, S_IFREG | 0o644, 0, 0, 0).unwrap().ino,
                    };
                    let len = 1 + rng.below(150_000) as usize;
                    let off = rng.below(100_000);
                    let c = rng.below(2) == 0;
                    v.write(ino, off, &rng.bytes(len, c)).unwrap();
                }
                4 => match existing {
                    Some((i, t, _)) if u32::from(t) << 12 == S_IFREG => {
                        v.truncate(i, rng.below(200_000)).unwrap();
                    }
                    _ => {}
                },
                5 => match existing {
                    Some((_, t, _)) if u32::from(t) << 12 == S_IFDIR => {
                        let _ = v.rmdir(d, &name);
                    }
                    Some(_) => v.unlink(d, &name).unwrap(),
                    None if d == ROOT_INO => {
                        v.mkdir(d, &name, 0o755, 0, 0).unwrap();
                    }
                    None => {
                        v.symlink(d, &name, b"some/target", 0, 0).unwrap();
                    }
                },
                6 | 7 => {
                    let d2 = dirs[rng.below(dirs.len() as u64) as usize];
                    let to = names[rng.below(5) as usize].clone();
                    let flags = rng.below(3) as u32;
                    let _ = v.rename(d, &name, d2, &to, flags);
                }
                8 => {
                    if let Some((i, t, _)) = existing {
                        if u32::from(t) << 12 == S_IFREG {
                            let _ = v.link(i, ROOT_INO, format!("l{}", rng.below(3)).as_bytes());
                        }
                    }
                }
                _ => {
                    if let Some((i, _, _)) = existing {
                        let vlen = rng.below(100) as usize + 1;
                        let val = rng.bytes(vlen, false);
                        v.setxattr(i, b"user.x", &val, 0).unwrap();
                    }
                }
            }
        }
        v.sync().unwrap();
        marks.push((dev.record_len(), state_of(&v)));
    }
    let record = dev.take_record();
    assert!(
        record.len() > 50,
        "workload too small: {} ops",
        record.len()
    );

    // Every prefix.
    let mut img = base.clone();
    let mut window_start_img = base.clone();
    let mut window: Vec<usize> = Vec::new();
    let mut subsets_checked = 0;
    let mut prefixes_checked = 0;
    for cut in 0..=record.len() {
        // Durable: the newest sync that completed at or before `cut`;
        // the next one may or may not have landed.
        let k = marks.iter().rposition(|(len, _)| *len <= cut).unwrap();
        let mut allowed = vec![&marks[k].1];
        if let Some(next) = marks.get(k + 1) {
            allowed.push(&next.1);
        }
        check_image(img.clone(), &allowed, &format!("prefix {cut}"));
        prefixes_checked += 1;
        let Some(op) = record.get(cut) else { break };
        match op {
            DevOp::Flush => {
                // Before the flush: random subsets of the window, any order.
                if window.len() > 1 {
                    for _ in 0..3 {
                        let mut sub = window_start_img.clone();
                        let mut idx = window.clone();
                        // Shuffle and keep a random-length prefix.
                        for i in (1..idx.len()).rev() {
                            idx.swap(i, rng.below(i as u64 + 1) as usize);
                        }
                        idx.truncate(rng.below(idx.len() as u64) as usize);
                        for i in &idx {
                            apply(&mut sub, &record[*i]);
                        }
                        check_image(sub, &allowed, &format!("subset of window before {cut}"));
                        subsets_checked += 1;
                    }
                }
                window.clear();
                window_start_img = img.clone();
            }
            DevOp::Write(..) => window.push(cut),
        }
        apply(&mut img, op);
    }
    assert!(subsets_checked > 10);
    eprintln!("crash test: {} recorded ops, {prefixes_checked} prefixes and {subsets_checked} reordered windows checked", record.len());
}

/// Deleting or truncating a file with thousands of extents on a full
/// filesystem: every flush boundary (and a sample of points between) must
/// mount, pass fsck and show the file either untouched or fully gone / cut.
#[test]
fn freeing_a_large_file_on_a_full_filesystem_is_crash_safe() {
    for truncate in [false, true] {
        let (dev, mut v) = new_fs(4096, CsumType::Crc32c, Compression::None);
        let sparse = v
            .create(ROOT_INO, b"sparse", S_IFREG | 0o644, 0, 0, 0)
            .unwrap();
        for i in 0..400u64 {
            v.write(sparse.ino, i * 128 * 1024, b"x").unwrap();
        }
        // Fill the rest cheaply with preallocated (unwritten) extents.
        let fill = v
            .create(ROOT_INO, b"fill", S_IFREG | 0o644, 0, 0, 0)
            .unwrap();
        let mut off = 0;
        while v.fallocate(fill.ino, off, 128 << 10, 0).is_ok() {
            off += 128 << 10;
        }
        v.sync().unwrap();
        let before = state_of(&v);
        let base = dev.snapshot();
        dev.start_recording();
        if truncate {
            v.truncate(sparse.ino, 0).unwrap();
        } else {
            v.unlink(ROOT_INO, b"sparse").unwrap();
        }
        v.sync().unwrap();
        let after = state_of(&v);
        let record = dev.take_record();
        drop(v);
        let allowed = [&before, &after];
        let mut img = base;
        for (n, op) in record.iter().enumerate() {
            if matches!(op, DevOp::Flush) || n % 1500 == 0 {
                check_image(
                    img.clone(),
                    &allowed,
                    &format!("truncate={truncate} prefix {n}"),
                );
            }
            apply(&mut img, op);
        }
        check_image(img, &allowed, "final");
        assert_clean(&dev);
    }
}

/// States that only arise when freeing spans commits: an unlinked inode
/// with an ORPHAN record, and a truncated file whose extents past the new
/// size are not yet freed. fsck must accept both and a read-write mount
/// must finish them.
#[test]
fn interrupted_deletion_and_truncation_are_clean_and_finished_at_mount() {
    use ferfs_core::fs::Interrupt;
    for what in [Interrupt::Unlink, Interrupt::Truncate] {
        let (dev, mut v) = new_fs(4096, CsumType::Crc32c, Compression::None);
        let f = v.create(ROOT_INO, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
        v.write(f.ino, 0, &vec![1u8; 1 << 20]).unwrap();
        v.sync().unwrap();
        let used = v.space().used();
        v.debug_interrupt(what, ROOT_INO, b"f").unwrap();
        v.commit().unwrap();
        drop(v);
        // Read-only check of the interrupted state: clean.
        let r = ferfs_tools::cli::run_check(MemDevice::from_bytes(dev.snapshot()), false, false)
            .unwrap();
        assert!(r.errors.is_empty(), "{what:?}: {:#?}", r.errors);
        // A read-write mount finishes the job and frees the blocks.
        let v = remount(&dev);
        assert!(v.space().used() + 200 < used, "{what:?}: blocks not freed");
        match what {
            Interrupt::Unlink => assert!(v.getattr(f.ino).is_err()),
            Interrupt::Truncate => assert_eq!(v.getattr(f.ino).unwrap().sectors, 0),
        }
        drop(v);
        assert_clean(&dev);
    }
}
