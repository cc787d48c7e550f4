//! Command-line front ends of mkfs.ferfs, fsck.ferfs and ferfs. Each
//! returns the process exit code; errors are printed as one line.

use crate::check::{self, Report};
use crate::{fmt_uuid, parse_compression, parse_csum, random_fsid, FileDevice, StdHost};
use ferfs_core::format::*;
use ferfs_core::node;
use ferfs_core::volume::Visitor;
use ferfs_core::{MkfsOptions, MountOptions, Volume};
use std::time::Instant;

fn fail(tool: &str, msg: impl std::fmt::Display) -> i32 {
    eprintln!("{tool}: {msg}");
    8
}

/// Parse "123", "10M", "100G" (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let (num, mul) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        (i, 'T' | 't') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

const MKFS_USAGE: &str = "usage: mkfs.ferfs [-c crc32c|xxhash64|sha256|blake2b-256] [-z zstd|lzo|zlib|none] [--no-dup] [-L label] [-s size] IMAGE";

pub fn mkfs_main(args: &[String]) -> i32 {
    let tool = "mkfs.ferfs";
    let mut csum = CsumType::Crc32c;
    let mut comp = Compression::None;
    let mut dup = true;
    let mut label = [0u8; 64];
    let mut size: Option<u64> = None;
    let mut image: Option<&str> = None;
    let mut quiet = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let r: Result<(), String> = match a.as_str() {
            "-c" | "--csum" => val("-c").and_then(|v| {
                parse_csum(&v)
                    .map(|c| csum = c)
                    .ok_or(format!("unknown checksum {v:?}"))
            }),
            "-z" | "--compress" => val("-z").and_then(|v| {
                parse_compression(&v)
                    .map(|c| comp = c)
                    .ok_or(format!("unknown compression {v:?}"))
            }),
            "--no-dup" => {
                dup = false;
                Ok(())
            }
            "-q" => {
                quiet = true;
                Ok(())
            }
            "-L" | "--label" => val("-L").and_then(|v| {
                if v.len() > 63 {
                    return Err("label longer than 63 bytes".into());
                }
                label[..v.len()].copy_from_slice(v.as_bytes());
                Ok(())
            }),
            "-s" | "--size" => val("-s").and_then(|v| {
                parse_size(&v)
                    .map(|s| size = Some(s))
                    .ok_or(format!("bad size {v:?}"))
            }),
            "-h" | "--help" => {
                println!("{MKFS_USAGE}");
                return 0;
            }
            s if !s.starts_with('-') && image.is_none() => {
                image = Some(s);
                Ok(())
            }
            s => Err(format!("unexpected argument {s:?}\n{MKFS_USAGE}")),
        };
        if let Err(e) = r {
            return fail(tool, e);
        }
    }
    let Some(image) = image else {
        return fail(tool, MKFS_USAGE);
    };
    if let Some(s) = size {
        // Create (sparse) or grow the image file to the requested size.
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(image);
        match f.and_then(|f| {
            if f.metadata()?.len() < s {
                f.set_len(s)?;
            }
            Ok(())
        }) {
            Ok(()) => {}
            Err(e) => return fail(tool, format!("cannot create {image}: {e}")),
        }
    }
    let dev = match FileDevice::open(image, true) {
        Ok(d) => d,
        Err(e) => return fail(tool, format!("cannot open {image}: {e}")),
    };
    let total_blocks = size.map_or(0, |s| s / BLOCK_SIZE_U64);
    let fsid = random_fsid();
    let opts = MkfsOptions {
        fsid,
        csum,
        dup_metadata: dup,
        compression: comp,
        label,
        total_blocks,
    };
    let t0 = Instant::now();
    match Volume::mkfs(dev, StdHost, &opts) {
        Ok(v) => {
            if !quiet {
                let i = v.info();
                println!(
                    "ferfs: {} blocks of 4 KiB ({} MiB), uuid {}, checksum {}, metadata {}, compression {}, made in {:.3} s",
                    i.total_blocks,
                    i.total_blocks / 256,
                    fmt_uuid(&fsid),
                    csum.name(),
                    if dup { "DUP" } else { "single" },
                    comp.name(),
                    t0.elapsed().as_secs_f64()
                );
            }
            0
        }
        Err(e) => fail(tool, format!("{image}: {e}")),
    }
}

const FSCK_USAGE: &str = "usage: fsck.ferfs [-n | -y | -p | -a] [-f] [-v] IMAGE";

