//! ferfs performance, in-process on a RAM-backed device (not a test):
//! `cargo run --release -p ferfs-tools --example bench [MIB]`.
//!
//! - write and read throughput of the full path (CoW B-trees, checksums,
//!   compression, commit) for every checksum and every compression, on a
//!   compressible text-like dataset and on incompressible bytes;
//! - fsck speed (MB/s of used space, data and metadata verified, crc32c);
//! - mkfs of a 100 GiB sparse image file;
//! - one large directory: create and lookup cost at 10 thousand, 100 thousand and
//!   1 million entries (`--dir` runs only this part).
//!
//! Prints a Markdown table. Times are this thread's CPU time (the machine is
//! shared); the device is memory, so there is no I/O wait to leave out.

use ferfs_core::format::*;
use ferfs_core::{MkfsOptions, MountOptions, Volume};
use ferfs_tools::{check, MemDevice, StdHost};

/// CPU time of this thread, in seconds: the machine is shared, so wall
/// time would measure the neighbours; the whole path runs on this thread.
fn cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// A stopwatch over this thread's CPU time.
struct Instant(f64);

impl Instant {
    fn now() -> Self {
        Instant(cpu_secs())
    }
    fn elapsed(&self) -> Elapsed {
        Elapsed(cpu_secs() - self.0)
    }
}

struct Elapsed(f64);

impl Elapsed {
    fn as_secs_f64(&self) -> f64 {
        self.0
    }
}

const WRITE_SIZE: usize = 1 << 20;

/// Text-like bytes (words drawn from a small vocabulary with a skewed
/// distribution): compresses about 3x, like source code.
fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the", "struct", "return", "if", "else", "for", "int", "u64", "static", "const", "inode",
        "block", "extent", "tree", "node", "key", "error", "buffer", "len", "size", "= ", "->",
        "(", ")", ";\n", "{\n", "}\n", "\t", "0", "1", "NULL", "unsigned",
    ];
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let r = (x % 1000) as usize;
        // Skewed: the first words far more often.
        let w = if r < 600 { r % 8 } else { r % WORDS.len() };
        out.extend_from_slice(WORDS[w].as_bytes());
        if x & 3 == 0 {
            out.extend_from_slice(format!("{}", x % 4096).as_bytes());
        }
        out.push(b' ');
    }
    out.truncate(len);
    out
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn mkfs(
    blocks: u64,
    csum: CsumType,
    compression: Compression,
) -> (MemDevice, Volume<MemDevice, StdHost>) {
    let dev = MemDevice::new(blocks);
    let opts = MkfsOptions {
        fsid: [9; 16],
        csum,
        dup_metadata: true,
        compression,
        label: [0; 64],
        total_blocks: 0,
    };
    let v = Volume::mkfs(dev.clone(), StdHost, &opts).expect("mkfs");
    (dev, v)
}

/// (write MB/s, read MB/s, stored/logical) of `data` written in 1 MiB
/// calls into 8 files, committed, then read back after a remount.
fn run(csum: CsumType, compression: Compression, data: &[u8]) -> (f64, f64, f64) {
    let blocks = (data.len() as u64 * 3 / 4096).max(16384);
    let (dev, mut v) = mkfs(blocks, csum, compression);
    let per_file = data.len() / 8;
    let t0 = Instant::now();
    let mut inos = Vec::new();
    for f in 0..8 {
        let ino = v
            .create(
                ROOT_INO,
                format!("f{f}").as_bytes(),
                S_IFREG | 0o644,
                0,
                0,
                0,
            )
            .expect("create")
            .ino;
        let part = &data[f * per_file..(f + 1) * per_file];
        for (i, c) in part.chunks(WRITE_SIZE).enumerate() {
            v.write(ino, (i * WRITE_SIZE) as u64, c).expect("write");
        }
        inos.push(ino);
    }
    v.sync().expect("sync");
    let w = t0.elapsed().as_secs_f64();
    drop(v);
    let v = Volume::mount(dev.clone(), StdHost, MountOptions::inspect()).expect("mount");
    let mut buf = vec![0u8; WRITE_SIZE];
    let t0 = Instant::now();
    let mut total = 0usize;
    for (f, &ino) in inos.iter().enumerate() {
        let mut off = 0usize;
        while off < per_file {
            let n = v.read(ino, off as u64, &mut buf).expect("read");
            assert!(n > 0);
            let want = &data[f * per_file + off..f * per_file + off + n];
            assert!(buf[..n] == *want, "read back differs");
            off += n;
            total += n;
        }
    }
    let r = t0.elapsed().as_secs_f64();
    let rep = check::check_with(&v, false, false).expect("check");
    let ratio = rep.stored_bytes as f64 / rep.logical_bytes.max(1) as f64;
    let mb = total as f64 / 1e6;
    (data.len() as f64 / 1e6 / w, mb / r, ratio)
}

