//! The fuzz targets' entry functions on stable `cargo test`: every seed of
//! the corpus mounts, walks and checks clean; every input the fuzzer ever
//! found a problem with (`ferfs/fuzz/regressions/`) and the committed
//! seeds (`ferfs/fuzz/seeds/`) run without a panic.

use ferfs_core::BlockDevice;
use ferfs_tools::fuzzing::{fsck_repair, mount_walk, ops, seed_images, SparseDevice};
use std::path::Path;

#[test]
fn seeds_mount_walk_and_check_clean() {
    let seeds = seed_images().unwrap();
    assert_eq!(seeds.len(), 5);
    for (name, data) in &seeds {
        let st = mount_walk(data);
        assert!(st.mounted, "{name} does not mount");
        assert_eq!(st.fsck_errors, 0, "{name} is not clean");
        if !name.contains("none") {
            assert!(
                st.entries >= 8,
                "{name}: walked only {} entries",
                st.entries
            );
            assert!(
                st.bytes_read > 10_000,
                "{name}: read only {} bytes",
                st.bytes_read
            );
        }
        let st = fsck_repair(data);
        assert!(st.mounted && st.fsck_errors == 0, "{name}: fsck -y {st:?}");
    }
}

#[test]
fn sparse_images_round_trip() {
    let (_, data) = &seed_images().unwrap()[1];
    let dev = SparseDevice::decode(data);
    let mut image = vec![0u8; dev.num_blocks() as usize * 4096];
    dev.read(0, &mut image).unwrap();
    assert_eq!(&SparseDevice::encode(&image), data);
    // Truncated inputs decode without trouble and do not mount or do.
    for cut in [0, 1, 5, 6, 100, data.len() / 2] {
        mount_walk(&data[..cut]);
    }
}

#[test]
fn seeds_with_damaged_blocks_do_not_panic() {
    // A cheap stand-in for the fuzzer: overwrite bytes of each record.
    for (_, data) in seed_images().unwrap() {
        for step in [7usize, 13, 31] {
            let mut d = data.clone();
            let mut i = 6;
            while i < d.len() {
                d[i] ^= 0x5a;
                i += 4096 / step;
            }
            mount_walk(&d);
            fsck_repair(&d);
        }
    }
}

#[test]
fn fuzz_regressions_and_corpus_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let dirs = [root.join("regressions"), root.join("seeds")];
    let mut n = 0;
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(data) = std::fs::read(e.path()) else {
                continue;
            };
            mount_walk(&data);
            fsck_repair(&data);
            ops(&data);
            n += 1;
        }
    }
    assert!(n >= 5, "only {n} inputs replayed: the seeds are missing");
}

#[test]
fn ops_sequences_stay_consistent() {
    // The `ops` target on pseudo-random inputs (the fuzzer explores further).
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for round in 0..40u64 {
        let data: Vec<u8> = (0..400)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let n = ops(&data);
        assert!(n >= 99, "round {round}: only {n} operations");
    }
}