pub fn fsck_main(args: &[String]) -> i32 {
    let tool = "fsck.ferfs";
    let mut repair = false;
    let mut verbose = false;
    let mut image = None;
    for a in args {
        match a.as_str() {
            "-n" => repair = false,
            "-y" | "-p" | "-a" => repair = true,
            "-f" => {}
            "-v" => verbose = true,
            "-h" | "--help" => {
                println!("{FSCK_USAGE}");
                return 0;
            }
            s if !s.starts_with('-') && image.is_none() => image = Some(s.to_string()),
            s => return fail(tool, format!("unexpected argument {s:?}\n{FSCK_USAGE}")),
        }
    }
    let Some(image) = image else {
        return fail(tool, FSCK_USAGE);
    };
    let dev = match FileDevice::open(&image, repair) {
        Ok(d) => d,
        Err(e) => return fail(tool, format!("cannot open {image}: {e}")),
    };
    let t0 = Instant::now();
    let res = run_check(dev, repair, false);
    let code = check::exit_code(&res);
    report(tool, &image, &res, verbose, t0);
    code
}

/// Mount (read-only unless repairing) and check.
pub fn run_check<D: ferfs_core::BlockDevice>(
    dev: D,
    repair: bool,
    scrub: bool,
) -> ferfs_core::Result<Report> {
    let opts = MountOptions {
        read_only: !repair,
        repair,
        compression: None,
    };
    let mut vol = Volume::mount(dev, StdHost, opts)?;
    if repair {
        check::repair(&mut vol, scrub)
    } else {
        check::check(&vol, scrub)
    }
}

fn report(tool: &str, image: &str, res: &ferfs_core::Result<Report>, verbose: bool, t0: Instant) {
    let secs = t0.elapsed().as_secs_f64();
    match res {
        Ok(r) => {
            for e in &r.errors {
                eprintln!("{tool}: {image}: {e}");
            }
            let mb = r.bytes_checked as f64 / 1e6;
            let state = if !r.errors.is_empty() {
                format!("{} errors left uncorrected", r.errors.len())
            } else if r.corrected > 0 {
                format!("clean after {} corrections", r.corrected)
            } else {
                "clean".to_string()
            };
            println!(
                "{image}: {state}; {} inodes ({} dirs), {} extents, {} metadata nodes; checked {:.1} MB in {:.3} s",
                r.inodes, r.dirs, r.extents, r.meta_nodes, mb, secs
            );
            if verbose {
                println!("{r:?}");
            }
        }
        Err(e) => eprintln!("{tool}: {image}: cannot check: {e}"),
    }
}

const FERFS_USAGE: &str = "usage: ferfs mount [-o ro,compress=ALG] IMAGE DIR | ferfs scrub [-n] IMAGE | ferfs inspect IMAGE [super|tree root|tree fs|block N] | ferfs stats IMAGE";

pub fn ferfs_main(args: &[String]) -> i32 {
    let tool = "ferfs";
    let Some(cmd) = args.first() else {
        return fail(tool, FERFS_USAGE);
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "mount" => mount_cmd(rest),
        "scrub" => {
            let repair = !rest.iter().any(|a| a == "-n");
            let Some(image) = rest.iter().find(|a| !a.starts_with('-')) else {
                return fail(tool, FERFS_USAGE);
            };
            let dev = match FileDevice::open(image, repair) {
                Ok(d) => d,
                Err(e) => return fail(tool, format!("cannot open {image}: {e}")),
            };
            let t0 = Instant::now();
            let res = run_check(dev, repair, true);
            report("ferfs scrub", image, &res, false, t0);
            check::exit_code(&res)
        }
        "inspect" => inspect_cmd(rest),
        "stats" => {
            let Some(image) = rest.first() else {
                return fail(tool, FERFS_USAGE);
            };
            let dev = match FileDevice::open(image, false) {
                Ok(d) => d,
                Err(e) => return fail(tool, format!("cannot open {image}: {e}")),
            };
            let opts = MountOptions::inspect();
            let vol = match Volume::mount(dev, StdHost, opts) {
                Ok(v) => v,
                Err(e) => return fail(tool, format!("{image}: {e}")),
            };
            let sf = vol.statfs();
            let info = *vol.info();
            match check::check_with(&vol, false, false) {
                Ok(r) => {
                    println!("uuid:            {}", fmt_uuid(&info.fsid));
                    println!("generation:      {}", info.generation);
                    println!(
                        "checksum:        {}; metadata {}; default compression {}",
                        info.csum.name(),
                        if info.dup { "DUP" } else { "single" },
                        info.compression.name()
                    );
                    println!(
                        "space:           {} blocks of 4 KiB, {} used, {} free ({} reserved for metadata)",
                        sf.blocks,
                        sf.blocks - sf.blocks_free,
                        sf.blocks_free,
                        info.reserve_blocks
                    );
                    println!(
                        "inodes:          {} ({} directories, {} others)",
                        r.inodes, r.dirs, r.files
                    );
                    println!("data extents:    {}", r.extents);
                    println!("file data:       {} bytes", r.logical_bytes);
                    println!(
                        "stored data:     {} bytes in {} blocks",
                        r.stored_bytes, r.stored_blocks
                    );
                    if r.stored_bytes > 0 {
                        println!(
                            "compression:     {:.2}x",
                            r.logical_bytes as f64 / r.stored_bytes as f64
                        );
                    }
                    println!(
                        "metadata nodes:  {} (fs tree height {})",
                        r.meta_nodes,
                        r.fs_tree_level + 1
                    );
                    if !r.errors.is_empty() {
                        println!("problems:        {} (run fsck.ferfs)", r.errors.len());
                    }
                    0
                }
                Err(e) => fail(tool, format!("{image}: {e}")),
            }
        }
        "-h" | "--help" => {
            println!("{FERFS_USAGE}");
            0
        }
        other => fail(tool, format!("unknown command {other:?}\n{FERFS_USAGE}")),
    }
}

