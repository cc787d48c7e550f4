#![allow(dead_code)]

use ferfs_core::format::{Compression, CsumType};
use ferfs_core::{MkfsOptions, MountOptions, Volume};
use ferfs_tools::{MemDevice, StdHost};

pub type Vol = Volume<MemDevice, StdHost>;

/// Deterministic xorshift64* generator (reproducible failures by seed).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, n: usize, compressible: bool) -> Vec<u8> {
        if compressible {
            let b = (self.next() % 4) as u8;
            (0..n).map(|i| b'a' + b + (i % 7) as u8).collect()
        } else {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }
}

pub fn mkfs_opts(csum: CsumType, compression: Compression, dup: bool) -> MkfsOptions {
    MkfsOptions {
        fsid: [7; 16],
        csum,
        dup_metadata: dup,
        compression,
        label: [0; 64],
        total_blocks: 0,
    }
}

pub fn new_fs(blocks: u64, csum: CsumType, compression: Compression) -> (MemDevice, Vol) {
    let dev = MemDevice::new(blocks);
    let vol =
        Volume::mkfs(dev.clone(), StdHost, &mkfs_opts(csum, compression, true)).expect("mkfs");
    (dev, vol)
}

pub fn remount(dev: &MemDevice) -> Vol {
    Volume::mount(dev.clone(), StdHost, MountOptions::default()).expect("mount")
}

/// Full fsck on the device's current content, read-only; panics with the
/// report if anything is wrong.
pub fn assert_clean(dev: &MemDevice) {
    let copy = MemDevice::from_bytes(dev.snapshot());
    let r = ferfs_tools::cli::run_check(copy, false, true).expect("fsck mount");
    assert!(r.errors.is_empty(), "fsck errors: {:#?}", r.errors);
}
