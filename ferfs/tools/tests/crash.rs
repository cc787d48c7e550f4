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

type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn state_of(v: &Vol) -> State {
    let mut names = Vec::new();
    v.readdir(ROOT_INO, 0, &mut |_, n, ino, _| {
        names.push((n.to_vec(), ino));
        true
    })
    .unwrap();
    names
        .into_iter()
        .map(|(n, ino)| {
            let size = v.getattr(ino).unwrap().size as usize;
            let mut buf = vec![0u8; size];
            v.read(ino, 0, &mut buf).unwrap();
            (n, buf)
        })
        .collect()
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
    let v = Volume::mount(
        dev,
        StdHost,
        MountOptions {
            read_only: true,
            repair: false,
            compression: None,
        },
    )
    .unwrap();
    let got = state_of(&v);
    assert!(
        allowed.iter().any(|s| **s == got),
        "{what}: state matches no synced state"
    );
}

#[test]
fn every_crash_point_recovers_a_synced_state() {
    let (dev, mut v) = new_fs(4096, CsumType::Crc32c, Compression::Zstd);
    let base = dev.snapshot();
    dev.start_recording();
    let mut rng = Rng(99);
    // (record length when the sync returned, state it made durable)
    let mut marks: Vec<(usize, State)> = vec![(0, State::new())];
    let mut live: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for round in 0..8 {
        for _ in 0..3 {
            let name = format!("f{}", rng.below(5)).into_bytes();
            match rng.below(4) {
                0 | 1 => {
                    let ino = match live.get(&name) {
                        Some(i) => *i,
                        None => {
                            let a = v.create(ROOT_INO, &name, S_IFREG | 0o644, 0, 0, 0).unwrap();
                            live.insert(name.clone(), a.ino);
                            a.ino
                        }
                    };
                    let len = 1 + rng.below(150_000) as usize;
                    let off = rng.below(100_000);
                    let c = rng.below(2) == 0;
                    v.write(ino, off, &rng.bytes(len, c)).unwrap();
                }
                2 => {
                    if live.remove(&name).is_some() {
                        v.unlink(ROOT_INO, &name).unwrap();
                    }
                }
                _ => {
                    let to = format!("f{}", rng.below(5)).into_bytes();
                    if let Some(i) = live.get(&name).copied() {
                        if v.rename(ROOT_INO, &name, ROOT_INO, &to, 0).is_ok() {
                            live.remove(&name);
                            live.insert(to, i);
                        }
                    }
                }
            }
        }
        v.sync().unwrap();
        marks.push((dev.record_len(), state_of(&v)));
        let _ = round;
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