fn mount_cmd(args: &[String]) -> i32 {
    let tool = "ferfs mount";
    let mut ro = false;
    let mut comp = None;
    let mut pos = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-o" {
            let Some(o) = it.next() else {
                return fail(tool, "-o needs a value");
            };
            for opt in o.split(',') {
                match opt.split_once('=') {
                    None if opt == "ro" => ro = true,
                    None if opt == "rw" => ro = false,
                    Some(("compress", v)) => match parse_compression(v) {
                        Some(c) => comp = Some(c),
                        None => return fail(tool, format!("unknown compression {v:?}")),
                    },
                    _ => return fail(tool, format!("unknown mount option {opt:?}")),
                }
            }
        } else {
            pos.push(a.as_str());
        }
    }
    let [image, dir] = pos[..] else {
        return fail(tool, FERFS_USAGE);
    };
    let dev = match FileDevice::open(image, !ro) {
        Ok(d) => d,
        Err(e) => return fail(tool, format!("cannot open {image}: {e}")),
    };
    let vol = match Volume::mount(
        dev,
        StdHost,
        MountOptions {
            read_only: ro,
            repair: !ro,
            compression: comp,
        },
    ) {
        Ok(v) => v,
        Err(e) => return fail(tool, format!("{image}: {e}")),
    };
    match crate::fuse::mount(vol, dir, ro) {
        Ok(()) => 0,
        Err(e) => fail(tool, format!("cannot mount on {dir}: {e}")),
    }
}

struct Dumper {
    which: u64,
}

impl Visitor for Dumper {
    fn node(&mut self, owner: u64, ptr: &BlockPtr, level: u8) -> ferfs_core::Result<()> {
        if owner == self.which {
            println!(
                "node {} (copy {}) level {level} generation {}",
                ptr.addr.get(),
                ptr.mirror.get(),
                ptr.generation.get()
            );
        }
        Ok(())
    }
    fn item(&mut self, owner: u64, key: Key, data: &[u8]) -> ferfs_core::Result<()> {
        if owner != self.which {
            return Ok(());
        }
        let kind = match key.kind {
            ITEM_INODE => "INODE",
            ITEM_XATTR => "XATTR",
            ITEM_DIR_HASH => "DIR_HASH",
            ITEM_DIR_INDEX => "DIR_INDEX",
            ITEM_EXTENT => "EXTENT",
            ITEM_ROOT => "ROOT",
            _ => "?",
        };
        let mut desc = String::new();
        use zerocopy::FromBytes;
        if key.kind == ITEM_INODE {
            if let Ok(i) = InodeItem::read_from_bytes(data) {
                desc = format!(
                    "mode {:o} nlink {} size {}",
                    i.mode.get(),
                    i.nlink.get(),
                    i.size.get()
                );
            }
        } else if key.kind == ITEM_EXTENT {
            if let Ok(e) = ExtentItem::read_from_bytes(data) {
                desc = format!(
                    "block {} stored {} logical {} {}{}",
                    e.addr.get(),
                    e.stored_len.get(),
                    e.logical_len.get(),
                    Compression::from_u8(e.compression).map_or("?", |c| c.name()),
                    if e.kind == EXTENT_PREALLOC {
                        " prealloc"
                    } else {
                        ""
                    }
                );
            }
        } else if key.kind == ITEM_DIR_HASH || key.kind == ITEM_DIR_INDEX || key.kind == ITEM_XATTR
        {
            let _ = ferfs_core::fs::parse_entries(data, &mut |n, _| {
                desc.push_str(&format!("{:?} ", String::from_utf8_lossy(n)));
                Ok(true)
            });
        }
        println!(
            "  ({} {kind} {}) {} bytes {desc}",
            key.objectid,
            key.offset,
            data.len()
        );
        Ok(())
    }
}

