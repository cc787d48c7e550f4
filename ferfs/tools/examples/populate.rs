//! Fill an image with files for measurements:
//! `populate IMAGE FILES BYTES_PER_FILE` (image made by mkfs.ferfs first).
//! Half the files hold compressible text, half incompressible bytes.

use ferfs_core::format::{ROOT_INO, S_IFREG};
use ferfs_core::{MountOptions, Volume};
use ferfs_tools::{FileDevice, StdHost};
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 4 {
        eprintln!("usage: populate IMAGE FILES BYTES_PER_FILE");
        std::process::exit(2);
    }
    let files: u64 = a[2].parse().expect("FILES");
    let per: usize = a[3].parse().expect("BYTES_PER_FILE");
    let dev = FileDevice::open(&a[1], true).expect("open image");
    let mut v = Volume::mount(dev, StdHost, MountOptions::default()).expect("mount");
    let mut x = 0x1234_5678_9abc_def0u64;
    let t0 = Instant::now();
    let mut buf = vec![0u8; per];
    for i in 0..files {
        for (j, b) in buf.iter_mut().enumerate() {
            *b = if i % 2 == 0 {
                b"the quick brown fox jumps over the lazy dog "[j % 44]
            } else {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            };
        }
        let f = v
            .create(
                ROOT_INO,
                format!("f{i}").as_bytes(),
                S_IFREG | 0o644,
                0,
                0,
                0,
            )
            .expect("create");
        v.write(f.ino, 0, &buf).expect("write");
    }
    v.sync().expect("sync");
    let secs = t0.elapsed().as_secs_f64();
    let mb = (files as f64) * (per as f64) / 1e6;
    println!(
        "wrote {files} files, {mb:.1} MB in {secs:.2} s ({:.1} MB/s)",
        mb / secs
    );
}