/// One directory of `n` empty files: (µs per create, µs per lookup of a random existing
/// name after a remount, µs per lookup of a missing name). Committed every 10,000 creates,
/// as a writer's periodic commit would.
fn large_dir(n: u64) -> (f64, f64, f64) {
    // About 200 bytes of metadata an entry (inode, two directory items), twice (DUP), plus
    // room for copy-on-write.
    let blocks = (n * 1600 / 4096).max(16384);
    let (dev, mut v) = mkfs(blocks, CsumType::Crc32c, Compression::None);
    let t0 = Instant::now();
    for i in 0..n {
        v.create(
            ROOT_INO,
            format!("entry-{i:08}").as_bytes(),
            S_IFREG | 0o644,
            0,
            0,
            0,
        )
        .expect("create");
        if i % 10_000 == 9_999 {
            v.sync().expect("sync");
        }
    }
    v.sync().expect("sync");
    let create = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
    drop(v);
    let v = Volume::mount(dev, StdHost, MountOptions::inspect()).expect("mount");
    const LOOKUPS: u64 = 20_000;
    let mut x = 5u64;
    let t0 = Instant::now();
    for _ in 0..LOOKUPS {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let i = (x >> 33) % n;
        let found = v
            .lookup_entry(ROOT_INO, format!("entry-{i:08}").as_bytes())
            .expect("lookup");
        assert!(found.is_some(), "entry-{i:08} not found");
    }
    let hit = t0.elapsed().as_secs_f64() * 1e6 / LOOKUPS as f64;
    let t0 = Instant::now();
    for i in 0..LOOKUPS {
        let found = v
            .lookup_entry(ROOT_INO, format!("missing-{i:08}").as_bytes())
            .expect("lookup");
        assert!(found.is_none());
    }
    let miss = t0.elapsed().as_secs_f64() * 1e6 / LOOKUPS as f64;
    (create, hit, miss)
}

fn print_large_dir() {
    println!();
    println!("One directory, crc32c, metadata DUP (µs of CPU per operation):");
    println!();
    println!("| entries | create | lookup (hit, after remount) | lookup (miss) |");
    println!("|---:|---:|---:|---:|");
    for n in [10_000u64, 100_000, 1_000_000] {
        let (c, h, m) = large_dir(n);
        println!("| {n} | {c:.1} | {h:.1} | {m:.1} |");
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--dir") {
        print_large_dir();
        return;
    }
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let len = mib << 20;
    let txt = text(len, 7);
    let rnd = random(len, 11);
    println!(
        "ferfs in-process on a RAM device: {mib} MiB in 8 files, 1 MiB write(2)-sized calls, \
         commit, remount, read back (verified); metadata DUP"
    );
    println!();
    println!("| checksum | compression | text write MB/s | text read MB/s | text stored/logical | random write MB/s | random read MB/s |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let csums = [
        CsumType::Crc32c,
        CsumType::XxHash64,
        CsumType::Sha256,
        CsumType::Blake2b256,
    ];
    let comps = [
        Compression::None,
        Compression::Zstd,
        Compression::Lzo,
        Compression::Zlib,
    ];
    for csum in csums {
        for comp in comps {
            // Every checksum with no compression and with zstd; every compression with crc32c.
            if csum != CsumType::Crc32c && comp != Compression::None && comp != Compression::Zstd {
                continue;
            }
            let (tw, tr, ratio) = run(csum, comp, &txt);
            let (rw, rr, _) = run(csum, comp, &rnd);
            println!(
                "| {} | {} | {tw:.0} | {tr:.0} | {ratio:.3} | {rw:.0} | {rr:.0} |",
                csum.name(),
                comp.name()
            );
        }
    }

    // fsck: a filesystem with 256 MiB of incompressible data, a quarter of
    // the files 4 KiB, the others 64 KiB..4 MiB; crc32c, no compression.
    let len = 256usize << 20;
    let rnd = random(len, 13);
    let (dev, mut v) = mkfs((len as u64) * 2 / 4096, CsumType::Crc32c, Compression::None);
    let mut x = 1u64;
    let mut used = 0usize;
    let mut n = 0;
    while used < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let size = if n % 4 == 0 {
            4096
        } else {
            (64 << 10) + (x >> 40) as usize % (4 << 20)
        };
        let size = size.min(len - used).max(1);
        let ino = v
            .create(
                ROOT_INO,
                format!("g{n}").as_bytes(),
                S_IFREG | 0o644,
                0,
                0,
                0,
            )
            .expect("create")
            .ino;
        v.write(ino, 0, &rnd[used..used + size]).expect("write");
        used += size;
        n += 1;
    }
    v.sync().expect("sync");
    drop(v);
    let v = Volume::mount(dev.clone(), StdHost, MountOptions::inspect()).expect("mount");
    let used_bytes = (v.space().used()) * BLOCK_SIZE_U64;
    let t0 = Instant::now();
    let rep = check::check(&v, false).expect("fsck");
    let secs = t0.elapsed().as_secs_f64();
    assert!(rep.errors.is_empty(), "fsck errors: {:?}", rep.errors);
    println!();
    println!(
        "fsck (crc32c, every data extent and metadata block verified): {} files, {:.1} MB used, \
         {:.3} s: **{:.0} MB/s of used space**",
        n,
        used_bytes as f64 / 1e6,
        secs,
        used_bytes as f64 / 1e6 / secs
    );

    // mkfs of a 100 GiB sparse image, through the mkfs.ferfs front end.
    let dir = std::env::temp_dir().join(format!("ferfs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let img = dir.join("100g.img");
    let args: Vec<String> = ["-q", "-s", "100G", img.to_str().expect("utf-8 path")]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let t0 = std::time::Instant::now();
    let code = ferfs_tools::cli::mkfs_main(&args);
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(code, 0, "mkfs failed");
    let alloc = std::fs::metadata(&img).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.blocks() * 512
    });
    println!(
        "mkfs.ferfs -s 100G (sparse image file): **{secs:.3} s**, {} KiB allocated",
        alloc.unwrap_or(0) / 1024
    );
    let _ = std::fs::remove_dir_all(&dir);

    print_large_dir();
}