fn inspect_cmd(args: &[String]) -> i32 {
    let tool = "ferfs inspect";
    let Some(image) = args.first() else {
        return fail(tool, FERFS_USAGE);
    };
    let what: Vec<&str> = args[1..].iter().map(|s| s.as_str()).collect();
    let dev = match FileDevice::open(image, false) {
        Ok(d) => d,
        Err(e) => return fail(tool, format!("cannot open {image}: {e}")),
    };
    // Superblock copies, raw.
    if what.is_empty() || what == ["super"] {
        use ferfs_core::BlockDevice;
        let mut buf = vec![0u8; BLOCK_SIZE];
        for at in SUPER_BLOCKS {
            if at >= dev.num_blocks() {
                continue;
            }
            if dev.read(at, &mut buf).is_err() {
                println!("superblock at block {at}: unreadable");
                continue;
            }
            let h = node::header(&buf, at);
            let b = node::read_at::<SuperBody>(&buf, HEADER_SIZE, at);
            match (h, b) {
                (Ok(h), Ok(b)) if b.magic == SUPER_MAGIC => println!(
                    "superblock at block {at}: generation {} uuid {} csum {} blocks {} dup {} compression {} root tree block {} level {} label {:?}",
                    h.generation.get(),
                    fmt_uuid(&h.fsid),
                    CsumType::from_u8(b.csum_type).map_or("?", |c| c.name()),
                    b.total_blocks.get(),
                    b.flags.get() & SB_FLAG_DUP_METADATA != 0,
                    Compression::from_u8(b.default_compression).map_or("?", |c| c.name()),
                    b.root_tree.addr.get(),
                    b.root_tree_level,
                    String::from_utf8_lossy(&b.label).trim_end_matches('\0')
                ),
                _ => println!("superblock at block {at}: none"),
            }
        }
        if what.is_empty() {
            return 0;
        }
    }
    if let ["block", n] = what.as_slice() {
        return inspect_block(&dev, n);
    }
    let which = match what.as_slice() {
        ["super"] => return 0,
        ["tree", "root"] => TREE_ROOT,
        ["tree", "fs"] | ["tree"] => TREE_FS,
        _ => return fail(tool, FERFS_USAGE),
    };
    let vol = match Volume::mount(dev, StdHost, MountOptions::inspect()) {
        Ok(v) => v,
        Err(e) => return fail(tool, format!("{image}: {e}")),
    };
    let tree = if which == TREE_ROOT {
        vol.root_tree()
    } else {
        vol.fs_tree()
    };
    match vol.walk(&tree, &mut Dumper { which }, false) {
        Ok(()) => 0,
        Err(e) => fail(tool, format!("{image}: {e}")),
    }
}

/// Print the header of any block and whether its checksum verifies (with
/// the algorithm of the first valid-looking superblock), without mounting.
fn inspect_block(dev: &FileDevice, n: &str) -> i32 {
    use ferfs_core::{BlockDevice, Checksummer};
    let tool = "ferfs inspect";
    let Ok(block) = n.parse::<u64>() else {
        return fail(tool, format!("bad block number {n:?}"));
    };
    let mut buf = vec![0u8; BLOCK_SIZE];
    if let Err(e) = dev.read(block, &mut buf) {
        return fail(tool, e);
    }
    let mut csum_type = CsumType::Crc32c;
    let mut sb = vec![0u8; BLOCK_SIZE];
    if dev.read(SUPER_BLOCKS[0], &mut sb).is_ok() {
        if let Ok(b) = node::read_at::<SuperBody>(&sb, HEADER_SIZE, SUPER_BLOCKS[0]) {
            if b.magic == SUPER_MAGIC {
                csum_type = CsumType::from_u8(b.csum_type).unwrap_or(CsumType::Crc32c);
            }
        }
    }
    let Ok(h) = node::header(&buf, block) else {
        return fail(tool, "short block");
    };
    let mut c = StdHost.checksum(csum_type, &buf[32..]).unwrap_or([0; 32]);
    c[csum_type.sig_len()..].fill(0);
    let kind = if h.magic == NODE_MAGIC {
        "node"
    } else if buf[HEADER_SIZE..HEADER_SIZE + 8] == SUPER_MAGIC {
        "superblock"
    } else {
        "no metadata magic (data or free)"
    };
    println!(
        "block {block}: {kind}; checksum {} ({}); addr {} mirror {} generation {} owner {} level {} items {} uuid {}",
        if c == h.csum { "ok" } else { "BAD" },
        csum_type.name(),
        h.addr.get(),
        h.mirror.get(),
        h.generation.get(),
        h.owner.get() as i64,
        h.level,
        h.nritems.get(),
        fmt_uuid(&h.fsid)
    );
    0
}
